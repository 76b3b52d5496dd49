// Package progress draws a scan/replay progress indicator on a writer:
// redrawn in place with a carriage return on a terminal, or as a periodic
// line otherwise (logs, pipes, CI).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Default redraw intervals.
const (
	DefaultTTYInterval  = 100 * time.Millisecond
	DefaultLineInterval = 5 * time.Second
)

const barWidth = 30

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Bar shows "scanned/total" and "matched" while scanning, then
// "replayed/matched" once StartReplay was called. It is safe for concurrent use.
// The zero value is not usable; call New.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time
	last     time.Time
	drawn    bool // a \r line is on screen and needs a newline before other output

	label             string
	scanned, total    int64
	matched, replayed int64
	replaying         bool
	replayTotal       int64
}

// New returns a Bar writing to w; tty selects in-place redrawing. now may be
// nil (time.Now).
func New(w io.Writer, tty bool, label string, now func() time.Time) *Bar {
	if now == nil {
		now = time.Now
	}
	iv := DefaultLineInterval
	if tty {
		iv = DefaultTTYInterval
	}
	return &Bar{w: w, tty: tty, interval: iv, now: now, label: label}
}

// StartReplay switches to the replay phase: the bar then fills with
// replayed/total, and the label becomes "replay". It redraws.
func (b *Bar) StartReplay(total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.label, b.replaying, b.replayTotal = "replay", true, total
	b.draw(true)
}

// Clear erases the bar from a terminal line so that other output written
// to the same terminal starts on a clean line; the next update after the
// redraw interval (or Done) draws it again.
// It does nothing on a non-terminal.
func (b *Bar) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// Scanned records scan progress; it redraws at most once per interval.
func (b *Bar) Scanned(scanned, total, matched int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scanned, b.total, b.matched = scanned, total, matched
	b.draw(false)
}

// Replayed records replay progress; it redraws at most once per interval.
func (b *Bar) Replayed(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.replayed = n
	b.draw(false)
}

// Done draws the final state and ends the line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(true)
	if b.tty && b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// String renders the current state.
func (b *Bar) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.render()
}

func (b *Bar) render() string {
	done, total := b.scanned, b.total
	if b.replaying {
		done, total = b.replayed, b.replayTotal
	}
	filled, pct := barWidth, 100.0
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		filled, pct = int(frac*barWidth), frac*100
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled)
	if b.replaying {
		return fmt.Sprintf("%s [%s] %d/%d replayed (%.0f%%), %d scanned", b.label, bar, b.replayed, b.replayTotal, pct, b.scanned)
	}
	return fmt.Sprintf("%s [%s] %d/%d scanned (%.0f%%), %d matched", b.label, bar, b.scanned, b.total, pct, b.matched)
}

func (b *Bar) draw(force bool) {
	now := b.now()
	if !force && !b.last.IsZero() && now.Sub(b.last) < b.interval {
		return
	}
	if !force && b.last.IsZero() && !b.tty {
		// First update on a non-terminal: start the interval, print later.
		b.last = now
		return
	}
	b.last = now
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s", b.render())
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, b.render())
}
