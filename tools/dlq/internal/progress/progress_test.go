package progress_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/tools/dlq/internal/progress"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBarTerminalRedrawsInPlace(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	b := progress.New(&buf, true, "scan", c.now)
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

func TestBarNonTerminalPrintsPeriodicLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	b := progress.New(&buf, false, "scan", c.now)
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

func TestBarEmptyTopicIsComplete(t *testing.T) {
	t.Parallel()
	b := progress.New(&bytes.Buffer{}, false, "scan", nil)
	b.Scanned(0, 0, 0)
	if got := b.String(); !strings.Contains(got, "0/0 scanned (100%)") {
		t.Fatalf("String() = %q", got)
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	if progress.IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if progress.IsTerminal(f) {
		t.Fatal("a regular file is a terminal")
	}
}
