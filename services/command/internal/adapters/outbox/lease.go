package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
)

// DefaultLeaseTTL is the default time to live of the relay's lease: how
// long a leader that stopped renewing (killed, frozen, cut off from
// PostgreSQL) keeps the others from taking over.
const DefaultLeaseTTL = 5 * time.Second

// RelayApplicationName is the application_name of the relay's database
// session, which holds the lease (see pg_stat_activity).
const RelayApplicationName = "companias-outbox-relay"

// errLeaseLost ends a session whose lease another relay took.
var errLeaseLost = errors.New("outbox relay lease taken by another relay")

// The lease row (migration 0003_outbox_relay_lease). Every time is the
// server's clock_timestamp(), so relays on hosts with skewed clocks agree.
// A relay retakes a lease it still holds (a new session of the same Relay
// after its connection failed) without waiting for it to expire: its old
// session no longer publishes.
const (
	acquireLeaseSQL = `UPDATE outbox_relay_lease
SET epoch = epoch + 1, holder = $1, expires_at = clock_timestamp() + $2 * interval '1 microsecond'
WHERE name = 'outbox' AND (expires_at < clock_timestamp() OR holder = $1)
RETURNING epoch`
	renewLeaseSQL = `UPDATE outbox_relay_lease
SET expires_at = clock_timestamp() + $3 * interval '1 microsecond'
WHERE name = 'outbox' AND holder = $1 AND epoch = $2`
	releaseLeaseSQL = `UPDATE outbox_relay_lease SET expires_at = clock_timestamp()
WHERE name = 'outbox' AND holder = $1 AND epoch = $2`
)

// holderID returns a relay's lease holder name: host, pid and a random
// part, unique per Relay.
func holderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// fenceMargin is how long before the lease's earliest expiry the fence
// ends: room for bytes already written to reach the broker before a new
// leader may write.
func (r *Relay) fenceMargin() time.Duration { return r.opts.LeaseTTL / 5 }

// leaseTimeout bounds one lease statement: past TTL the lease is gone
// anyway.
func (r *Relay) leaseTimeout() time.Duration { return min(r.opts.StatementTimeout, r.opts.LeaseTTL) }

// held records a lease acquired or renewed by a statement sent at t0: the
// lease cannot expire in PostgreSQL before t0 + TTL, so the fence ends a
// margin before that.
func (r *Relay) held(epoch int64, t0 time.Time) {
	r.leaseAt = t0
	r.epoch.Store(epoch)
	r.fence.open(t0.Add(r.opts.LeaseTTL - r.fenceMargin()))
}

// dropLease closes the fence and forgets the lease.
func (r *Relay) dropLease() {
	r.fence.close()
	r.epoch.Store(0)
	r.leaseAt = time.Time{}
}

// acquireLease takes the lease if it has expired, and reports whether it
// did.
func (r *Relay) acquireLease(ctx context.Context, conn *pgx.Conn) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, r.leaseTimeout())
	defer cancel()
	t0 := time.Now()
	var epoch int64
	err := conn.QueryRow(qctx, acquireLeaseSQL, r.me, r.opts.LeaseTTL.Microseconds()).Scan(&epoch)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("acquire outbox relay lease: %w", err)
	}
	r.held(epoch, t0)
	return true, nil
}

// renewLease extends the lease by TTL. It returns errLeaseLost, with the
// fence closed, when another relay has taken it; on a database error the
// fence stays open until it ends by itself.
func (r *Relay) renewLease(ctx context.Context, conn *pgx.Conn) error {
	epoch := r.epoch.Load()
	if epoch == 0 {
		return errLeaseLost
	}
	qctx, cancel := context.WithTimeout(ctx, r.leaseTimeout())
	defer cancel()
	t0 := time.Now()
	tag, err := conn.Exec(qctx, renewLeaseSQL, r.me, epoch, r.opts.LeaseTTL.Microseconds())
	if err != nil {
		return fmt.Errorf("renew outbox relay lease: %w", err)
	}
	if tag.RowsAffected() == 0 {
		r.dropLease()
		return errLeaseLost
	}
	r.held(epoch, t0)
	return nil
}

// renewDueIn returns how long until the lease is due for renewal: when
// less than 2/3 of TTL remains, so that the fence keeps more than TTL/3 for
// a publish.
func (r *Relay) renewDueIn() time.Duration {
	return max(0, r.opts.LeaseTTL/3-time.Since(r.leaseAt))
}

// renewIfDue renews the lease when it is due, or when the fence leaves less
// than TTL/3 to publish.
func (r *Relay) renewIfDue(ctx context.Context, conn *pgx.Conn) error {
	if r.renewDueIn() > 0 && time.Until(r.fence.Until()) >= r.opts.LeaseTTL/3 {
		return nil
	}
	return r.renewLease(ctx, conn)
}

// releaseLease closes the fence and, if the lease is still this relay's,
// ends it now, so that a standby takes over at its next try instead of
// after TTL (rolling restarts). The session may be dead: it tries briefly.
func (r *Relay) releaseLease(ctx context.Context, conn *pgx.Conn) {
	epoch := r.epoch.Load()
	r.dropLease()
	if epoch == 0 || conn.IsClosed() {
		return
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(r.leaseTimeout(), 2*time.Second))
	defer cancel()
	if _, err := conn.Exec(qctx, releaseLeaseSQL, r.me, epoch); err != nil {
		r.log.Warn("could not release the outbox relay lease; a standby takes over when it expires",
			"err", err, "epoch", epoch, "ttl", r.opts.LeaseTTL)
		return
	}
	r.log.Info("outbox relay released its lease", "epoch", epoch)
}

// leasedPublisher checks the lease before every publish of the relay: it
// renews the lease first when due, so that the fence leaves at least TTL/3
// for the write, and refuses to publish once the lease is lost. It runs on
// the relay goroutine, on the session's connection.
type leasedPublisher struct {
	r    *Relay
	next Publisher
}

func (p *leasedPublisher) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if p.r.conn == nil {
		return errLeaseLost
	}
	if err := p.r.renewIfDue(ctx, p.r.conn); err != nil {
		return err
	}
	return p.next.WriteMessages(ctx, msgs...)
}
