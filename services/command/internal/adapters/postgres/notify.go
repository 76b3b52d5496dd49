package postgres

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// DefaultNotifyInterval is the default least time between two outbox
// notifications of one Repository (see WithNotifyInterval).
const DefaultNotifyInterval = time.Millisecond

// notifyTimeout bounds the sending of one notification.
const notifyTimeout = 5 * time.Second

// sqlNotify is one implicit transaction of its own, run after the write
// committed; set_config(…, true) lasts until its end, so it does not wait for
// its WAL flush: the notification is only a hint, worthless after a crash.
const sqlNotify = "SELECT pg_catalog.set_config('synchronous_commit', 'off', true), " +
	"pg_catalog.pg_notify('" + outbox.Channel + "', '')"

// notifier sends the outbox notification (pg_notify on outbox.Channel) on
// behalf of committed writes, coalescing them: each write owes one
// notification sent after its commit, and one notification pays every write
// that committed before it was sent.
//
// Why not NOTIFY inside the write's transaction: a transaction that ran
// NOTIFY takes a database-wide lock at commit and holds it until its commit
// record is flushed, so only one such writer of the whole database flushes at
// a time (measured: 8 concurrent Adds fell from ~1900 to ~440 creates/s). And
// why coalesce: a notification is a transaction of its own (an xid, a commit
// record, the notification queue); one per write cost ~15% of the write
// throughput of a CPU-bound server.
//
// A goroutine runs only while notifications are owed: notify starts it, it
// sends at most one notification per interval and ends when nothing is owed.
type notifier struct {
	db       *pgxpool.Pool
	log      *slog.Logger
	interval time.Duration
	owed     chan struct{} // 1-buffered: full when a notification is owed

	mu      sync.Mutex
	running bool          // a sender goroutine is running
	closing chan struct{} // closed by close
	closed  bool
	wg      sync.WaitGroup
}

func newNotifier(db *pgxpool.Pool, log *slog.Logger, interval time.Duration) *notifier {
	return &notifier{db: db, log: log, interval: interval, owed: make(chan struct{}, 1), closing: make(chan struct{})}
}

// notify records that a write committed: a notification will be sent after
// this call, unless close was called. It never blocks.
func (n *notifier) notify() {
	select {
	case n.owed <- struct{}{}:
	default: // already owed: the coming notification pays for this write too
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running || n.closed {
		return
	}
	n.running = true
	n.wg.Add(1)
	go n.run()
}

// run sends the owed notifications, at most one per interval, and returns
// when none is owed.
func (n *notifier) run() {
	defer n.wg.Done()
	var last time.Time
	for {
		if wait := n.interval - time.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-n.closing: // send what is owed without waiting
				t.Stop()
			}
		}
		n.mu.Lock()
		select {
		case <-n.owed:
			n.mu.Unlock()
		default:
			// Checked under the lock that notify takes after filling owed,
			// so a write that finds running true is always paid for.
			n.running = false
			n.mu.Unlock()
			return
		}
		last = time.Now()
		n.send()
	}
}

func (n *notifier) send() {
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	if _, err := n.db.Exec(ctx, sqlNotify); err != nil {
		n.log.WarnContext(ctx, "outbox notification not sent; the relay will find the rows when it polls",
			slog.String("channel", outbox.Channel), slog.Any("err", err))
	}
}

// close sends the notification still owed, waits for it, and makes notify
// a no-op. It is idempotent.
func (n *notifier) close() {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.closing)
	}
	n.mu.Unlock()
	n.wg.Wait()
}
