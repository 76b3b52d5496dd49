package progress_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/progress"
)

// clock is a manual clock; Line reads it under its own lock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		frac  float64
		width int
		want  string
	}{
		{0.5, 10, "[#####.....]"},
		{0, 4, "[....]"},
		{1, 4, "[####]"},
		{1.7, 4, "[####]"},
		{-1, 4, "[....]"},
		{0.99, 10, "[#########.]"},
		{1, 0, "[#]"},
	}
	for _, tt := range tests {
		if got := progress.Bar(tt.frac, tt.width); got != tt.want {
			t.Errorf("Bar(%v, %d) = %q, want %q", tt.frac, tt.width, got, tt.want)
		}
	}
}

func TestLineTerminalRedrawsInPlace(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	l := &progress.Line{W: &buf, TTY: true, Now: c.now}
	l.Draw("one", false) // first draw on a terminal: at once
	c.t = c.t.Add(progress.DefaultTTYInterval / 2)
	l.Draw("two", false) // within the interval: not drawn
	c.t = c.t.Add(progress.DefaultTTYInterval)
	l.Draw("three", false)
	l.Draw("four", true) // forced: drawn within the interval
	if got, want := buf.String(), "\r\033[Kone\r\033[Kthree\r\033[Kfour"; got != want {
		t.Fatalf("drawn %q, want %q", got, want)
	}
	l.Clear()
	l.Clear() // nothing on screen: no output
	if got, want := buf.String(), "\r\033[Kone\r\033[Kthree\r\033[Kfour\r\033[K"; got != want {
		t.Fatalf("after Clear %q, want %q", got, want)
	}
	l.End() // cleared: nothing to end
	l.Draw("five", true)
	l.End()
	l.End()
	if got := buf.String(); !strings.HasSuffix(got, "\r\033[K\r\033[Kfive\n") || strings.Count(got, "\n") != 1 {
		t.Fatalf("after End %q: want one final newline after five", got)
	}
}

func TestLineNonTerminalPrintsPeriodicLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	l := &progress.Line{W: &buf, Now: c.now}
	l.Draw("start", false) // first unforced call: starts the interval
	c.t = c.t.Add(time.Second)
	l.Draw("early", false)
	l.Clear()
	l.End()
	if buf.Len() != 0 {
		t.Fatalf("printed before the interval: %q", buf.String())
	}
	c.t = c.t.Add(progress.DefaultLineInterval)
	l.Draw("periodic", false)
	l.Draw("final", true)
	l.End()
	if got, want := buf.String(), "periodic\nfinal\n"; got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

func TestLineInterval(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	l := &progress.Line{W: &buf, TTY: true, Interval: time.Second, Now: c.now}
	l.Draw("a", false)
	c.t = c.t.Add(progress.DefaultTTYInterval)
	l.Draw("b", false) // the default interval passed, not the configured one
	c.t = c.t.Add(time.Second)
	l.Draw("c", false)
	if got, want := buf.String(), "\r\033[Ka\r\033[Kc"; got != want {
		t.Fatalf("drawn %q, want %q", got, want)
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	if progress.IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if progress.IsTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}
