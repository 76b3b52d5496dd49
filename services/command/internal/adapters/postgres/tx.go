package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// batchSender starts transactions; *pgxpool.Pool and *pgx.Conn satisfy it.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// rollbackTimeout bounds the ROLLBACK sent after a failure. It runs on a
// context detached from the caller's, so that a cancelled request still ends
// its transaction cleanly and the connection goes back to the pool.
const rollbackTimeout = 5 * time.Second

// runInTx runs one transaction and commits it. The BEGIN travels in one
// round trip with the queries that first queues (nil for none); their
// results are read (and their callbacks run) before fn runs in the
// transaction. With fn nil the COMMIT travels in that same round trip too,
// so a transaction whose statements are known up front costs one round
// trip (BEGIN, the statements and COMMIT in one pipeline: a failed statement
// makes the server skip the rest, and the transaction is then rolled back);
// with fn it costs two plus fn's (BEGIN with the statements, fn, then COMMIT).
//
// It returns the first error of first's queries or of fn, joined with the
// rollback error if the rollback fails too; or the commit error, which
// matches pgx.ErrTxCommitRollback when the server rolled back instead (a
// statement failed and fn ignored it). It never reports success for a
// transaction that did not commit. A panic in fn rolls back and propagates.
func runInTx(ctx context.Context, db batchSender, first func(*pgx.Batch), fn func(pgx.Tx) error) (err error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if first != nil {
		first(b)
	}
	if fn == nil {
		b.Queue("commit").Exec(func(ct pgconn.CommandTag) error {
			if ct.String() != "COMMIT" {
				return pgx.ErrTxCommitRollback
			}
			return nil
		})
	}
	br := db.SendBatch(ctx, b)
	tx := br.Tx()
	committing := false
	defer func() {
		if committing {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		// ErrTxClosed: the BEGIN itself failed (or never left), or the
		// server ended the transaction (a failed COMMIT): nothing to end.
		// Either way the call hands the connection back to a pool.
		if rbErr := tx.Rollback(rctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
	}()
	if err := br.Close(); err != nil {
		return err
	}
	if fn == nil {
		// Committed with the batch: Rollback only hands the connection back
		// (the transaction is closed, ErrTxClosed).
		committing = true
		_ = tx.Rollback(ctx)
		return nil
	}
	if err := fn(tx); err != nil {
		return err
	}
	committing = true
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
