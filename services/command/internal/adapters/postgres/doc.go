// Package postgres is the PostgreSQL adapter of the command service: the
// connection pool (Open), the embedded schema migrations (Migrate, Checker),
// and the unit-of-work Repository of Compania aggregates, which writes the
// outbox rows of package outbox (its table, header encoding and channel) in
// each command's transaction.
//
// It uses pgx/v5 directly. Every write is one transaction that stores the
// company, appends its events to compania_eventos and adds one outbox row per
// event; once it has committed (never after a rollback), the repository wakes
// the relay: the one of its own process directly while it leads (WithWaker),
// else with a pg_notify on outbox.Channel.
//
// # Repository: what one call writes, and why
//
// An event's compania_eventos row and its outbox row share one event id, the
// ce_id (a new UUIDv7), and the log's data is the outbox record value, so the
// log holds exactly what is published. The idempotency record, when the Meta
// carries one, is written in the same transaction.
//
// The idempotency record stores the company as saved by the call, as the
// JSON of companiaevent.Compania; the Result field of meta.Idempotency is
// not read (for Add the use case sets it to the same snapshot; an Update
// caller cannot know it beforehand).
//
// Times are stored with PostgreSQL's microsecond precision, while the events
// and the idempotency record carry the aggregate's times as given: that is
// why the aggregate must be given a clock truncated to microseconds, so that
// both agree.
//
// Concurrency: Update locks the company row (SELECT … FOR UPDATE) for the
// whole transaction, so concurrent updates of one company run one after the
// other, each on the state the previous one committed; they do not fail with
// compania.ErrConcurrentUpdate. The UPDATE still checks the version it loaded
// (WHERE version = old), and ErrConcurrentUpdate is what a lost check would
// return; with the lock held it cannot be lost.
package postgres
