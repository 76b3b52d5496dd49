package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ParkedRow is an outbox row the relay parked: Kafka refused it permanently
// (or the relay could not read it), so it is not published, and the later
// rows of its company (Key) wait behind it.
type ParkedRow struct {
	ID       int64
	EventID  string
	Key      string // the company id
	Topic    string
	Reason   string // park_reason, one of the Park* reasons
	ParkedAt time.Time
	// Size is the bytes of its key, value and stored headers.
	Size int64
}

// ParkedOutbox reads and resolves the parked rows of the outbox: the
// operator's side of parking (the relay parks). Its methods are safe for
// concurrent use and each runs in one statement or transaction.
type ParkedOutbox struct {
	pool *pgxpool.Pool
}

// NewParkedOutbox returns the parked rows of the outbox in pool's database.
func NewParkedOutbox(pool *pgxpool.Pool) *ParkedOutbox {
	if pool == nil {
		panic("outbox: NewParkedOutbox needs a pool")
	}
	return &ParkedOutbox{pool: pool}
}

// parkedWhere selects the parked rows (through outbox_parked_idx).
const parkedWhere = `parked_at IS NOT NULL`

// Count returns the number of parked rows and the ids of the first limit of
// them in id order (for the readiness details). It uses outbox_parked_idx
// and is cheap while few rows are parked.
func (p *ParkedOutbox) Count(ctx context.Context, limit int) (int64, []int64, error) {
	var n int64
	var ids []int64
	err := p.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox WHERE `+parkedWhere+`),
		ARRAY(SELECT id FROM outbox WHERE `+parkedWhere+` ORDER BY id LIMIT $1)`, limit).Scan(&n, &ids)
	if err != nil {
		return 0, nil, fmt.Errorf("count parked outbox rows: %w", err)
	}
	return n, ids, nil
}

// List returns every parked row in id order.
func (p *ParkedOutbox) List(ctx context.Context) ([]ParkedRow, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, event_id::text, encode(key, 'escape'), topic,
		coalesce(park_reason, ''), parked_at, length(key) + length(value) + octet_length(headers::text)
		FROM outbox WHERE `+parkedWhere+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list parked outbox rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ParkedRow, error) {
		var pr ParkedRow
		err := r.Scan(&pr.ID, &pr.EventID, &pr.Key, &pr.Topic, &pr.Reason, &pr.ParkedAt, &pr.Size)
		return pr, err
	})
	if err != nil {
		return nil, fmt.Errorf("list parked outbox rows: %w", err)
	}
	return out, nil
}

// ErrNotParked is matched (errors.Is) by the error of Retry and Discard when
// some of the ids given are not parked rows (unknown, already published
// or discarded, or not parked); the others were handled.
var ErrNotParked = errors.New("not a parked outbox row")

// Retry unparks the rows ids, so that the relay tries to publish them again
// (and the rows of their companies held behind them), and notifies
// Channel in the same transaction. It returns the ids it unparked;
// if some ids were not parked, the error matches ErrNotParked and names
// them. A row Kafka still refuses is parked again.
func (p *ParkedOutbox) Retry(ctx context.Context, ids []int64) ([]int64, error) {
	done, err := p.update(ctx, `UPDATE outbox SET parked_at = NULL, park_reason = NULL
		WHERE id = ANY($1) AND `+parkedWhere+` RETURNING id`, ids)
	if err != nil {
		return nil, fmt.Errorf("retry parked outbox rows: %w", err)
	}
	return done, notParked(ids, done)
}

// RetryAll is Retry of every parked row.
func (p *ParkedOutbox) RetryAll(ctx context.Context) ([]int64, error) {
	done, err := p.update(ctx, `UPDATE outbox SET parked_at = NULL, park_reason = NULL
		WHERE `+parkedWhere+` RETURNING id`)
	if err != nil {
		return nil, fmt.Errorf("retry parked outbox rows: %w", err)
	}
	return done, nil
}

// Discard gives up on the parked rows ids: they are deleted without being
// sent, so the rows of their companies held behind them flow again; their
// events stay in compania_eventos, the event log. It notifies Channel
// in the same transaction. It returns the ids it discarded; if some ids
// were not parked, the error matches ErrNotParked.
func (p *ParkedOutbox) Discard(ctx context.Context, ids []int64) ([]int64, error) {
	done, err := p.update(ctx, `DELETE FROM outbox WHERE id = ANY($1) AND `+parkedWhere+` RETURNING id`, ids)
	if err != nil {
		return nil, fmt.Errorf("discard parked outbox rows: %w", err)
	}
	return done, notParked(ids, done)
}

// update runs sql (returning ids) and a notification of Channel in one
// transaction.
func (p *ParkedOutbox) update(ctx context.Context, sql string, args ...any) ([]int64, error) {
	var done []int64
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		if done, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return err
		}
		if len(done) > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, Channel); err != nil {
				return fmt.Errorf("notify %s: %w", Channel, err)
			}
		}
		return nil
	})
	return done, err
}

func notParked(asked, done []int64) error {
	got := make(map[int64]bool, len(done))
	for _, id := range done {
		got[id] = true
	}
	var missing []int64
	for _, id := range asked {
		if !got[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %v", ErrNotParked, missing)
}
