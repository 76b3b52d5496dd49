package main

import (
	"io"
	"sync"
	"time"

	"github.com/propalpes/companias/libs/seedwork/progress"
	"github.com/propalpes/companias/services/query/internal/rebuild"
	"github.com/propalpes/companias/services/query/internal/view"
)

// barWidth is the number of cells of the progress bar.
const barWidth = 30

// progressReporter draws rebuild progress (rebuild.Bar) on a progress.Line:
// redrawn in place on a terminal at most every 200ms, one line every 5s
// otherwise. A change of state is always drawn. It is safe for concurrent
// use (rebuild.Rebuilder.Rebuild reports from two goroutines).
type progressReporter struct {
	line *progress.Line

	mu        sync.Mutex
	lastState string
	drawn     bool
}

// newProgressReporter returns a reporter for w; tty selects in-place
// redrawing (see isTerminal).
func newProgressReporter(w io.Writer, tty bool) *progressReporter {
	interval := progress.DefaultLineInterval
	if tty {
		interval = 200 * time.Millisecond
	}
	return &progressReporter{line: &progress.Line{W: w, TTY: tty, Interval: interval}}
}

// report draws p if the state changed or the interval has passed since
// the last drawing.
func (r *progressReporter) report(p view.RebuildProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	force := !r.drawn || p.State != r.lastState
	r.drawn, r.lastState = true, p.State
	r.line.Draw(rebuild.Bar(p, barWidth), force)
}

// finish ends the in-place bar with a newline on a terminal.
func (r *progressReporter) finish() { r.line.End() }

// isTerminal reports whether w is a terminal, on which the progress bar
// redraws itself (progress.IsTerminal).
func isTerminal(w io.Writer) bool { return progress.IsTerminal(w) }
