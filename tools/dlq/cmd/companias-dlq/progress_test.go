package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/progress"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestScanBarTerminalRedrawsInPlace(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &fakeClock{t: time.Unix(0, 0)}
	b := newScanBar(&buf, true, c.now)
	b.Scanned(0, 10, 0)
	b.Scanned(5, 10, 2) // within the interval: not drawn
	if got := strings.Count(buf.String(), "\r"); got != 1 {
		t.Fatalf("%d redraws, want 1: %q", got, buf.String())
	}
	c.t = c.t.Add(progress.DefaultTTYInterval)
	b.Scanned(5, 10, 2)
	if !strings.HasSuffix(buf.String(), "\r\033[Kscan [###############...............] 5/10 scanned (50%), 2 matched") {
		t.Fatalf("last draw %q", buf.String())
	}
	b.Clear()
	if !strings.HasSuffix(buf.String(), "matched\r\033[K") {
		t.Fatalf("Clear wrote %q", buf.String())
	}
	b.Clear() // nothing on screen: no output
	if strings.HasSuffix(buf.String(), "\r\033[K\r\033[K") {
		t.Fatal("second Clear erased again")
	}
	b.StartReplay(4)
	b.Replayed(2)
	b.Done()
	out := buf.String()
	if !strings.HasSuffix(out, "\r\033[Kreplay [###############...............] 2/4 replayed (50%), 5 scanned\n") {
		t.Fatalf("final %q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("terminal output has %d newlines: %q", strings.Count(out, "\n"), out)
	}
}

func TestScanBarNonTerminalPrintsPeriodicLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &fakeClock{t: time.Unix(0, 0)}
	b := newScanBar(&buf, false, c.now)
	b.Scanned(0, 100, 0)
	b.Scanned(10, 100, 1)
	b.Clear() // no-op off a terminal
	if buf.Len() != 0 {
		t.Fatalf("printed before the interval: %q", buf.String())
	}
	c.t = c.t.Add(progress.DefaultLineInterval)
	b.Scanned(50, 100, 3)
	b.Done()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 || strings.Contains(buf.String(), "\r") {
		t.Fatalf("lines %q", lines)
	}
	if !strings.Contains(lines[0], "50/100 scanned (50%), 3 matched") {
		t.Fatalf("periodic line %q", lines[0])
	}
	if got := b.String(); got != lines[1] {
		t.Fatalf("String() = %q, last line %q", got, lines[1])
	}
}

func TestScanBarEmptyTopicIsComplete(t *testing.T) {
	t.Parallel()
	b := newScanBar(&bytes.Buffer{}, false, nil)
	b.Scanned(0, 0, 0)
	if got := b.String(); !strings.Contains(got, "0/0 scanned (100%)") {
		t.Fatalf("String() = %q", got)
	}
}
