package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/command/internal/adapters/integration"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// Repository is the PostgreSQL unit of work of Compania aggregates; it
// implements command.Repository. Each Add or Update is one transaction: the
// company, its events in compania_eventos, one outbox row per event and the
// idempotency record, if any; the relay is woken after a commit, never
// after a rollback. Concurrent updates of one company run one after the
// other. When PostgreSQL cannot serve (no connection, no slot left,
// starting or shutting down), Add, Update and LookupIdempotency fail with
// kind apperr.Unavailable. Give the aggregate a clock truncated to
// microseconds. It is safe for concurrent use; the package doc, under
// "Repository", says what each call writes and why.
type Repository struct {
	db             *pgxpool.Pool
	topic          string
	log            *slog.Logger
	notifyInterval time.Duration
	notifier       *notifier
	relay          Waker
	maxRecordBytes int
	group          *groupCommitter // nil: each Add is a transaction of its own
}

// Waker is the outbox relay of the Repository's own process
// (outbox.Relay). Wake tells it that outbox rows were committed and reports
// whether it leads, in which case a claim that starts after the call, its
// own or its successor's, sees them.
type Waker interface {
	Wake() bool
}

// RepositoryOption configures a Repository.
type RepositoryOption func(*Repository)

// WithTopic sets the Kafka topic written into the outbox rows; "" keeps the
// default, companiaevent.DefaultTopic.
func WithTopic(topic string) RepositoryOption {
	return func(r *Repository) {
		if topic != "" {
			r.topic = topic
		}
	}
}

// WithLogger sets the logger of the failures that do not fail a call (a lost
// outbox notification); by default they are dropped.
func WithLogger(l *slog.Logger) RepositoryOption {
	return func(r *Repository) {
		if l != nil {
			r.log = l
		}
	}
}

// WithNotifyInterval sets the least time between two outbox notifications
// (default DefaultNotifyInterval): the writes that commit meanwhile share the
// next one. A longer interval costs the database less and a woken relay
// finds bigger batches, but adds up to that much latency between a commit
// and its publication; 0 sends them back to back.
func WithNotifyInterval(d time.Duration) RepositoryOption {
	return func(r *Repository) { r.notifyInterval = max(d, 0) }
}

// WithWaker makes the Repository wake w, the outbox relay of its own
// process, after each commit that stored outbox rows, instead of sending a
// pg_notify, while w leads (w.Wake returns true): the wake-up then costs no
// transaction and no round trip. While w does not lead the notification is
// sent as without it, for the leader in another process. nil is ignored.
func WithWaker(w Waker) RepositoryOption {
	return func(r *Repository) { r.relay = w }
}

// DefaultMaxRecordBytes is the default of WithMaxRecordBytes: below Kafka's
// default max.message.bytes (1048588), so that a record alone always fits
// in a batch the broker accepts.
const DefaultMaxRecordBytes = 1_000_000

// WithMaxRecordBytes sets the most bytes the Kafka record of one event may
// have, counted as RecordSize does (default DefaultMaxRecordBytes; n ≤ 0
// keeps it). A write whose event would exceed it stores nothing and fails
// with ErrRecordTooLarge, so that no outbox row is ever too large to
// publish. No valid company comes near the default (its fields are bounded
// to a few KiB): the limit guards what enters the record from outside, and
// a broker configured with a smaller max.message.bytes.
func WithMaxRecordBytes(n int) RepositoryOption {
	return func(r *Repository) {
		if n > 0 {
			r.maxRecordBytes = n
		}
	}
}

// ErrRecordTooLarge is the error (kind apperr.Invalid, code
// record_too_large) of a write refused because an event's Kafka record
// would exceed WithMaxRecordBytes; match it with errors.Is. Its message
// gives sizes only, never the data.
var ErrRecordTooLarge = &apperr.Error{Kind: apperr.Invalid, Code: "record_too_large",
	Message: "the event of this command would exceed the largest Kafka record allowed"}

// RecordSize is the size of a Kafka record as the outbox limit counts it:
// key, value, and the key and value of each header (the framing Kafka adds
// is left out: the limit's default leaves room for it).
func RecordSize(m companiaevent.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// NewRepository returns a Repository on pool, which must be migrated (Migrate).
func NewRepository(pool *pgxpool.Pool, opts ...RepositoryOption) *Repository {
	if pool == nil {
		panic("postgres: NewRepository needs a pool")
	}
	r := &Repository{db: pool, topic: companiaevent.DefaultTopic, log: slog.New(slog.DiscardHandler),
		notifyInterval: DefaultNotifyInterval, maxRecordBytes: DefaultMaxRecordBytes}
	for _, o := range opts {
		o(r)
	}
	r.notifier = newNotifier(pool, r.log, r.notifyInterval)
	return r
}

// Close sends the outbox notification still owed to committed writes and
// waits for it; call it before closing the pool. Afterwards Add and Update
// still work but send no notification (a relay finds their rows when it
// polls). It is idempotent.
//
// After each commit that stored outbox rows, the Repository sends a
// pg_notify on outbox.Channel from a short-lived background goroutine, in a
// transaction of its own, at most one per notify interval; one notification
// covers every write that committed before it. The notification is not part
// of the write's transaction on purpose (see notifier). With WithWaker, no
// notification is sent while the process's own relay leads.
func (r *Repository) Close() { r.notifier.close() }

var _ command.Repository = (*Repository)(nil)

const (
	sqlInsertCompania = `INSERT INTO companias
    (id, nombre, email, identificacion, estado, motivo_rechazo, fecha_creacion, fecha_actualizacion, version)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	sqlSelectForUpdate = `SELECT id::text, nombre, email, identificacion, estado, motivo_rechazo,
    fecha_creacion, fecha_actualizacion, version
    FROM companias WHERE id = $1 FOR UPDATE`
	sqlUpdateCompania = `UPDATE companias
    SET nombre = $2, email = $3, identificacion = $4, estado = $5, motivo_rechazo = $6,
        fecha_actualizacion = $7, version = $8
    WHERE id = $1 AND version = $9`
	sqlInsertEvento = `INSERT INTO compania_eventos (id, compania_id, version, nombre, data, occurred_at)
    VALUES ($1, $2, $3, $4, $5, $6)`
	sqlInsertOutbox = `INSERT INTO outbox (event_id, topic, key, value, headers)
    VALUES ($1, $2, $3, $4, $5)`
	// sqlInsertCreada stores a new company with its one event: the company
	// row, the event-log row and the outbox row in one statement, which
	// costs the server one statement instead of three. The foreign key of
	// the event-log row is checked at the end of the statement, when the
	// company row exists.
	sqlInsertCreada = `WITH compania AS (
        INSERT INTO companias
        (id, nombre, email, identificacion, estado, motivo_rechazo, fecha_creacion, fecha_actualizacion, version)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ), evento AS (
        INSERT INTO compania_eventos (id, compania_id, version, nombre, data, occurred_at)
        VALUES ($10, $1, $11, $12, $13, $14)
    )
    INSERT INTO outbox (event_id, topic, key, value, headers) VALUES ($10, $15, $16, $17, $18)`
	sqlInsertIdempotency = `INSERT INTO idempotency_keys (scope, key, request_hash, compania_id, result)
    VALUES ($1, $2, $3, $4, $5)`
	sqlLookupIdempotency = `SELECT request_hash, result FROM idempotency_keys WHERE scope = $1 AND key = $2`
)

// Constraint names of 0001_init.sql that map to domain errors.
const (
	pkCompanias         = "companias_pkey"
	uqNombreIdent       = "companias_nombre_identificacion_key"
	pkIdempotency       = "idempotency_keys_pkey"
	uqEventoVersion     = "compania_eventos_compania_id_version_key"
	codeUniqueViolation = "23505"
)

// errVersionLost: the UPDATE … WHERE version = old matched no row.
var errVersionLost = errors.New("stored version is not the loaded one")

// Add inserts a new company with its events, outbox rows and idempotency
// record in one transaction, in one round trip: the INSERTs in one
// pipeline, which the server runs as one implicit transaction (the company,
// its event-log row and its outbox row in one statement when it recorded
// one event, as a new company does). It does not clear c's events: the caller hands them to the
// in-process handlers after the commit. Errors: compania.ErrDuplicate,
// compania.ErrIDTaken, command.ErrIdempotencyKeyTaken (see
// command.Repository), ErrRecordTooLarge; nothing is stored on any error.
// With WithGroupCommit, the creates of concurrent callers share that
// transaction and statement, each still answered on its own.
func (r *Repository) Add(ctx context.Context, c *compania.Compania, meta command.Meta) error {
	s := c.Snapshot()
	w, err := r.writes(s, c.Events(), meta)
	if err != nil {
		return fmt.Errorf("add compania %s: %w", s.ID, err)
	}
	if r.group != nil && len(w.events) == 1 {
		return r.group.add(ctx, s, w)
	}
	return r.addOne(ctx, s, w)
}

// addOne is Add in a transaction of its own.
func (r *Repository) addOne(ctx context.Context, s compania.Snapshot, w writes) error {
	err := runInTx(ctx, r.db, func(b *pgx.Batch) {
		w.queueIdempotency(b)
		if len(w.events) == 1 { // a new company records exactly one event
			e := w.events[0]
			b.Queue(sqlInsertCreada, s.ID, s.Nombre, s.Email, s.Identificacion, s.Estado.String(),
				nullable(s.MotivoRechazo), s.FechaCreacion, s.FechaActualizacion, s.Version,
				e.id, e.version, e.name, e.msg.Value, e.occurredAt,
				w.topic, e.msg.Key, e.msg.Value, e.headers)
			return
		}
		b.Queue(sqlInsertCompania, s.ID, s.Nombre, s.Email, s.Identificacion, s.Estado.String(),
			nullable(s.MotivoRechazo), s.FechaCreacion, s.FechaActualizacion, s.Version)
		w.queueEvents(b)
	}, nil)
	if err != nil {
		return fmt.Errorf("add compania %s: %w", s.ID, unavailable(mapAddError(err)))
	}
	if len(w.events) > 0 {
		r.committed()
	}
	return nil
}

// committed wakes the relay after a commit that stored outbox rows: the
// local relay if it leads, else every listener through a notification.
func (r *Repository) committed() {
	if r.relay != nil && r.relay.Wake() {
		return
	}
	r.notifier.notify()
}

// Update loads the company with SELECT … FOR UPDATE (compania.ErrNotFound
// if there is none, or if id is not a UUID), runs fn on it and, if fn
// recorded events, saves it with its events, outbox rows, the idempotency
// record of meta if any, and a notification, then commits. If fn returns an
// error the transaction rolls back and Update returns that error wrapped
// (errors.Is/As see it). If fn recorded no events nothing is written (the
// read-only transaction commits) and the company is returned as loaded.
// A changed nombre that collides with another company is
// compania.ErrDuplicate; an event over the record limit, ErrRecordTooLarge
// (nothing is written). The returned company still holds the recorded events.
func (r *Repository) Update(ctx context.Context, id string, meta command.Meta,
	fn func(*compania.Compania) error) (*compania.Compania, error) {
	if !compania.ValidID(id) {
		return nil, fmt.Errorf("update compania %q: %w", id, compania.ErrNotFound)
	}
	var (
		c      *compania.Compania
		row    companiaRow
		stored int
	)
	err := runInTx(ctx, r.db, func(b *pgx.Batch) {
		b.Queue(sqlSelectForUpdate, id).QueryRow(func(r pgx.Row) error {
			err := row.scan(r)
			if errors.Is(err, pgx.ErrNoRows) {
				return compania.ErrNotFound
			}
			return err
		})
	}, func(tx pgx.Tx) error {
		loaded, err := row.snapshot()
		if err != nil {
			return err
		}
		if c, err = compania.FromSnapshot(loaded); err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		events := c.Events()
		if len(events) == 0 {
			return nil
		}
		s := c.Snapshot()
		w, err := r.writes(s, events, meta)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(sqlUpdateCompania, s.ID, s.Nombre, s.Email, s.Identificacion, s.Estado.String(),
			nullable(s.MotivoRechazo), s.FechaActualizacion, s.Version, loaded.Version,
		).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() != 1 {
				return errVersionLost
			}
			return nil
		})
		w.queue(b)
		stored = len(w.events)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("update compania %s: %w", id, unavailable(mapError(err)))
	}
	if stored > 0 {
		r.committed()
	}
	return c, nil
}

// LookupIdempotency returns the record stored for (scope, key), if any.
func (r *Repository) LookupIdempotency(ctx context.Context, scope, key string) (command.IdempotencyRecord, bool, error) {
	var (
		hash   []byte
		result []byte
	)
	err := r.db.QueryRow(ctx, sqlLookupIdempotency, scope, key).Scan(&hash, &result)
	if errors.Is(err, pgx.ErrNoRows) {
		return command.IdempotencyRecord{}, false, nil
	}
	if err != nil {
		return command.IdempotencyRecord{}, false, fmt.Errorf("lookup idempotency key: %w", unavailable(err))
	}
	var cc companiaevent.Compania
	if err := json.Unmarshal(result, &cc); err != nil {
		return command.IdempotencyRecord{}, false, fmt.Errorf("lookup idempotency key: decode result: %w", err)
	}
	s, err := fromContract(cc)
	if err != nil {
		return command.IdempotencyRecord{}, false, fmt.Errorf("lookup idempotency key: decode result: %w", err)
	}
	return command.IdempotencyRecord{Scope: scope, Key: key, RequestHash: hash, Result: s}, true, nil
}

// pruneBatch is how many idempotency records one DELETE of PruneIdempotency
// removes, so that pruning a large backlog holds no long locks.
const pruneBatch = 1000

// PruneIdempotency deletes the idempotency records created more than
// olderThan ago (by the database clock), in batches of 1000, and returns
// how many it deleted. A retry with a pruned key runs the command again, so
// olderThan must exceed the longest time a client may retry. It is safe to
// run on several replicas at once. olderThan must be positive.
func (r *Repository) PruneIdempotency(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("prune idempotency keys: olderThan %v is not positive", olderThan)
	}
	var cutoff time.Time
	if err := r.db.QueryRow(ctx, "SELECT now() - $1::bigint * interval '1 microsecond'",
		olderThan.Microseconds()).Scan(&cutoff); err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	var total int64
	for {
		ct, err := r.db.Exec(ctx, `DELETE FROM idempotency_keys k
            USING (SELECT scope, key FROM idempotency_keys WHERE created_at < $1
                   ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) old
            WHERE k.scope = old.scope AND k.key = old.key`, cutoff, pruneBatch)
		if err != nil {
			return total, fmt.Errorf("prune idempotency keys: %w", err)
		}
		total += ct.RowsAffected()
		if ct.RowsAffected() < pruneBatch {
			return total, nil
		}
	}
}

// eventWrite is the event-log and outbox content of one event.
type eventWrite struct {
	id         string
	version    int64
	name       string
	occurredAt time.Time
	msg        companiaevent.Message
	headers    []byte
}

// writes is everything but the company row that one transaction stores.
type writes struct {
	companiaID string
	topic      string
	events     []eventWrite
	idem       *command.IdempotencyRecord
	idemResult []byte
}

// writes builds the rows of events and of the idempotency record of meta;
// the record's result is saved, the company as stored (meta's Result is not
// used: an Update's caller cannot know it in advance). An event whose record
// is over the limit fails it with ErrRecordTooLarge, before anything is sent.
func (r *Repository) writes(saved compania.Snapshot, events []compania.Event, meta command.Meta) (writes, error) {
	w := writes{companiaID: saved.ID, topic: r.topic, events: make([]eventWrite, 0, len(events))}
	for _, e := range events {
		id, err := uuid.NewV7()
		if err != nil {
			return writes{}, fmt.Errorf("new event id: %w", err)
		}
		msg, err := integration.Message(id.String(), e, meta.Traceparent)
		if err != nil {
			return writes{}, err
		}
		if size := RecordSize(msg); size > r.maxRecordBytes {
			return writes{}, &apperr.Error{Kind: ErrRecordTooLarge.Kind, Code: ErrRecordTooLarge.Code,
				Message: fmt.Sprintf("%s: %s of %d bytes, limit %d bytes", ErrRecordTooLarge.Message,
					e.EventName(), size, r.maxRecordBytes)}
		}
		h, err := outbox.EncodeHeaders(msg.Headers)
		if err != nil {
			return writes{}, err
		}
		w.events = append(w.events, eventWrite{
			id: id.String(), version: e.State().Version, name: e.EventName(),
			occurredAt: compania.OccurredAt(e), msg: msg, headers: h,
		})
	}
	if k := meta.Idempotency; k != nil {
		res, err := json.Marshal(integration.Snapshot(saved))
		if err != nil {
			return writes{}, fmt.Errorf("encode idempotency result: %w", err)
		}
		w.idem, w.idemResult = k, res
	}
	return w, nil
}

// queue adds the writes to b.
func (w writes) queue(b *pgx.Batch) {
	w.queueIdempotency(b)
	w.queueEvents(b)
}

// queueIdempotency queues the idempotency record, if any. Add queues it
// before the company row: a concurrent request with the same key then
// blocks on, and loses to, the key's primary key (ErrIdempotencyKeyTaken,
// answered as a replay) instead of colliding first on the company's unique
// nombre/identificacion index (which would be a spurious ErrDuplicate).
func (w writes) queueIdempotency(b *pgx.Batch) {
	if k := w.idem; k != nil {
		hash := k.RequestHash
		if hash == nil {
			hash = []byte{} // request_hash is NOT NULL
		}
		b.Queue(sqlInsertIdempotency, k.Scope, k.Key, hash, w.companiaID, w.idemResult)
	}
}

func (w writes) queueEvents(b *pgx.Batch) {
	for _, e := range w.events {
		b.Queue(sqlInsertEvento, e.id, w.companiaID, e.version, e.name, e.msg.Value, e.occurredAt)
		b.Queue(sqlInsertOutbox, e.id, w.topic, e.msg.Key, e.msg.Value, e.headers)
	}
}

// mapError turns the unique violations that mean a domain conflict, and a
// lost version check, into the domain errors; the original error stays in
// the chain.
func mapError(err error) error {
	if errors.Is(err, errVersionLost) {
		return fmt.Errorf("%w: %w", compania.ErrConcurrentUpdate, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != codeUniqueViolation {
		return err
	}
	switch pgErr.ConstraintName {
	case pkCompanias:
		return fmt.Errorf("%w: %w", compania.ErrIDTaken, err)
	case uqNombreIdent:
		return fmt.Errorf("%w: %w", compania.ErrDuplicate, err)
	case pkIdempotency:
		return fmt.Errorf("%w: %w", command.ErrIdempotencyKeyTaken, err)
	case uqEventoVersion:
		// Another transaction stored this version of the company first.
		return fmt.Errorf("%w: %w", compania.ErrConcurrentUpdate, err)
	}
	return err
}

// mapAddError is mapError for Add. The one statement of Add may meet a
// company of the same id at the event log's (compania_id, version) key
// before it meets it at the company's primary key: for a new company that
// collision, too, means that the id is in use.
func mapAddError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == uqEventoVersion {
		return fmt.Errorf("%w: %w", compania.ErrIDTaken, err)
	}
	return mapError(err)
}

// companiaRow is the scan target of a companias row.
type companiaRow struct {
	id, nombre, email, identificacion, estado string
	motivo                                    *string
	creada, actualizada                       time.Time
	version                                   int64
}

func (c *companiaRow) scan(r pgx.Row) error {
	return r.Scan(&c.id, &c.nombre, &c.email, &c.identificacion, &c.estado, &c.motivo,
		&c.creada, &c.actualizada, &c.version)
}

func (c *companiaRow) snapshot() (compania.Snapshot, error) {
	e, err := compania.ParseEstado(c.estado)
	if err != nil {
		return compania.Snapshot{}, fmt.Errorf("compania %s: %w", c.id, err)
	}
	s := compania.Snapshot{
		ID: c.id, Nombre: c.nombre, Email: c.email, Identificacion: c.identificacion, Estado: e,
		FechaCreacion: c.creada.UTC(), FechaActualizacion: c.actualizada.UTC(), Version: c.version,
	}
	if c.motivo != nil {
		s.MotivoRechazo = *c.motivo
	}
	return s, nil
}

// fromContract is the inverse of integration.Snapshot.
func fromContract(c companiaevent.Compania) (compania.Snapshot, error) {
	e, err := compania.ParseEstado(c.Estado)
	if err != nil {
		return compania.Snapshot{}, err
	}
	s := compania.Snapshot{
		ID: c.ID, Nombre: c.Nombre, Email: c.Email, Identificacion: c.Identificacion, Estado: e,
		FechaCreacion: c.FechaCreacion.UTC(), FechaActualizacion: c.FechaActualizacion.UTC(), Version: c.Version,
	}
	if c.MotivoRechazo != nil {
		s.MotivoRechazo = *c.MotivoRechazo
	}
	return s, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
