// Package progress is the one progress display of the companias command-line
// programs (queryd rebuild, companias-dlq): a status line that is redrawn in
// place on a terminal and printed as a periodic line otherwise (logs, pipes,
// CI), and the bar that shows a fraction in it. What the line says is the
// caller's; how and when it is drawn is this package's.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Default least times between two unforced draws of a Line.
const (
	DefaultTTYInterval  = 100 * time.Millisecond
	DefaultLineInterval = 5 * time.Second
)

// eraseLine moves to the start of the line and erases it (carriage return,
// then ANSI "erase to end of line"), so that a shorter redraw leaves no tail.
const eraseLine = "\r\033[K"

// IsTerminal reports whether w is a character device (a terminal), on which
// a Line may redraw itself.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Bar renders frac (clamped to [0, 1]) as width cells (at least one) in
// brackets, filled with '#' from the left, the rest '.': Bar(0.5, 10) is
// "[#####.....]".
func Bar(frac float64, width int) string {
	width = max(width, 1)
	filled := int(min(max(frac, 0), 1) * float64(width))
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

// Line draws a status line that changes over time on W. On a terminal
// (TTY) each draw replaces the previous one in place; otherwise each draw
// prints a line. Draws are throttled to one per Interval unless forced.
//
// Set the fields before the first call; a Line is then safe for concurrent
// use. The zero value with W set draws plain lines every
// DefaultLineInterval.
type Line struct {
	// W receives the drawing.
	W io.Writer
	// TTY selects in-place redrawing (see IsTerminal).
	TTY bool
	// Interval is the least time between two unforced draws (default:
	// DefaultTTYInterval on a terminal, DefaultLineInterval otherwise).
	Interval time.Duration
	// Now reads the clock (default time.Now).
	Now func() time.Time

	mu       sync.Mutex
	last     time.Time // of the last draw, or of the first unforced call off a terminal
	onScreen bool      // a terminal line is drawn and needs a newline before other output
}

// Draw shows s if force is set or Interval has passed since the last draw.
// Off a terminal the first unforced call only starts the interval, so a
// short task prints nothing until its final, forced, draw; on a terminal it
// draws at once. Force the draws that must be seen: a change of phase, the
// final state.
func (l *Line) Draw(s string, force bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !force {
		if l.last.IsZero() && !l.TTY {
			l.last = now
			return
		}
		if !l.last.IsZero() && now.Sub(l.last) < l.interval() {
			return
		}
	}
	l.last = now
	if l.TTY {
		fmt.Fprint(l.W, eraseLine+s)
		l.onScreen = true
		return
	}
	fmt.Fprintln(l.W, s)
}

// Clear erases the line from a terminal, so that other output written to
// the same terminal starts on a clean line; the next draw shows it again.
// It does nothing off a terminal.
func (l *Line) Clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.TTY && l.onScreen {
		fmt.Fprint(l.W, eraseLine)
		l.onScreen = false
	}
}

// End ends the line drawn on a terminal with a newline, so that later
// output starts below it. It does nothing off a terminal or when nothing is
// on screen.
func (l *Line) End() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.TTY && l.onScreen {
		fmt.Fprintln(l.W)
		l.onScreen = false
	}
}

func (l *Line) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Line) interval() time.Duration {
	switch {
	case l.Interval > 0:
		return l.Interval
	case l.TTY:
		return DefaultTTYInterval
	default:
		return DefaultLineInterval
	}
}
