// Command rebalance measures how long a consumer group of the workspace
// (libs/kafkakit/groupconsumer, as the reader and the writer's intake run
// it) takes to reassign partitions, on the embedded broker:
//
//   - add: one member owns every partition; a second joins; the time until
//     the two own disjoint halves of the partitions that cover the topic.
//   - kill: two members share the partitions; one is cut off abruptly (its
//     connections closed and new ones refused, so it sends no LeaveGroup,
//     as a killed process or a lost node); the time until the survivor
//     owns every partition.
//
// for each session timeout / heartbeat interval pair given, a few runs each,
// and prints a Markdown table of the median and spread. The rebalance
// timeout is kafkakit.DefaultRebalanceTimeout.
//
//	go run ./cmd/rebalance -settings 6s/1s,10s/1s,30s/3s -runs 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
)

const topic = "rebalance-bench"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rebalance:", err)
		os.Exit(1)
	}
}

// setting is one membership configuration measured.
type setting struct{ session, heartbeat time.Duration }

func parseSettings(s string) ([]setting, error) {
	var out []setting
	for _, part := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "/")
		if !ok {
			return nil, fmt.Errorf("setting %q is not session/heartbeat", part)
		}
		session, err := time.ParseDuration(a)
		if err != nil {
			return nil, err
		}
		heartbeat, err := time.ParseDuration(b)
		if err != nil {
			return nil, err
		}
		m := kafkakit.Membership{SessionTimeout: session, HeartbeatInterval: heartbeat, RebalanceTimeout: kafkakit.DefaultRebalanceTimeout}
		if err := m.Validate(); err != nil {
			return nil, err
		}
		out = append(out, setting{session, heartbeat})
	}
	return out, nil
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rebalance", flag.ContinueOnError)
	settingsFlag := fs.String("settings", "6s/1s,10s/1s,30s/3s", "session/heartbeat pairs to measure, comma-separated")
	runs := fs.Int("runs", 3, "runs per scenario and setting")
	partitions := fs.Int("partitions", 6, "partitions of the topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	settings, err := parseSettings(*settingsFlag)
	if err != nil {
		return err
	}
	b, err := kafkabroker.Start(kafkabroker.Options{})
	if err != nil {
		return err
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.CreateTopics(ctx, *partitions, topic); err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(out, "Rebalance and takeover on the embedded broker (kfake), topic of %d partitions, %d runs each; %s, GOMAXPROCS %d, %s.\n\n",
		*partitions, *runs, runtime.Version(), runtime.GOMAXPROCS(0), time.Now().UTC().Format(time.DateOnly))
	fmt.Fprintln(out, "| scenario | session / heartbeat | median | min–max |")
	fmt.Fprintln(out, "|---|---|---|---|")
	group := 0
	for _, s := range settings {
		for _, sc := range []struct {
			name    string
			measure func(addr, group string, s setting, partitions int) (time.Duration, error)
		}{{"add a member", measureAdd}, {"kill a member (no LeaveGroup)", measureKill}} {
			var ds []time.Duration
			for range *runs {
				group++
				d, err := sc.measure(b.Addr(), fmt.Sprintf("rebalance-%d", group), s, *partitions)
				if err != nil {
					return fmt.Errorf("%s, session %s: %w", sc.name, s.session, err)
				}
				ds = append(ds, d)
			}
			slices.Sort(ds)
			fmt.Fprintf(out, "| %s | %s / %s | %s | %s–%s |\n", sc.name, s.session, s.heartbeat,
				round(ds[len(ds)/2]), round(ds[0]), round(ds[len(ds)-1]))
		}
	}
	fmt.Fprintf(out, "\nTotal %s.\n", round(time.Since(start)))
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

// member is one running group member.
type member struct {
	c      *groupconsumer.Consumer
	cut    *cutter
	cancel context.CancelFunc
	done   chan error
}

func (m *member) stop() {
	m.cancel()
	<-m.done
}

func (m *member) owned() map[int]int64 { return m.c.Assignment().Partitions }

// startMember runs a member of group whose connections pass through a cutter.
func startMember(addr, group string, s setting) (*member, error) {
	cut := &cutter{}
	dialer, err := kafkakit.Config{Brokers: []string{addr}, ClientID: "rebalance-bench"}.Dialer(kafkakit.WithDialWrapper(cut.wrap))
	if err != nil {
		return nil, err
	}
	c, err := groupconsumer.New(groupconsumer.Config{
		Brokers: []string{addr}, GroupID: group, Topic: topic, DisableDLQ: true, Dialer: dialer,
		SessionTimeout: s.session, HeartbeatInterval: s.heartbeat, RebalanceTimeout: kafkakit.DefaultRebalanceTimeout,
		MaxWait: 250 * time.Millisecond, CloseTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{c: c, cut: cut, cancel: cancel, done: make(chan error, 1)}
	go func() {
		m.done <- c.Run(ctx, groupconsumer.HandlerFunc(func(context.Context, []kafka.Message, groupconsumer.DeadLetterer) error { return nil }))
	}()
	return m, nil
}

// waitFor polls cond every 5ms until it holds, for at most limit.
func waitFor(limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		<-t.C
	}
	return nil
}

// split reports whether the members own disjoint, non-empty sets of
// partitions that together cover all of them.
func split(partitions int, ms ...*member) bool {
	seen := map[int]int{}
	for _, m := range ms {
		o := m.owned()
		if len(o) == 0 {
			return false
		}
		for p := range o {
			seen[p]++
		}
	}
	if len(seen) != partitions {
		return false
	}
	for _, n := range seen {
		if n != 1 {
			return false
		}
	}
	return true
}

// measureAdd times a second member joining a group whose only member owns
// every partition, until the two own disjoint halves.
func measureAdd(addr, group string, s setting, partitions int) (time.Duration, error) {
	a, err := startMember(addr, group, s)
	if err != nil {
		return 0, err
	}
	defer a.stop()
	if err := waitFor(time.Minute, "the first member to own every partition", func() bool { return split(partitions, a) }); err != nil {
		return 0, err
	}
	t0 := time.Now()
	b, err := startMember(addr, group, s)
	if err != nil {
		return 0, err
	}
	defer b.stop()
	if err := waitFor(2*time.Minute, "the partitions to be split between two members", func() bool { return split(partitions, a, b) }); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// measureKill times the takeover of a member cut off without leaving the
// group: from the cut until the survivor owns every partition.
func measureKill(addr, group string, s setting, partitions int) (time.Duration, error) {
	a, err := startMember(addr, group, s)
	if err != nil {
		return 0, err
	}
	defer a.stop()
	b, err := startMember(addr, group, s)
	if err != nil {
		return 0, err
	}
	defer b.stop() // it cannot leave: its Run returns after CloseTimeout
	if err := waitFor(2*time.Minute, "two members sharing the partitions", func() bool { return split(partitions, a, b) }); err != nil {
		return 0, err
	}
	t0 := time.Now()
	b.cut.cut()
	if err := waitFor(s.session+2*kafkakit.DefaultRebalanceTimeout, "the survivor to own every partition", func() bool {
		return len(a.owned()) == partitions
	}); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// cutter tracks a member's broker connections so that it can be cut off
// abruptly: cut closes them all and refuses new ones.
type cutter struct {
	mu    sync.Mutex
	done  bool
	conns []net.Conn
}

var errCut = errors.New("connection cut by the benchmark")

func (c *cutter) wrap(next kafkakit.DialFunc) kafkakit.DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c.mu.Lock()
		if c.done {
			c.mu.Unlock()
			return nil, errCut
		}
		c.mu.Unlock()
		conn, err := next(ctx, network, address)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.done {
			_ = conn.Close()
			return nil, errCut
		}
		c.conns = append(c.conns, conn)
		return conn, nil
	}
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}
