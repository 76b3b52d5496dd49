package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/propalpes/companias/services/query/internal/rebuild"
	"github.com/propalpes/companias/services/query/internal/view"
)

// barWidth is the number of cells of the progress bar.
const barWidth = 30

// progressReporter draws rebuild progress on a writer: on a terminal, one
// bar redrawn in place with \r at most every interval; otherwise, one line
// per interval (log-friendly). A change of state is always drawn. It is
// safe for concurrent use (rebuild.Rebuilder.Rebuild reports from two
// goroutines).
type progressReporter struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex
	lastLen   int
	lastDraw  time.Time
	lastState string
	drawn     bool
}

// newProgressReporter returns a reporter for w, redrawing every 200ms on a
// terminal and printing a line every 5s otherwise.
func newProgressReporter(w io.Writer, tty bool) *progressReporter {
	interval := 5 * time.Second
	if tty {
		interval = 200 * time.Millisecond
	}
	return &progressReporter{w: w, tty: tty, interval: interval, now: time.Now}
}

// report draws p if the state changed or the interval has passed since
// the last drawing.
func (r *progressReporter) report(p view.RebuildProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.drawn && p.State == r.lastState && now.Sub(r.lastDraw) < r.interval {
		return
	}
	r.drawn, r.lastState, r.lastDraw = true, p.State, now
	line := rebuild.Bar(p, barWidth)
	if !r.tty {
		fmt.Fprintln(r.w, line)
		return
	}
	pad := max(r.lastLen-len(line), 0)
	fmt.Fprintf(r.w, "\r%s%s", line, strings.Repeat(" ", pad))
	r.lastLen = len(line)
}

// finish ends the in-place bar with a newline on a terminal.
func (r *progressReporter) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty && r.lastLen > 0 {
		fmt.Fprintln(r.w)
		r.lastLen = 0
	}
}

// isTerminal reports whether w is a character device (a terminal), so that
// the progress bar may redraw itself.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
