package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// DefaultGroupCommitMax is the default batch bound of WithGroupCommit.
const DefaultGroupCommitMax = 64

// MaxGroupCommitMax is the largest batch bound WithGroupCommit accepts.
const MaxGroupCommitMax = 1000

// groupCommitters is how many group transactions may be in flight at once.
// Two keep the server busy while the next batch gathers: one commits while
// the other's statement runs; more of them split the waiting commands into
// smaller batches. Measured end to end (bench -peer-only, the writer over
// HTTP, 2 cores, two alternating rounds of 2 runs): 2 committers 2368–2731
// creates/s at concurrency 8 and 3258–4607 at 32; 4 committers 1503–2202
// and 2543–3997, though 4 looked better in the repository-level
// BenchmarkCreate, where no HTTP server competes for the cores.
const groupCommitters = 2

// groupCommitTimeout bounds a group transaction whose commands carry no
// deadline. The transaction runs on a context of its own, so that one
// caller who gives up does not fail its neighbours.
const groupCommitTimeout = 30 * time.Second

// WithGroupCommit makes Add write the creates of concurrent callers together:
// a committer takes every create that is waiting, up to max, and stores their
// company rows, event-log rows, outbox rows and idempotency records with one
// multi-row statement, in one round trip and one transaction. There is no
// timer: a committer starts as soon as a create waits and fewer than
// groupCommitters are in flight, so a lone create is written at once, by the single-create
// statement of Add; creates that arrive while the committers are busy wait
// for the next batch.
//
// Every caller still gets its own answer. When the server refuses the batch
// statement for its data (a duplicate nombre and identificacion, an id or an
// idempotency key in use, within the batch or against stored rows), nothing
// of it is stored, and each create of the batch is written again alone, one
// after the other in arrival order, and answered by its own transaction
// (ErrDuplicate, ErrIDTaken, ErrIdempotencyKeyTaken, or success). Any other
// failure (the database is unavailable, the connection was lost, the time
// ran out) is the answer of every create of the batch, of kind
// apperr.Unavailable when the database is unavailable, as for a single Add.
// max ≤ 1 disables group commit; larger than MaxGroupCommitMax is clamped.
func WithGroupCommit(max int) RepositoryOption {
	return func(r *Repository) {
		if max <= 1 {
			r.group = nil
			return
		}
		r.group = &groupCommitter{r: r, max: min(max, MaxGroupCommitMax), committers: groupCommitters}
	}
}

// groupCommitter batches the Adds of concurrent callers ("leader collects
// followers"): Add queues its create; if fewer than groupCommitters are
// running, it starts one, which takes the queue (up to max) and writes it,
// and goes on while creates wait.
type groupCommitter struct {
	r          *Repository
	max        int
	committers int // most batches in flight

	mu      sync.Mutex
	queue   []*pendingAdd
	running int

	// onBatch, when set (tests), runs before each batch is written with its
	// size.
	onBatch func(n int)
}

// pendingAdd is one create waiting for, or in, a group transaction.
type pendingAdd struct {
	ctx  context.Context
	s    compania.Snapshot
	w    writes
	done chan error // 1-buffered: the answer
}

// add queues the create and waits for its answer or for ctx to end. A
// create whose ctx ends before a committer took it is not written; one whose
// ctx ends later may still commit, as a single Add may when its ctx ends
// during COMMIT.
func (g *groupCommitter) add(ctx context.Context, s compania.Snapshot, w writes) error {
	p := &pendingAdd{ctx: ctx, s: s, w: w, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	if g.running < g.committers {
		g.running++
		go g.run()
	}
	g.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("add compania %s: %w", s.ID, context.Cause(ctx))
	}
}

// run writes batches while creates wait.
func (g *groupCommitter) run() {
	for {
		g.mu.Lock()
		n := min(len(g.queue), g.max)
		if n == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		batch := make([]*pendingAdd, 0, n)
		for _, p := range g.queue[:n] {
			if err := p.ctx.Err(); err != nil {
				p.done <- fmt.Errorf("add compania %s: %w", p.s.ID, context.Cause(p.ctx))
				continue
			}
			batch = append(batch, p)
		}
		clear(g.queue[:n])
		g.queue = g.queue[n:]
		g.mu.Unlock()
		if len(batch) > 0 {
			g.write(batch)
		}
	}
}

// write stores batch in one transaction and answers each of its creates.
func (g *groupCommitter) write(batch []*pendingAdd) {
	if g.onBatch != nil {
		g.onBatch(len(batch))
	}
	ctx, cancel := batchContext(batch)
	defer cancel()
	if len(batch) == 1 {
		p := batch[0]
		p.done <- g.r.addOne(ctx, p.s, p.w)
		return
	}
	err := runInTx(ctx, g.r.db, func(b *pgx.Batch) { queueCreadas(b, g.r.topic, batch) }, nil)
	switch {
	case err == nil:
		g.r.committed()
		for _, p := range batch {
			p.done <- nil
		}
	case statementFailed(err):
		// The server refused the statement, so its implicit transaction
		// rolled back and nothing was stored. Which create failed, and
		// why, is for each one's own transaction to tell; arrival order
		// decides between two creates of the batch that collide.
		for _, p := range batch {
			p.done <- g.r.addOne(ctx, p.s, p.w)
		}
	default:
		// An outage, a lost connection, a timeout: the outcome is the
		// batch's, shared by all of its creates, as a single Add's would be.
		for _, p := range batch {
			p.done <- fmt.Errorf("add compania %s: %w", p.s.ID, unavailable(err))
		}
	}
}

// statementFailed reports whether err is the server's refusal of a statement
// for its data (class 22 data exception, class 23 integrity constraint
// violation, 40P01 deadlock, 40001 serialization failure), after which the
// transaction is known to have rolled back and the commands may run again.
func statementFailed(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23") ||
		pgErr.Code == "40P01" || pgErr.Code == "40001"
}

// batchContext is the context of a group transaction: the latest deadline
// of its creates, or groupCommitTimeout if one has none; never cancelled by
// one of its callers.
func batchContext(batch []*pendingAdd) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			return context.WithTimeout(context.Background(), groupCommitTimeout)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}

// sqlInsertCreadas is sqlInsertCreada for many companies: the arrays hold one
// element per company (text for the uuid and jsonb columns, cast in SQL), and
// the idempotency arrays one per record. The statement either stores all of
// them or, on any error, none.
const sqlInsertCreadas = `WITH idem AS (
        INSERT INTO idempotency_keys (scope, key, request_hash, compania_id, result)
        SELECT s, k, h, c::uuid, r::jsonb FROM unnest($19::text[], $20::text[], $21::bytea[], $22::text[], $23::text[]) AS t(s, k, h, c, r)
    ), compania AS (
        INSERT INTO companias
        (id, nombre, email, identificacion, estado, motivo_rechazo, fecha_creacion, fecha_actualizacion, version)
        SELECT i::uuid, n, e, d, st, m, fc, fa, v
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::bigint[])
            AS t(i, n, e, d, st, m, fc, fa, v)
    ), evento AS (
        INSERT INTO compania_eventos (id, compania_id, version, nombre, data, occurred_at)
        SELECT i::uuid, c::uuid, v, n, d::jsonb, o
        FROM unnest($10::text[], $1::text[], $11::bigint[], $12::text[], $13::text[], $14::timestamptz[]) AS t(i, c, v, n, d, o)
    )
    INSERT INTO outbox (event_id, topic, key, value, headers)
    SELECT i::uuid, t, k, v, h::jsonb
    FROM unnest($10::text[], $15::text[], $16::bytea[], $17::bytea[], $18::text[]) AS x(i, t, k, v, h)`

// queueCreadas queues sqlInsertCreadas for batch, whose creates each record
// exactly one event. The outbox rows take their ids in batch order.
func queueCreadas(b *pgx.Batch, topic string, batch []*pendingAdd) {
	n := len(batch)
	var (
		ids, nombres, emails, idents, estados = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		motivos                               = make([]*string, n)
		creadas, actualizadas                 = make([]time.Time, n), make([]time.Time, n)
		versions                              = make([]int64, n)
		evIDs, evNames, evData, headers       = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		evVersions                            = make([]int64, n)
		occurred                              = make([]time.Time, n)
		topics                                = make([]string, n)
		keys, values                          = make([][]byte, n), make([][]byte, n)
		iScopes, iKeys, iIDs, iResults        []string
		iHashes                               [][]byte
	)
	for i, p := range batch {
		s, e := p.s, p.w.events[0]
		ids[i], nombres[i], emails[i], idents[i], estados[i] = s.ID, s.Nombre, s.Email, s.Identificacion, s.Estado.String()
		motivos[i] = nullable(s.MotivoRechazo)
		creadas[i], actualizadas[i], versions[i] = s.FechaCreacion, s.FechaActualizacion, s.Version
		evIDs[i], evVersions[i], evNames[i], evData[i], occurred[i] = e.id, e.version, e.name, string(e.msg.Value), e.occurredAt
		topics[i], keys[i], values[i], headers[i] = topic, e.msg.Key, e.msg.Value, string(e.headers)
		if k := p.w.idem; k != nil {
			hash := k.RequestHash
			if hash == nil {
				hash = []byte{} // request_hash is NOT NULL
			}
			iScopes, iKeys, iHashes = append(iScopes, k.Scope), append(iKeys, k.Key), append(iHashes, hash)
			iIDs, iResults = append(iIDs, s.ID), append(iResults, string(p.w.idemResult))
		}
	}
	b.Queue(sqlInsertCreadas, ids, nombres, emails, idents, estados, motivos, creadas, actualizadas, versions,
		evIDs, evVersions, evNames, evData, occurred, topics, keys, values, headers,
		iScopes, iKeys, iHashes, iIDs, iResults)
}
