package httpapi

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/propalpes/companias/services/query/internal/view"
)

// errTooManyWaits is returned by waits.join when MaxWaits waits are
// already running.
var errTooManyWaits = errors.New("too many read-your-writes waits")

// waits coalesces the read-your-writes waits per company id: however many
// requests wait for one id, one watch goroutine reads its view, once at
// the start and then once per wake-up (a change notification for that id,
// or its polling backoff), and hands every read to all of them. A waiting
// request never reads the store itself, so a flood of waits costs the
// store one read per id and wake-up, and at most max requests wait at once.
type waits struct {
	views   Views
	changes ChangeNotifier   // nil: the polling backoff only
	byID    IDChangeNotifier // nil: every batch wakes every watch
	opts    Options

	mu      sync.Mutex
	n       int // requests waiting
	watches map[string]*watch
}

func newWaits(views Views, changes ChangeNotifier, opts Options) *waits {
	w := &waits{views: views, changes: changes, opts: opts, watches: map[string]*watch{}}
	if n, ok := changes.(IDChangeNotifier); ok {
		w.byID = n
	}
	return w
}

// watch is the shared read loop of one id.
type watch struct {
	id   string
	refs int // requests on it; guarded by waits.mu
	stop context.CancelFunc

	mu   sync.Mutex
	last read          // the latest read, once have is set
	have bool          // a read finished
	next chan struct{} // closed (and replaced) after each read
}

// read is one result of Views.Get; a missing view is the zero Compania
// with a nil err.
type read struct {
	v   view.Compania
	err error
}

// join registers one waiting request on the watch of id, starting the
// watch if it is the first; it fails with errTooManyWaits at the cap. Call
// leave with the watch when the request stops waiting.
func (w *waits) join(id string) (*watch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n >= w.opts.MaxWaits {
		return nil, errTooManyWaits
	}
	w.n++
	wt := w.watches[id]
	if wt == nil {
		ctx, cancel := context.WithCancel(context.Background())
		wt = &watch{id: id, stop: cancel, next: make(chan struct{})}
		w.watches[id] = wt
		go w.poll(ctx, wt)
	}
	wt.refs++
	return wt, nil
}

// leave undoes join; the last request to leave a watch stops it.
func (w *waits) leave(wt *watch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n--
	if wt.refs--; wt.refs == 0 {
		delete(w.watches, wt.id)
		wt.stop()
	}
}

// waiting returns the number of requests waiting and of ids watched.
func (w *waits) waiting() (requests, ids int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, len(w.watches)
}

// poll reads the view of wt.id until ctx is cancelled: at once, then after
// each change notification or backoff step, each read bounded by
// QueryTimeout.
func (w *waits) poll(ctx context.Context, wt *watch) {
	poll := w.opts.pollBackoff()
	for attempt := 0; ; {
		// Subscribe before reading, so that a change between the read and
		// the wait is not missed.
		changed, release := w.subscribe(wt.id)
		rctx, cancel := context.WithTimeout(ctx, w.opts.QueryTimeout)
		v, err := w.views.Get(rctx, wt.id)
		cancel()
		if ctx.Err() != nil {
			release()
			return
		}
		if errors.Is(err, view.ErrNotFound) {
			v, err = view.Compania{}, nil
		}
		wt.publish(read{v: v, err: err})
		timer := time.NewTimer(poll.Delay(attempt))
		select {
		case <-ctx.Done():
			timer.Stop()
			release()
			return
		case <-changed: // a nil channel (no notifier) is never ready
			timer.Stop() // a change does not lengthen the next poll
		case <-timer.C:
			attempt++
		}
		release()
	}
}

// subscribe returns the channel that wakes the watch of id early (nil if
// none) and the function that releases it.
func (w *waits) subscribe(id string) (<-chan struct{}, func()) {
	switch {
	case w.byID != nil:
		return w.byID.ChangedID(id)
	case w.changes != nil:
		return w.changes.Changed(), func() {}
	default:
		return nil, func() {}
	}
}

func (wt *watch) publish(r read) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	wt.last, wt.have = r, true
	close(wt.next)
	wt.next = make(chan struct{})
}

// current returns the latest read (ok false before the first) and the
// channel closed at the next one.
func (wt *watch) current() (r read, ok bool, next <-chan struct{}) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	return wt.last, wt.have, wt.next
}

// waitForVersion waits, on the shared watch of id, until the view reaches
// minVersion or wait elapses; it always waits for the watch's first read.
// It returns the last view seen (zero if none) and whether it reached
// minVersion. A store error other than "not found" ends the wait early;
// errTooManyWaits means it did not start.
func (a *API) waitForVersion(ctx context.Context, id string, minVersion int64, wait time.Duration) (view.Compania, bool, error) {
	wt, err := a.waits.join(id)
	if err != nil {
		return view.Compania{}, false, err
	}
	defer a.waits.leave(wt)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	expired := false
	for {
		r, ok, next := wt.current()
		switch {
		case ok && r.err != nil:
			return view.Compania{}, false, r.err
		case ok && r.v.Version >= minVersion:
			return r.v, true, nil
		case ok && expired:
			return r.v, false, nil
		}
		var deadline <-chan time.Time
		if !expired {
			deadline = timer.C
		}
		select {
		case <-ctx.Done():
			return r.v, false, ctx.Err()
		case <-deadline:
			expired = true
		case <-next:
		}
	}
}
