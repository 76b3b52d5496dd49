// Package outbox is the transactional outbox of the command service, in one
// place: the row's header encoding (EncodeHeaders, DecodeHeaders) and wake-up
// channel (Channel) that the writer's Repository (internal/adapters/postgres)
// uses to insert rows in each command's transaction; the Relay that claims,
// publishes and deletes them; parking (park.go) and the operator's side of
// it (ParkedOutbox); the relay's lease (lease.go) and its Kafka fence
// (fence.go, writer.go). The table itself is created by the migrations of
// internal/adapters/postgres.
//
// The command transaction writes its integration events as rows of the
// outbox table and notifies Channel at commit. The Relay claims unpublished rows in id order, publishes them
// with kafka-go WriteMessages calls of at most Options.BatchBytes, and
// deletes the rows Kafka acknowledged (the event log, compania_eventos, keeps
// every event; the outbox holds only what is still to publish). A row Kafka
// can never take is parked (see park.go): the later rows of its company wait
// behind it, the other companies flow. Delivery is at least once: a crash
// between publish and delete publishes the rows again, with the same ce_id,
// so consumers deduplicate.
//
// On a backlog the relay claims its next batch while the current one is
// produced (see claimAhead): that claim leaves out the companies of the
// batch in flight, whose later rows wait for a claim after it, so a
// company's rows still go out in id order, one batch at a time. Per batch
// it sends one claim, one WriteMessages call per BatchBytes, and one delete
// (DELETE … WHERE id = ANY) per call; never a statement per row, except to
// park one.
//
// Only one relay in a database publishes at a time: the holder of a lease
// (table outbox_relay_lease: an epoch, a holder and an expiry), which it
// takes, renews and releases on a dedicated connection that it also uses to
// LISTEN, claim and delete. Replicas try to take the lease every LockRetry
// once it has expired: within LockRetry after a graceful stop (the leader
// releases it), within LeaseTTL + LockRetry after the leader was killed,
// frozen or cut off from PostgreSQL. The leader renews the lease every
// LeaseTTL/3 and stops at once when a renewal finds it taken. Its Kafka
// connections are fenced (Fence): nothing it writes can reach a broker
// after a time that ends before its lease can expire, so a leader that
// resumes after a freeze cannot land records after its successor's. As one
// relay at a time publishes rows in id order, and a company's rows get
// increasing ids in commit order (each command locks the company), the
// events of a company reach its partition in order.
//
// The relay wakes up when a command transaction commits: through a
// notification on the outbox channel, or, for the commits of its own process,
// through Wake, which costs no round trip to PostgreSQL. After a wake-up it
// lingers (Options.Linger) before it claims, so that the commits of the next
// few milliseconds share one claim, one produce request and one delete.
//
// Why not FOR UPDATE SKIP LOCKED with several active relays: two relays
// would publish consecutive batches concurrently, and a company's later
// event could overtake its earlier one. Why not "id > last id": ids are
// taken at insert, not at commit, so a slow transaction's row would be
// skipped; claiming every unpublished row by id never skips one.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/seedwork/retry"
)

// DefaultBatchSize is the default number of rows per relay batch.
const DefaultBatchSize = 500

// Publisher sends a batch of Kafka messages, each to its own topic, and
// returns nil only when every message was acknowledged. *Writer is the
// production implementation.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Options tune a Relay. Zero fields take the documented defaults.
type Options struct {
	// Channel is the LISTEN/NOTIFY channel the command transactions notify
	// at commit. Default Channel.
	Channel string
	// BatchSize is the maximum number of rows claimed and published per
	// WriteMessages call. Default DefaultBatchSize.
	BatchSize int
	// PollInterval is how long the relay waits for a notification before it
	// looks at the table anyway (missed notifications, rows of other
	// writers). Default 1s.
	PollInterval time.Duration
	// Linger is how long the relay waits, after a notification or a Wake
	// woke it up, before it claims: the rows committed meanwhile join the
	// batch. It adds up to Linger to the commit-to-Kafka latency of a row
	// and, under a steady trickle of commands, divides the relay's cost per
	// batch (a claim, a produce request and a delete) among more rows. It does
	// not apply while the relay drains full batches, nor after a poll.
	// Default 0: no linger (the service sets OUTBOX_LINGER).
	Linger time.Duration
	// LockRetry is how often a standby replica tries to take the lease,
	// and how long the relay waits before reconnecting after a database
	// error. Default 1s.
	LockRetry time.Duration
	// LeaseTTL is the time to live of the relay's lease: a leader that
	// stops renewing it (killed, frozen, cut off from PostgreSQL) is
	// replaced within LeaseTTL + LockRetry. The leader renews it every
	// LeaseTTL/3, and its Fence ends LeaseTTL/5 before the lease can expire.
	// Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Fence is the fence of the Publisher's broker connections, which the
	// relay opens while it holds the lease and closes when it stops
	// leading. Default: the Publisher's Fence() if it has one (*Writer),
	// else a fence of the relay's own that guards nothing. One Fence per
	// Relay.
	Fence *Fence
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts to publish a batch Kafka refused. Defaults 100ms and 10s.
	BackoffMin, BackoffMax time.Duration
	// StatementTimeout bounds each SQL statement of the relay, so that a
	// relay cut off from PostgreSQL notices, drops its connection and stops
	// publishing; lease statements are bounded by the smaller of it and
	// LeaseTTL. Default 30s.
	StatementTimeout time.Duration
	// ShutdownGrace is how long a batch being published when Run's context
	// is cancelled may still take to be acknowledged and deleted, which
	// saves a duplicate on every rolling restart. Default 5s.
	ShutdownGrace time.Duration
	// Logger receives the relay's lifecycle and error logs. Default: none.
	Logger *slog.Logger
	// OnPublished, if set, is called after each batch was published and
	// deleted, with its number of rows and the created_at of its oldest row
	// (time.Since(oldest) is the worst commit-to-publish latency of the
	// batch). It runs on the relay goroutine: keep it fast.
	OnPublished func(rows int, oldestCreatedAt time.Time)
	// OnRowPublished, if set, is called for each row of a batch after the
	// batch was published and deleted, with the row's created_at
	// (time.Since(createdAt) is its commit-to-publish latency), before
	// OnPublished. It runs on the relay goroutine: keep it fast.
	OnRowPublished func(createdAt time.Time)
	// Tracer, if set, records a producer span per published batch, linked
	// to the trace context (traceparent header) of each of its rows. While
	// it is nil the relay makes no span. Optional.
	Tracer trace.Tracer
	// MaxRecordBytes is the most bytes one record may have (key + value +
	// header keys and values); the relay parks a larger row (reason
	// too_large) instead of publishing it. Default DefaultMaxRecordBytes.
	MaxRecordBytes int
	// BatchBytes is the Writer's WriterConfig.BatchBytes: the relay cuts a
	// batch into WriteMessages calls of at most this many bytes (estimated
	// from above), so that each partition's records of one call form one
	// kafka-go batch, which the broker takes or refuses whole. Default
	// DefaultBatchBytes.
	BatchBytes int64
	// OnParked, if set, is called once per row the relay parks, with the
	// reason (one of ParkReasons). It runs on the relay goroutine: keep it
	// fast.
	OnParked func(reason string)
}

// Relay publishes the outbox to Kafka. Create it with New and run it with
// Run; it is safe to run one Relay per process in any number of processes.
type Relay struct {
	pool    *pgxpool.Pool
	pub     Publisher // checks the lease, then publishes
	rawPub  Publisher // publishes; for writeWhile, which checks the lease itself
	opts    Options
	log     *slog.Logger
	leading atomic.Bool

	// The lease. fence and me never change; epoch is read by Epoch; the
	// rest belongs to the relay goroutine.
	fence   *Fence
	me      string       // lease holder id
	epoch   atomic.Int64 // of the lease held; 0: none
	leaseAt time.Time    // when the last acquire or renewal was sent
	conn    *pgx.Conn    // the session's connection, while leading

	// next is the batch claimed while the previous one was being produced
	// (see publish), for the relay goroutine's next relayBatch; nil: none.
	// It belongs to one session: a new leader claims afresh.
	next []row

	wakeMu   sync.Mutex
	woken    bool               // Wake was called since the last claim started
	stopWait context.CancelFunc // ends the wait in progress, if any

	// beforeDelete, for tests, runs after a batch was published and before it
	// is deleted.
	beforeDelete func(ctx context.Context, ids []int64)
}

// New returns a Relay that reads the outbox through pool and publishes with
// pub. The relay takes one connection out of the pool for as long as it runs
// (pgxpool Hijack), so the pool keeps its capacity for requests.
func New(pool *pgxpool.Pool, pub Publisher, opts Options) (*Relay, error) {
	if pool == nil || pub == nil {
		return nil, errors.New("outbox relay: pool and publisher are required")
	}
	if opts.Channel == "" {
		opts.Channel = Channel
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.LockRetry <= 0 {
		opts.LockRetry = time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.Fence == nil {
		if f, ok := pub.(interface{ Fence() *Fence }); ok && f.Fence() != nil {
			opts.Fence = f.Fence()
		} else {
			opts.Fence = NewFence()
		}
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = max(10*time.Second, opts.BackoffMin)
	}
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = 30 * time.Second
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 5 * time.Second
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = DefaultBatchBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{pool: pool, opts: opts, log: log.With("component", "outbox-relay"), fence: opts.Fence, me: holderID()}
	r.pub = &leasedPublisher{r: r, next: pub}
	r.rawPub = pub
	return r, nil
}

// Leading reports whether this relay holds the lease and may publish: it
// leads and its fence has not ended (for a gauge or a health check).
func (r *Relay) Leading() bool { return r.leading.Load() && time.Now().Before(r.fence.Until()) }

// Epoch returns the epoch of the lease this relay holds while Leading,
// else 0 (for a gauge). Each new leader's epoch is higher.
func (r *Relay) Epoch() int64 {
	if !r.Leading() {
		return 0
	}
	return r.epoch.Load()
}

// Wake tells the relay that a transaction that stored outbox rows has
// committed, like a notification on the outbox channel but without a round
// trip to PostgreSQL, and reports whether the relay leads. When it returns
// true, a claim that starts after the call sees the rows: this relay's next
// one, or, if it loses the lead first, the first claim of the next leader,
// which claims as soon as it takes over; the caller need not notify. When it
// returns false it did nothing, and the caller must notify the outbox
// channel so that the leader, in whichever process, wakes up. It never
// blocks and is safe for concurrent use.
func (r *Relay) Wake() bool {
	if !r.Leading() {
		return false
	}
	r.wakeMu.Lock()
	r.woken = true
	if r.stopWait != nil {
		r.stopWait()
		r.stopWait = nil
	}
	r.wakeMu.Unlock()
	return true
}

// clearWake forgets the wake-ups so far: the coming claim sees their rows.
func (r *Relay) clearWake() {
	r.wakeMu.Lock()
	r.woken = false
	r.wakeMu.Unlock()
}

// Run relays until ctx is cancelled, then returns nil. It never gives up:
// database errors make it reconnect after LockRetry, Kafka errors make it
// retry the same rows with backoff, a lost lease makes it stand by. A batch
// in flight when ctx is cancelled gets ShutdownGrace to finish; then the
// relay releases its lease.
func (r *Relay) Run(ctx context.Context) error {
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errLeaseLost) {
			r.log.Error("outbox relay lost its lease to another relay; standing by", "in", r.opts.LockRetry)
		} else {
			r.log.Warn("outbox relay lost its database session; reconnecting", "err", err, "in", r.opts.LockRetry)
		}
		if !retry.Sleep(ctx, r.opts.LockRetry) {
			return nil
		}
	}
}

// session takes a connection, waits for the lease, and relays until an
// error, the loss of the lease or cancellation; then it closes the fence and
// releases the lease. Closing the connection ends the LISTEN.
func (r *Relay) session(ctx context.Context) error {
	pc, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx) // the session ends either way
	}()

	// Let the server notice a vanished relay host in ~25 s rather than the
	// kernel default of two hours. Ignored by the server on Unix sockets.
	// synchronous_commit off for this session only: deleting published rows
	// then does not wait for its WAL flush, halving the fsyncs per command.
	// A delete lost in a crash only republishes rows, which delivery at
	// least once allows; the command transactions keep synchronous commits.
	// enable_sort off for this session only: the claim must walk the
	// primary key in id order and stop after BatchSize rows. A backlog that
	// arrives in a burst is far larger than the statistics say (they were
	// taken while the outbox was nearly empty), and the
	// planner then reads the whole backlog, anti-joins every row and sorts
	// it for each batch: O(backlog) per claim, 7–19 ms for 500 of 5,000
	// rows, against ~1 ms in index order. None of the session's statements
	// needs a sort.
	if _, err := r.exec(ctx, conn, `SELECT set_config('tcp_keepalives_idle', '10', false),
		set_config('tcp_keepalives_interval', '5', false), set_config('tcp_keepalives_count', '3', false),
		set_config('synchronous_commit', 'off', false), set_config('application_name', $1, false),
		set_config('enable_sort', 'off', false)`,
		RelayApplicationName); err != nil {
		return fmt.Errorf("set session parameters: %w", err)
	}
	for {
		ok, err := r.acquireLease(ctx, conn)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if !retry.Sleep(ctx, r.opts.LockRetry) {
			return nil
		}
	}
	defer r.releaseLease(ctx, conn)
	if _, err := r.exec(ctx, conn, "LISTEN "+pgx.Identifier{r.opts.Channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen %s: %w", r.opts.Channel, err)
	}
	r.conn = conn
	r.next = nil
	r.leading.Store(true)
	defer func() {
		r.leading.Store(false)
		r.conn = nil
		r.next = nil
	}()
	r.log.Info("outbox relay is leading", "epoch", r.epoch.Load(), "holder", r.me, "lease_ttl", r.opts.LeaseTTL)
	return r.relay(ctx, conn)
}

// relay is the leader loop: publish batches while they are full, then wait
// for a notification, a Wake or the poll interval, and linger after a
// wake-up.
func (r *Relay) relay(ctx context.Context, conn *pgx.Conn) error {
	failures := 0
	woken := false
	for {
		if woken && r.opts.Linger > 0 && !retry.Sleep(ctx, r.opts.Linger) {
			return nil
		}
		if err := r.renewIfDue(ctx, conn); err != nil {
			return err
		}
		r.clearWake()
		discardNotifications(conn)
		more, err := r.relayBatch(ctx, conn)
		woken = false
		if r.epoch.Load() == 0 {
			return errLeaseLost // found lost before a publish
		}
		var perr *publishError
		switch {
		case errors.As(err, &perr):
			failures++
			d := retry.Backoff{Min: r.opts.BackoffMin, Max: r.opts.BackoffMax}.Delay(failures - 1)
			r.log.Error("outbox relay cannot publish; will retry the same rows",
				"err", perr.err, "rows", perr.rows, "attempt", failures, "retry_in", d)
			// Wait on the connection rather than sleeping: it keeps reading
			// notifications (an unread LISTEN backs up the server's queue)
			// and notices a dead session.
			if _, err := r.wait(ctx, conn, d, false); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		failures = 0
		if more {
			continue
		}
		if woken, err = r.wait(ctx, conn, r.opts.PollInterval, true); err != nil {
			return err
		}
	}
}

// wait blocks for d, or, if wake, until a notification or a Wake, or until
// ctx is done, renewing the lease when due. It reports whether a
// notification or a Wake ended it, and returns only database errors and
// errLeaseLost.
func (r *Relay) wait(ctx context.Context, conn *pgx.Conn, d time.Duration, wake bool) (bool, error) {
	end := time.Now().Add(d)
	for {
		if err := r.renewIfDue(ctx, conn); err != nil {
			return false, err
		}
		left := time.Until(end)
		woken, err := r.waitFor(ctx, conn, min(left, r.renewDueIn()), wake)
		if woken || err != nil || ctx.Err() != nil || !time.Now().Before(end) {
			return woken, err
		}
	}
}

// waitFor is wait for at most d, without renewing the lease.
func (r *Relay) waitFor(ctx context.Context, conn *pgx.Conn, d time.Duration, wake bool) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if wake {
		r.wakeMu.Lock()
		if r.woken {
			r.wakeMu.Unlock()
			return true, nil
		}
		r.stopWait = cancel
		r.wakeMu.Unlock()
		defer func() {
			r.wakeMu.Lock()
			r.stopWait = nil
			r.wakeMu.Unlock()
		}()
	}
	for {
		_, err := conn.WaitForNotification(wctx)
		switch {
		case ctx.Err() != nil:
			return false, nil
		case wctx.Err() != nil:
			// Timed out (a poll), or cancelled by Wake; the connection stays
			// usable either way.
			return !errors.Is(wctx.Err(), context.DeadlineExceeded), nil
		case err != nil:
			return false, fmt.Errorf("wait for notification: %w", err)
		case wake:
			return true, nil
		}
	}
}

// discardNotifications drops the notifications pgx buffered while the relay
// was busy: the coming claim sees their rows anyway, and an unbounded buffer
// would grow under sustained load.
func discardNotifications(conn *pgx.Conn) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		// With a done context pgx returns a buffered notification, or an
		// error without touching the connection.
		if n, err := conn.WaitForNotification(done); err != nil || n == nil {
			return
		}
	}
}

// publishError marks a Kafka failure: the rows stay unpublished and the
// batch is retried with backoff on the same session.
type publishError struct {
	rows int
	err  error
}

func (e *publishError) Error() string { return fmt.Sprintf("publish %d rows: %v", e.rows, e.err) }
func (e *publishError) Unwrap() error { return e.err }

// row is one outbox row being relayed.
type row struct {
	id        int64
	eventID   string
	topic     string
	key       []byte
	value     []byte
	headers   []byte
	createdAt time.Time
}

// claimSQL reads the unpublished rows in id order, except those of a
// company (key) with an earlier parked row: they wait behind it, so that a
// company's events stay in order, and those of the companies in $2, whose
// rows are being produced (see publish). The NOT EXISTS probes
// outbox_parked_idx. The companies in $2 are excluded with NOT IN over the
// unnested array, which PostgreSQL runs as a hashed subplan: one probe per
// row, where `<> ALL($2)` compared each row with every key of the batch in
// flight (500 × 500 comparisons per claim on a backlog of distinct
// companies; the drain benchmark went from 18k to 31k rows/s). Neither
// form admits a NULL key, which the outbox does not store.
const claimSQL = `SELECT o.id, o.event_id::text, o.topic, o.key, o.value, o.headers, o.created_at
FROM outbox o
WHERE o.parked_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.key = o.key AND p.id < o.id AND p.parked_at IS NOT NULL)
  AND o.key NOT IN (SELECT unnest($2::bytea[]))
ORDER BY o.id LIMIT $1`

// deleteSQL removes the rows Kafka acknowledged. A DELETE marks each row
// version dead and writes no index entry, where stamping published_at wrote
// a new version of the whole row and an entry in each index (5,000 rows:
// 15 ms against 118 ms in psql on the benchmark machine).
const deleteSQL = `DELETE FROM outbox WHERE id = ANY($1)`

// relayBatch takes the batch claimed ahead, if any, else claims up to
// BatchSize unpublished rows; it parks those that can never be published,
// publishes the others and deletes them (see publish). It reports whether
// more rows may be waiting: the claim was full, or it was a claim ahead,
// which left out the companies then in flight. Once publishing started, it
// finishes (within ShutdownGrace) even if ctx is cancelled.
func (r *Relay) relayBatch(ctx context.Context, conn *pgx.Conn) (bool, error) {
	rows, ahead := r.next, r.next != nil
	r.next = nil
	if !ahead {
		var err error
		if rows, err = r.claim(ctx, conn, nil); err != nil {
			return false, err
		}
	}
	if len(rows) == 0 {
		return ahead, nil
	}
	if err := r.publish(ctx, conn, rows, ahead || len(rows) == r.opts.BatchSize); err != nil {
		r.next = nil
		return false, err
	}
	if ctx.Err() != nil {
		r.next = nil
	}
	return ahead || len(rows) == r.opts.BatchSize, nil
}

// claim reads up to BatchSize claimable rows in id order, leaving out the
// rows of the companies (keys) in busy.
func (r *Relay) claim(ctx context.Context, conn *pgx.Conn, busy [][]byte) ([]row, error) {
	qctx, cancel := context.WithTimeout(ctx, r.opts.StatementTimeout)
	defer cancel()
	if busy == nil {
		busy = [][]byte{}
	}
	rs, err := conn.Query(qctx, claimSQL, r.opts.BatchSize, busy)
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	out := make([]row, 0, r.opts.BatchSize)
	for rs.Next() {
		var rw row
		if err := rs.Scan(&rw.id, &rw.eventID, &rw.topic, &rw.key, &rw.value, &rw.headers, &rw.createdAt); err != nil {
			rs.Close()
			return nil, fmt.Errorf("scan outbox row: %w", err)
		}
		out = append(out, rw)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	return out, nil
}

func (r *Relay) exec(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (pgconn.CommandTag, error) {
	qctx, cancel := context.WithTimeout(ctx, r.opts.StatementTimeout)
	defer cancel()
	return conn.Exec(qctx, sql, args...)
}

// graceful returns a context that is cancelled grace after ctx is, so that
// work already started can finish during shutdown.
func graceful(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-gctx.Done():
		}
	})
	return gctx, func() { stop(); cancel() }
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
