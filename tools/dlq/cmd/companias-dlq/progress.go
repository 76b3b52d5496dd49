package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/propalpes/companias/libs/seedwork/progress"
)

// barWidth is the number of cells of the progress bar.
const barWidth = 30

// scanBar shows "scanned/total" and "matched" while scanning, then
// "replayed/total" once StartReplay was called, on a progress.Line: redrawn
// in place on a terminal, a line every 5s otherwise. It is safe for
// concurrent use.
type scanBar struct {
	line *progress.Line

	mu                sync.Mutex
	label             string
	scanned, total    int64
	matched, replayed int64
	replaying         bool
	replayTotal       int64
}

// newScanBar returns a scanBar writing to w; tty selects in-place
// redrawing. now may be nil (time.Now).
func newScanBar(w io.Writer, tty bool, now func() time.Time) *scanBar {
	return &scanBar{line: &progress.Line{W: w, TTY: tty, Now: now}, label: "scan"}
}

// StartReplay switches to the replay phase: the bar then fills with
// replayed/total, and the label becomes "replay". It redraws.
func (b *scanBar) StartReplay(total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.label, b.replaying, b.replayTotal = "replay", true, total
	b.line.Draw(b.render(), true)
}

// Clear erases the bar from a terminal line so that other output written
// to the same terminal starts on a clean line; the next update after the
// redraw interval (or Done) draws it again. It does nothing on a
// non-terminal.
func (b *scanBar) Clear() { b.line.Clear() }

// Scanned records scan progress; it redraws at most once per interval.
func (b *scanBar) Scanned(scanned, total, matched int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scanned, b.total, b.matched = scanned, total, matched
	b.line.Draw(b.render(), false)
}

// Replayed records replay progress; it redraws at most once per interval.
func (b *scanBar) Replayed(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replayed = n
	b.line.Draw(b.render(), false)
}

// Done draws the final state and ends the line.
func (b *scanBar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.line.Draw(b.render(), true)
	b.line.End()
}

// String renders the current state.
func (b *scanBar) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.render()
}

func (b *scanBar) render() string {
	done, total := b.scanned, b.total
	if b.replaying {
		done, total = b.replayed, b.replayTotal
	}
	frac := 1.0 // nothing to do is done
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	bar := progress.Bar(frac, barWidth)
	if b.replaying {
		return fmt.Sprintf("%s %s %d/%d replayed (%.0f%%), %d scanned", b.label, bar, b.replayed, b.replayTotal, 100*frac, b.scanned)
	}
	return fmt.Sprintf("%s %s %d/%d scanned (%.0f%%), %d matched", b.label, bar, b.scanned, b.total, 100*frac, b.matched)
}
