package outbox_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// wireConn counts the writes that reach the connection under the fence.
type wireConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *wireConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// fencedPipe returns a connection dialled through f, the connection under
// it, and the other end of the pipe.
func fencedPipe(t *testing.T, f *outbox.Fence) (net.Conn, *wireConn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	wire := &wireConn{Conn: a}
	dial := f.Dial(func(context.Context, string, string) (net.Conn, error) { return wire, nil })
	c, err := dial(t.Context(), "tcp", "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	return c, wire, b
}

// drain reads the other end of a pipe until it is closed.
func drain(t *testing.T, c net.Conn) <-chan int {
	t.Helper()
	n := make(chan int, 1)
	go func() {
		k, _ := io.Copy(io.Discard, c)
		n <- int(k)
	}()
	return n
}

// A write after the fence ended (or while it is closed) fails with
// ErrFenced, as a deadline, and never reaches the connection under it.
func TestFenceRefusesWritesAfterItEnds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*outbox.Fence)
	}{
		{"new, closed", func(*outbox.Fence) {}},
		{"ended", func(f *outbox.Fence) { outbox.OpenFence(f, time.Now().Add(-time.Millisecond)) }},
		{"closed after it was open", func(f *outbox.Fence) {
			outbox.OpenFence(f, time.Now().Add(time.Hour))
			outbox.CloseFence(f)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := outbox.NewFence()
			tc.set(f)
			c, wire, _ := fencedPipe(t, f)
			// Whatever deadline the user (kafka-go) sets, the fence wins.
			if err := c.SetDeadline(time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Write([]byte("produce request"))
			if n != 0 || !errors.Is(err, outbox.ErrFenced) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Write = %d, %v; want 0, ErrFenced (a deadline exceeded)", n, err)
			}
			if w := wire.writes.Load(); w != 0 {
				t.Errorf("%d writes reached the connection under the fence, want 0", w)
			}
		})
	}
}

// While the fence is open, writes go through, and the deadlines kafka-go
// sets itself are still honoured.
func TestFenceKeepsTheUsersDeadlines(t *testing.T) {
	t.Parallel()
	f := outbox.NewFence()
	outbox.OpenFence(f, time.Now().Add(time.Hour))
	c, wire, peer := fencedPipe(t, f)
	got := drain(t, peer)

	if n, err := c.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write with the fence open = %d, %v; want 5, nil", n, err)
	}
	// A past deadline of the user's own: the write times out, not fenced.
	if err := c.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, outbox.ErrFenced) {
		t.Errorf("Write past the user's write deadline = %v, want a deadline error that is not ErrFenced", err)
	}
	// SetDeadline(zero) clears it, as kafka-go does after a round trip.
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write([]byte("again")); n != 5 || err != nil {
		t.Fatalf("Write after clearing the deadline = %d, %v; want 5, nil", n, err)
	}
	_ = c.Close()
	if n := <-got; n != 10 {
		t.Errorf("peer read %d bytes, want 10", n)
	}
	if w := wire.writes.Load(); w != 3 {
		t.Errorf("%d writes reached the wire, want 3", w)
	}
}

// A write blocked on a full socket stops when the fence ends, even though
// the user's own deadline is later (or unset).
func TestFenceInterruptsABlockedWrite(t *testing.T) {
	t.Parallel()
	for _, userDeadline := range []time.Time{{}, time.Now().Add(time.Hour)} {
		f := outbox.NewFence()
		outbox.OpenFence(f, time.Now().Add(100*time.Millisecond))
		c, _, _ := fencedPipe(t, f) // nobody reads the peer: the write blocks
		if err := c.SetDeadline(userDeadline); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := c.Write([]byte("stuck"))
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("blocked Write (user deadline %v) = %v, want a deadline error", userDeadline, err)
			}
			if d := time.Since(start); d < 50*time.Millisecond {
				t.Errorf("blocked Write returned after %v, before the fence ended", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Write still blocked 10s after the fence ended (user deadline %v)", userDeadline)
		}
	}
}
