package outbox_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

// Environment of the relay child process (TestHelperProcessRelay).
const (
	envHelper = "OUTBOX_TEST_HELPER" // "relay", or "crash": block before stamping
	envDSN    = "OUTBOX_TEST_DSN"
	envBroker = "OUTBOX_TEST_BROKER"
)

// TestHelperProcessRelay is not a test: it is the relay process that the
// kill -9 tests start by re-running the test binary. It prints "leading"
// once it holds the lease and, in crash mode, "published" when a batch is on
// Kafka and not yet stamped, then blocks until killed.
func TestHelperProcessRelay(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		return
	}
	ctx := context.Background()
	pool, err := postgres.Open(ctx, os.Getenv(envDSN))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	w, err := outbox.NewWriter(outbox.WriterConfig{Kafka: kafkakit.Config{Brokers: []string{os.Getenv(envBroker)}}})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	r, err := outbox.New(pool, w, outbox.Options{LockRetry: 50 * time.Millisecond, PollInterval: 100 * time.Millisecond, LeaseTTL: time.Second})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	if mode == "crash" {
		outbox.SetBeforeDelete(r, func(context.Context, []int64) {
			fmt.Println("published")
			select {} // until SIGKILL
		})
	}
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if r.Leading() {
				fmt.Println("leading")
				return
			}
		}
	}()
	_ = r.Run(ctx)
	os.Exit(0)
}

// child is a relay running in another process.
type child struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
}

func startChild(t *testing.T, mode, dsn, broker string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessRelay$")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envDSN+"="+dsn, envBroker+"="+broker)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.kill(t) })
	return c
}

func (c *child) said(line string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if l == line {
			return true
		}
	}
	return false
}

// kill sends SIGKILL and reaps the process (idempotent).
func (c *child) kill(t *testing.T) {
	t.Helper()
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// (2) kill -9 between publish and stamp: the event was on Kafka, its row is
// still unpublished, and the next relay publishes it again with the same
// ce_id; nothing is lost.
func TestIntegrationRelayKilledBetweenPublishAndMark(t *testing.T) {
	t.Parallel()
	pool, dsn := newPool(t)
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	c := consume(t, b.Addr(), topic)

	first := company(t, 1)
	mustCommit(t, pool, topic, first...)
	p := startChild(t, "crash", dsn, b.Addr())
	waitFor(t, 60*time.Second, "the child to publish", func() bool { return p.said("published") })
	waitFor(t, 20*time.Second, "the event on Kafka", func() bool { return c.hasAll(first) })
	p.kill(t)
	if n := unpublished(t, pool); n != 1 {
		t.Fatalf("%d rows unpublished after the crash, want 1", n)
	}

	second := company(t, 1)
	mustCommit(t, pool, topic, second...)
	r, err := outbox.New(pool, newWriter(t, b.Addr()), outbox.Options{LockRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	id := header(first[0].Headers, companiaevent.HeaderID)
	waitFor(t, 20*time.Second, "the first event again and the second", func() bool {
		return c.ids()[id] == 2 && c.hasAll(second)
	})
	waitFor(t, 10*time.Second, "every row deleted", func() bool { return unpublished(t, pool) == 0 })
	var copies int
	for _, m := range c.all() {
		if kheader(m.Headers, companiaevent.HeaderID) == id {
			copies++
			if string(m.Value) != string(first[0].Value) {
				t.Errorf("the resent record differs from the first copy")
			}
		}
	}
	if copies != 2 {
		t.Errorf("%d copies of %s, want 2 (at least once, same ce_id)", copies, id)
	}
}

// (3) two replicas: only the lease holder publishes; after kill -9 of the
// holder (another process), the standby takes over within LeaseTTL +
// LockRetry and nothing is lost.
func TestIntegrationRelayFailoverAfterKill(t *testing.T) {
	t.Parallel()
	pool, dsn := newPool(t)
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	c := consume(t, b.Addr(), topic)

	p := startChild(t, "relay", dsn, b.Addr())
	waitFor(t, 60*time.Second, "the child to lead", func() bool { return p.said("leading") })
	var standbyRows int
	var mu sync.Mutex
	r, err := outbox.New(pool, newWriter(t, b.Addr()), outbox.Options{
		LockRetry: 100 * time.Millisecond,
		LeaseTTL:  time.Second,
		OnPublished: func(n int, _ time.Time) {
			mu.Lock()
			standbyRows += n
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)

	var before []companiaevent.Message
	for range 10 {
		evs := company(t, 3)
		before = append(before, evs...)
		mustCommit(t, pool, topic, evs...)
	}
	waitFor(t, 20*time.Second, "the leader to relay", func() bool { return c.hasAll(before) && unpublished(t, pool) == 0 })
	mu.Lock()
	n := standbyRows
	mu.Unlock()
	if n != 0 || r.Leading() {
		t.Fatalf("standby published %d rows (leading=%v) while the child held the lease", n, r.Leading())
	}

	killed := time.Now()
	p.kill(t)
	waitFor(t, 10*time.Second, "the standby to take over", r.Leading)
	t.Logf("standby took over %v after kill -9 (LeaseTTL 1s, LockRetry 100ms)", time.Since(killed).Round(time.Millisecond))

	var after []companiaevent.Message
	for range 10 {
		evs := company(t, 3)
		after = append(after, evs...)
		mustCommit(t, pool, topic, evs...)
	}
	waitFor(t, 20*time.Second, "the new leader to relay", func() bool { return c.hasAll(after) && unpublished(t, pool) == 0 })
	checkCompanyOrder(t, c.all(), false)
}
