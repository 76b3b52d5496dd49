package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// batchSender starts transactions; *pgxpool.Pool and *pgx.Conn satisfy it.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// rollbackTimeout bounds the ROLLBACK sent after a failure. It runs on a
// context detached from the caller's, so that a cancelled request still ends
// its transaction cleanly and the connection goes back to the pool.
const rollbackTimeout = 5 * time.Second

// runInTx runs one transaction and commits it.
//
// With fn nil it sends the statements that first queues in one round trip,
// without BEGIN or COMMIT: the statements of one pipeline run in one
// implicit transaction that the server commits at its end, or rolls back
// when one of them fails (it then skips the rest). So a transaction whose
// statements are known up front costs one round trip and no
// transaction-control statement, and leaves nothing to roll back.
//
// With fn, the BEGIN travels in one round trip with the queries that first
// queues (nil for none); their results are read (and their callbacks run)
// before fn runs in the transaction, then COMMIT follows: two round trips
// plus fn's.
//
// It returns the first error of first's queries or of fn, joined with the
// rollback error if the rollback fails too; or the commit error, which
// matches pgx.ErrTxCommitRollback when the server rolled back instead (a
// statement failed and fn ignored it). It never reports success for a
// transaction that did not commit. A panic in fn rolls back and propagates.
func runInTx(ctx context.Context, db batchSender, first func(*pgx.Batch), fn func(pgx.Tx) error) (err error) {
	if fn == nil {
		b := &pgx.Batch{}
		if first != nil {
			first(b)
		}
		if b.Len() == 0 {
			return nil
		}
		return db.SendBatch(ctx, b).Close()
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if first != nil {
		first(b)
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
		// ErrTxClosed: the BEGIN itself failed (or never left), nothing to end.
		if rbErr := tx.Rollback(rctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
	}()
	if err := br.Close(); err != nil {
		return err
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
