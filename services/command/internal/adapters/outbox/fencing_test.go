package outbox_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

// gate freezes the writes of the broker connections it wraps: once closed,
// every Write waits until it reopens, then goes on to the connection under
// it (the fenced one). It stands for a leader frozen mid-publish (SIGSTOP)
// after its fence check: the fence is checked when the gate reopens.
type gate struct {
	mu     sync.Mutex
	opened chan struct{} // closed while the gate is open
	frozen bool          // closed at least once

	waiting         atomic.Int32 // writes held at the gate now
	lateOK, lateErr atomic.Int32 // outcome of writes started after the gate closed
}

func newGate() *gate {
	g := &gate{opened: make(chan struct{})}
	close(g.opened)
	return g
}

func (g *gate) close() {
	g.mu.Lock()
	g.opened = make(chan struct{})
	g.frozen = true
	g.mu.Unlock()
}

// open reopens the gate; it is idempotent.
func (g *gate) open() {
	g.mu.Lock()
	select {
	case <-g.opened:
	default:
		close(g.opened)
	}
	g.mu.Unlock()
}

func (g *gate) wrap(next outbox.DialFunc) outbox.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &gatedConn{Conn: c, g: g}, nil
	}
}

type gatedConn struct {
	net.Conn
	g *gate
}

func (c *gatedConn) Write(b []byte) (int, error) {
	c.g.mu.Lock()
	opened, late := c.g.opened, c.g.frozen
	c.g.mu.Unlock()
	c.g.waiting.Add(1)
	<-opened
	c.g.waiting.Add(-1)
	n, err := c.Conn.Write(b)
	if late {
		if err != nil {
			c.g.lateErr.Add(1)
		} else {
			c.g.lateOK.Add(1)
		}
	}
	return n, err
}

// pgProxy forwards TCP connections to PostgreSQL until it is cut: then it
// blackholes them (drops every byte, keeps the sockets open), as a network
// partition does, so neither end notices.
type pgProxy struct {
	ln     net.Listener
	target string
	cut    atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	once  sync.Once
}

// startProxy returns a proxy to target ("host:port"), closed at cleanup.
func startProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *pgProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if p.cut.Load() {
			p.wg.Go(func() { p.forward(io.Discard, c) })
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(s)
		p.wg.Go(func() { p.forward(s, c) })
		p.wg.Go(func() { p.forward(c, s) })
	}
}

func (p *pgProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// forward copies src to dst until src fails; once the proxy is cut it
// reads and drops.
func (p *pgProxy) forward(dst io.Writer, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *pgProxy) close() {
	p.once.Do(func() {
		_ = p.ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
}

// dsn returns dsn with its host replaced by the proxy's address.
func (p *pgProxy) dsn(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// dbHost returns the host:port of a PostgreSQL URL.
func dbHost(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

// versionsOf returns the versions of key's records in offset order (a key
// lives on one partition).
func versionsOf(t *testing.T, msgs []kafka.Message, key string) []int64 {
	t.Helper()
	var mine []kafka.Message
	for _, m := range msgs {
		if string(m.Key) == key {
			mine = append(mine, m)
		}
	}
	sortByOffset(mine)
	var out []int64
	for _, m := range mine {
		e, err := companiaevent.Decode(toContract(m.Headers), m.Value)
		if err != nil {
			t.Fatalf("decode p%d@%d: %v", m.Partition, m.Offset, err)
		}
		out = append(out, e.Data.Compania.Version)
	}
	return out
}

// fenceRig is a database, a broker and a topic with two relays: A, whose
// broker writes pass a gate outside its fence and whose database is
// reached through pool dbA, and B, plain.
type fenceRig struct {
	pool  *pgxpool.Pool // direct, for commits and B
	topic string
	c     *consumer
	g     *gate
	a, b  *outbox.Relay
	pubA  *countingPublisher
	logsA *logRecorder
}

const testLeaseTTL = time.Second

func newFenceRig(t *testing.T, dbA func(pool *pgxpool.Pool, dsn string) *pgxpool.Pool) *fenceRig {
	t.Helper()
	pool, dsn := newPool(t)
	br := startBroker(t, "", "")
	rig := &fenceRig{pool: pool, topic: newTopic(t, br.Addr()), g: newGate(), logsA: &logRecorder{}}
	rig.c = consume(t, br.Addr(), rig.topic)
	opts := outbox.Options{LeaseTTL: testLeaseTTL, LockRetry: 50 * time.Millisecond, PollInterval: 100 * time.Millisecond,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond}

	// A's own producer timeout is long: only the fence can stop its writes.
	wA, err := outbox.NewWriter(outbox.WriterConfig{Kafka: kafkakit.Config{Brokers: []string{br.Addr()}}, WriteTimeout: time.Minute, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	outbox.WrapDial(wA, rig.g.wrap)
	rig.pubA = &countingPublisher{Publisher: wA}
	optsA := opts
	optsA.Fence, optsA.Logger = wA.Fence(), slog.New(rig.logsA)
	if rig.a, err = outbox.New(dbA(pool, dsn), rig.pubA, optsA); err != nil {
		t.Fatal(err)
	}
	runRelay(t, rig.a)
	t.Cleanup(rig.g.open) // before the relays stop (cleanups run last first)
	waitFor(t, 10*time.Second, "relay A to lead", rig.a.Leading)

	// A publishes once with the gate open: its broker connections exist.
	warm := company(t, 1)
	mustCommit(t, pool, rig.topic, warm...)
	waitFor(t, 20*time.Second, "A's first record", func() bool { return rig.c.hasAll(warm) })

	if rig.b, err = outbox.New(pool, newWriter(t, br.Addr()), opts); err != nil {
		t.Fatal(err)
	}
	runRelay(t, rig.b)
	return rig
}

// freezeA closes A's gate and commits X v1..v3 in one transaction; it
// returns when A is frozen in the middle of publishing them.
func (rig *fenceRig) freezeA(t *testing.T, x []companiaevent.Message) time.Time {
	t.Helper()
	rig.g.close()
	mustCommit(t, rig.pool, rig.topic, x[:3]...)
	waitFor(t, 10*time.Second, "A frozen mid-publish", func() bool { return rig.g.waiting.Load() > 0 })
	return time.Now()
}

// takeOver waits for B to lead, commits X v4..v6 one by one, waits for B to
// publish them, then thaws A and checks that nothing A wrote after the
// freeze reached the broker and that X's versions never go back.
func (rig *fenceRig) takeOver(t *testing.T, x []companiaevent.Message, frozen time.Time, what string) {
	t.Helper()
	waitFor(t, 10*testLeaseTTL, "B to take over", rig.b.Leading)
	t.Logf("%s: B leads %v after A froze (LeaseTTL %v, LockRetry 50ms)", what, time.Since(frozen).Round(time.Millisecond), testLeaseTTL)
	if rig.a.Leading() {
		t.Error("A still reports Leading() after B took over")
	}
	for _, m := range x[3:] {
		mustCommit(t, rig.pool, rig.topic, m)
	}
	waitFor(t, 20*time.Second, "B to publish v1..v6", func() bool { return rig.c.hasAll(x) })

	rig.g.open()
	waitFor(t, 20*time.Second, "A's frozen writes to go on", func() bool {
		return rig.g.lateErr.Load()+rig.g.lateOK.Load() > 0 && rig.g.waiting.Load() == 0
	})
	// A marker B publishes after A's publish failed: the consumer has read
	// past anything A could have landed.
	marker := company(t, 1)
	mustCommit(t, rig.pool, rig.topic, marker...)
	waitFor(t, 20*time.Second, "the marker", func() bool { return rig.c.hasAll(marker) })
	waitFor(t, 10*time.Second, "every row deleted", func() bool { return unpublished(t, rig.pool) == 0 })

	if n := rig.g.lateOK.Load(); n != 0 {
		t.Errorf("%d writes of the frozen leader A reached the broker after it lost its lease, want 0", n)
	}
	if n := rig.pubA.Failures(); n == 0 {
		t.Error("A's frozen publish did not fail")
	}
	got := versionsOf(t, rig.c.all(), string(x[0].Key))
	if !slices.IsSorted(got) {
		t.Errorf("versions of company X in partition order %v: an earlier version after a later one", got)
	}
	if len(got) < 6 || got[len(got)-1] != 6 {
		t.Errorf("versions of company X %v, want v1..v6 (duplicates allowed)", got)
	}
	checkCompanyOrder(t, rig.c.all(), false)
	if rig.a.Leading() || rig.a.Epoch() != 0 {
		t.Errorf("A: Leading() = %v, Epoch() = %d after losing its lease; want false, 0", rig.a.Leading(), rig.a.Epoch())
	}
	if eb := rig.b.Epoch(); eb < 2 {
		t.Errorf("B's epoch %d, want above A's", eb)
	}
}

// A leader frozen mid-publish (its broker writes held, as by SIGSTOP) loses
// its lease after LeaseTTL; B takes over and publishes X v1..v6; when A
// thaws, its fence refuses every write, so no version of X lands after a
// later one.
func TestIntegrationRelayFrozenLeaderIsFenced(t *testing.T) {
	t.Parallel()
	rig := newFenceRig(t, func(pool *pgxpool.Pool, _ string) *pgxpool.Pool { return pool })
	x := company(t, 6)
	frozen := rig.freezeA(t, x)
	rig.takeOver(t, x, frozen, "freeze")
	waitFor(t, 10*time.Second, "A to log the lost lease", func() bool { return rig.logsA.contains("lost its lease") })
}

// A leader whose PostgreSQL connection is cut (blackholed: no error, no
// reset) while it publishes, Kafka still reachable: B takes over after
// LeaseTTL, and A's late writes are fenced.
func TestIntegrationRelayLeaderCutOffFromPostgresIsFenced(t *testing.T) {
	t.Parallel()
	var proxy *pgProxy
	rig := newFenceRig(t, func(_ *pgxpool.Pool, dsn string) *pgxpool.Pool {
		proxy = startProxy(t, dbHost(t, dsn))
		pool, err := postgres.Open(context.Background(), proxy.dsn(t, dsn), postgres.WithMaxConns(4))
		if err != nil {
			t.Fatalf("open pool through the proxy: %v", err)
		}
		t.Cleanup(pool.Close)
		return pool
	})
	t.Cleanup(proxy.close) // before the relays stop: A's session ends
	x := company(t, 6)
	frozen := rig.freezeA(t, x)
	proxy.cut.Store(true)
	rig.takeOver(t, x, frozen, "cut")
	waitFor(t, 10*time.Second, "A to give up its dead session", func() bool { return rig.logsA.contains("reconnecting") })
}

// A relay whose lease another holder took (epoch bumped in SQL) stops
// publishing at once and stands by: its fence is closed; it leads again,
// with a higher epoch, once that lease expires.
func TestIntegrationRelayStopsWhenItsLeaseIsTaken(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{}
	fence := outbox.NewFence()
	logs := &logRecorder{}
	r, err := outbox.New(pool, pub, outbox.Options{LeaseTTL: 600 * time.Millisecond, LockRetry: 20 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, Fence: fence, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	waitFor(t, 10*time.Second, "the relay to lead", r.Leading)
	first := r.Epoch()
	if first == 0 || fence.Until().IsZero() {
		t.Fatalf("leading with epoch %d and fence %v; want both set", first, fence.Until())
	}

	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE outbox_relay_lease SET epoch = epoch + 1, holder = 'intruder',
		expires_at = clock_timestamp() + interval '1 hour' WHERE name = 'outbox'`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the relay to notice", func() bool { return !r.Leading() && r.Epoch() == 0 })
	if !fence.Until().IsZero() {
		t.Errorf("fence %v after the lease was lost, want closed", fence.Until())
	}
	// Run logs the loss after the session has ended, just after Leading
	// turned false.
	waitFor(t, 5*time.Second, "a log about the lost lease", func() bool { return logs.contains("lost its lease") })
	mustCommit(t, pool, "t", company(t, 2)...)
	// Several renewal periods and polls: still nothing published.
	deadline := time.Now().Add(time.Second)
	waitFor(t, 5*time.Second, "a second of standby", func() bool { return time.Now().After(deadline) })
	if n := len(pub.Calls()); n != 0 || r.Leading() {
		t.Fatalf("published %d batches (leading %v) without the lease", n, r.Leading())
	}

	if _, err := pool.Exec(ctx, `UPDATE outbox_relay_lease SET expires_at = clock_timestamp() WHERE name = 'outbox'`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the rows published after the lease expired", func() bool { return unpublished(t, pool) == 0 })
	if e := r.Epoch(); e <= first+1 {
		t.Errorf("epoch %d after retaking the lease, want above the intruder's %d", e, first+1)
	}
}
