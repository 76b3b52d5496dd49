package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFenced is matched (errors.Is) by the error of a write to a broker
// connection made when its Fence was closed or had run out. The error also
// matches os.ErrDeadlineExceeded, as a deadline the Go runtime enforced.
var ErrFenced = errors.New("outbox: write refused by the relay's lease fence")

// DialFunc dials a broker connection, like kafka.Transport.Dial and
// net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Fence is the local half of the relay's lease: the instant until which the
// relay may put bytes on the wire to a broker. The relay opens it until
// t0 + TTL − margin after each lease acquisition or renewal that was sent at
// t0 (monotonic clock), so it always ends before the lease can expire in
// PostgreSQL, and closes it when it stops leading. The connections of Dial
// apply it to every Write: a relay that was frozen or cut off from
// PostgreSQL past its fence cannot send a byte when it resumes, so a new
// leader never has an old leader's records land after its own.
//
// A new Fence is closed. It is safe for concurrent use.
type Fence struct {
	until atomic.Pointer[time.Time] // nil: closed
}

// NewFence returns a closed Fence.
func NewFence() *Fence { return &Fence{} }

// Until returns the instant the fence ends, or the zero Time when it is
// closed.
func (f *Fence) Until() time.Time {
	if t := f.until.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// open lets writes through until t (which keeps its monotonic reading).
func (f *Fence) open(t time.Time) { f.until.Store(&t) }

// close refuses every write from now on.
func (f *Fence) close() { f.until.Store(nil) }

// Dial wraps next (nil: a net.Dialer like kafka-go's default) so that every
// connection it returns is fenced: before each Write the connection sets its
// write deadline to the earlier of the fence's end and the write deadline
// its user set (SetDeadline or SetWriteDeadline, as kafka-go does), and a
// Write once the fence has ended fails with ErrFenced without reaching the
// socket. Use it as kafka.Transport.Dial; kafka-go wraps the connection in
// TLS above it, so TLS records are fenced too.
func (f *Fence) Dial(next DialFunc) DialFunc {
	if next == nil {
		d := &net.Dialer{Timeout: 3 * time.Second}
		next = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &fencedConn{Conn: c, fence: f}, nil
	}
}

// fencedConn is a net.Conn whose writes end at its fence.
type fencedConn struct {
	net.Conn
	fence *Fence

	mu       sync.Mutex
	deadline time.Time // the write deadline the user set; zero: none
}

// writeDeadline returns the earlier of the fence's end and d (zero d: no
// deadline), and whether the fence still lets writes through.
func (c *fencedConn) writeDeadline(d time.Time) (time.Time, bool) {
	until := c.fence.Until()
	if until.IsZero() || !time.Now().Before(until) {
		return time.Time{}, false
	}
	if d.IsZero() || until.Before(d) {
		return until, true
	}
	return d, true
}

func (c *fencedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	d, ok := c.writeDeadline(c.deadline)
	var err error
	if ok {
		err = c.Conn.SetWriteDeadline(d)
	}
	c.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("%w: %w", ErrFenced, os.ErrDeadlineExceeded)
	}
	if err != nil {
		return 0, err
	}
	// Past d, the runtime fails the write before the system call, or
	// interrupts it mid-way (the broker drops a partial request).
	return c.Conn.Write(b)
}

func (c *fencedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *fencedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	d, ok := c.writeDeadline(t)
	if !ok {
		d = time.Unix(1, 0) // passed: a write in progress stops
	}
	return c.Conn.SetWriteDeadline(d)
}
