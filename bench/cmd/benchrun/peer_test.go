package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func testE2E(ops int, loop, e2e time.Duration) e2eRun {
	return e2eRun{http: run{ops: ops, elapsed: loop}, e2e: e2e, lag: newRun(samples(ops, time.Millisecond), loop)}
}

// TestPeerReport renders the peer figure's rows, section and plot from
// made-up runs: the ratios are writer / peer and the goals apply at c=32.
func TestPeerReport(t *testing.T) {
	t.Parallel()
	lat := func(lo time.Duration) latencyRun {
		return latencyRun{kafka: newRun(samples(100, lo), 3*time.Second), attempted: 100}
	}
	r := &results{peer: &peerResults{pollInterval: "1s", figs: []peerFigure{
		{conc: 8, writer: []e2eRun{testE2E(1000, time.Second, time.Second)}, peer: []e2eRun{testE2E(800, time.Second, 2*time.Second)}},
		{conc: 32, writer: []e2eRun{testE2E(1500, time.Second, time.Second)}, peer: []e2eRun{testE2E(750, time.Second, 2*time.Second)}},
	}, latWriter: []latencyRun{lat(5 * time.Millisecond)}, latWM: []latencyRun{lat(500 * time.Millisecond)}}}
	if got := r.peer.figs[1].peer[0].e2eRate(); got != 375 {
		t.Errorf("end-to-end rate %v, want 375", got)
	}
	var sb strings.Builder
	p := func(format string, args ...any) {
		sb.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
	}
	b := &bench{runs: 1, dur: time.Second, rate: 50, rateDur: 3 * time.Second, projTimeout: time.Minute}
	r.peerSummaryRows(b, p)
	r.peerMarkdown(b, p, func(string, string, string) {})
	out := sb.String()
	for _, want := range []string{
		"| P | create, concurrency 32, HTTP, writer vs Watermill peer (req/s) | 1500 (1500–1500) | 750 (750–750) (Watermill) | 2.00× (2.00–2.00×) | ≥ 1.5× | met |",
		"| P | create, concurrency 32, end to end (every event on Kafka), writer vs Watermill peer (req/s) | 1500 (1500–1500) | 375 (375–375) (Watermill) | 4.00× (4.00–4.00×) | ≥ 2.5× | met |",
		"| P | create, concurrency 8, HTTP, writer vs Watermill peer (req/s) | 1000 (1000–1000) | 800 (800–800) (Watermill) | 1.25× (1.25–1.25×) | — | — |",
		"## P. Peer baseline",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	gs := r.peerGroups()
	if len(gs) != 6 {
		t.Fatalf("%d peer plot panels, want 6", len(gs))
	}
	f, err := throughputPlot("peer", testMeta, gs)
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, f, testDPI)
}
