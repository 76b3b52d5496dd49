package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSecuredLine checks that the TLS + SCRAM figures appear next to the
// plaintext ones: in the throughput groups, the summary table and the
// comparison section, and not at all without them.
func TestSecuredLine(t *testing.T) {
	mk := func(ops int, lo time.Duration) run { return newRun(samples(ops, lo), time.Second) }
	fresh := func(k time.Duration) []latencyRun {
		return []latencyRun{{fresh: mk(10, 10*time.Millisecond), kafka: mk(10, k), post: mk(10, time.Millisecond), fresh201: mk(10, 9*time.Millisecond)}}
	}
	res := &results{
		machine:  machine{date: "2026-01-02T03:04:05Z", cpu: "Test CPU", nproc: 2},
		create:   []createFigure{{conc: 8, writer: []run{mk(700, time.Millisecond)}, raw: []run{mk(2000, 300*time.Microsecond)}}},
		fresh:    fresh(2 * time.Millisecond),
		rawKafka: []run{mk(10, time.Millisecond)},
		proj:     []projRun{{readerRate: 963, rawRate: 1148}},
	}
	b := &bench{runs: 1, dur: time.Second, rate: 50, projEvents: 10, system: true}
	plain := res.markdown(b)
	if strings.Contains(plain, secLine) {
		t.Errorf("report without the secured line mentions %s", secLine)
	}
	if g := res.throughputGroups(); len(g) != 2 {
		t.Errorf("plaintext groups = %d, want 2", len(g))
	}

	res.sec = &secResults{
		create:   []createFigure{{conc: 8, writer: []run{mk(650, time.Millisecond)}, raw: []run{mk(2000, 300*time.Microsecond)}}},
		fresh:    fresh(3 * time.Millisecond),
		rawKafka: []run{mk(10, 2*time.Millisecond)},
		proj:     []projRun{{readerRate: 900, rawRate: 1100}},
	}
	g := res.throughputGroups()
	if len(g) != 4 || g[1].title != "Create, c=8, TLS+SCRAM" || g[1].system.med != 650 || g[3].title != "Projection catch-up, TLS+SCRAM" || g[3].system.med != 900 {
		t.Errorf("groups with the secured line = %+v", g)
	}
	md := res.markdown(b)
	for _, want := range []string{
		"| 1 | create, concurrency 8 (req/s) | 700 (700–700) |",
		"| 1 | create, concurrency 8, TLS+SCRAM (req/s) | 650 (650–650) |",
		"| 2 | commit → Kafka p99 at 50/s, TLS+SCRAM (ms) |",
		"(kafka-go over TLS+SCRAM)",
		"| 3 | projection catch-up, TLS+SCRAM (events/s) | 900 (900–900) |",
		"| 5 | POST → visible on the reader p99 at 50/s, TLS+SCRAM (ms) |",
		"| create, concurrency 8 (req/s) | 700 (700–700) | 650 (650–650) | 93% |",
		"| projection catch-up (events/s) | 963 (963–963) | 900 (900–900) | 93% |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestSecuredLineIncomplete: a failed secured phase does not end the run;
// the report says the line is incomplete, in the summary and its section.
func TestSecuredLineIncomplete(t *testing.T) {
	b := &bench{runs: 1, dur: time.Second, rate: 50, projEvents: 10, system: true}
	sec := &secResults{}
	if err := sec.fail(t.Context(), b, "commit → Kafka and POST → visible", errors.New("warm-up (secured): connection refused")); err != nil {
		t.Fatalf("fail with a live context = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sec.fail(ctx, b, "projection catch-up", context.Canceled); err == nil {
		t.Error("fail with a cancelled context = nil, want the error")
	}
	res := &results{machine: machine{date: "2026-01-02T03:04:05Z", cpu: "Test CPU", nproc: 2}, sec: sec}
	md := res.markdown(b)
	for _, want := range []string{
		"**The TLS+SCRAM line is incomplete**: 1 of its phases failed",
		"* commit → Kafka and POST → visible: warm-up (secured): connection refused",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
