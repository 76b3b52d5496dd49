package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/services/query/internal/view"
)

// fakeClock is a manual clock for the reporter's throttling.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestReporter(tty bool) (*progressReporter, *bytes.Buffer, *fakeClock) {
	var b bytes.Buffer
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := newProgressReporter(&b, tty)
	r.line.Now = clock.now
	return r, &b, clock
}

func TestProgressReporterTerminalRedraws(t *testing.T) {
	t.Parallel()
	r, b, clock := newTestReporter(true)
	r.report(view.RebuildProgress{State: "running", Generation: "12", Processed: 1, Total: 10})
	clock.advance(50 * time.Millisecond)
	r.report(view.RebuildProgress{State: "running", Generation: "12", Processed: 2, Total: 10}) // throttled
	clock.advance(200 * time.Millisecond)
	r.report(view.RebuildProgress{State: "running", Generation: "12", Processed: 5, Total: 10})
	r.report(view.RebuildProgress{State: "done", Generation: "12", Processed: 10, Total: 10}) // state change: drawn at once
	r.finish()
	out := b.String()
	if strings.Count(out, "\r") != 3 || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("terminal output %q: want three \\r redraws and one final newline", out)
	}
	parts := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	if !strings.Contains(parts[0], "1/10") || !strings.Contains(parts[1], "5/10") || !strings.Contains(parts[2], "100.0%") {
		t.Errorf("redraws = %q, want 1/10, then 5/10, then 100%%", parts)
	}
	for _, p := range parts {
		if !strings.HasPrefix(p, "\033[K") {
			t.Errorf("redraw %q does not erase the line it covers", p)
		}
	}
}

func TestProgressReporterLines(t *testing.T) {
	t.Parallel()
	r, b, clock := newTestReporter(false)
	for i := range 10 {
		r.report(view.RebuildProgress{State: "running", Processed: int64(i), Total: 10})
		clock.advance(time.Second)
	}
	r.report(view.RebuildProgress{State: "switching", Processed: 10, Total: 10})
	r.finish()
	out := b.String()
	// Drawn at 0s and 5s, then for the state change.
	if strings.Contains(out, "\r") || strings.Count(out, "\n") != 3 {
		t.Errorf("non-terminal output %q: want three plain lines", out)
	}
	if !strings.Contains(out, "switching") {
		t.Errorf("output %q lacks the final state", out)
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := createTemp(t)
	if err != nil {
		t.Fatal(err)
	}
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}
