package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
)

// broadcastChanges is a ChangeNotifier the test fires by hand.
type broadcastChanges struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcastChanges() *broadcastChanges { return &broadcastChanges{ch: make(chan struct{})} }

func (b *broadcastChanges) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcastChanges) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// idChanges is an IDChangeNotifier the test fires by hand; it counts the
// live subscriptions.
type idChanges struct {
	*broadcastChanges
	mu   sync.Mutex
	subs map[string][]chan struct{}
	live int
}

func newIDChanges() *idChanges {
	return &idChanges{broadcastChanges: newBroadcastChanges(), subs: map[string][]chan struct{}{}}
}

func (c *idChanges) ChangedID(id string) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.subs[id] = append(c.subs[id], ch)
	c.live++
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.live--
		})
	}
}

func (c *idChanges) fireIDs(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		for _, ch := range c.subs[id] {
			close(ch)
		}
		delete(c.subs, id)
	}
}

func (c *idChanges) subscriptions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

func (f *fakeViews) reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// startWaits sends one GET ?min_version=1&wait=10s per id, each in its own
// goroutine, and returns the function that cancels them all and waits
// until they answered 499.
func startWaits(t *testing.T, e *env, ids []string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/companias/"+id+"?min_version=1&wait=10s", nil)
			rec := httptest.NewRecorder()
			e.api.ServeHTTP(rec, req)
			if rec.Code != 499 {
				t.Errorf("wait on %s = %d %s, want 499 once cancelled", id, rec.Code, rec.Body)
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// normalGETFast checks that a plain GET of an existing view answers 200
// well within its normal latency bound (a second, for an in-memory store).
func normalGETFast(t *testing.T, e *env) {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- e.do(t, http.MethodGet, "/v1/companias/c-1").Code }()
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Errorf("plain GET while waits run = %d, want 200", code)
		}
	case <-time.After(time.Second):
		t.Fatal("a plain GET took over a second while waits ran")
	}
}

// 500 waits on one missing id share one watch: one store read at the start
// and one per wake-up, however many requests wait; a plain GET stays fast.
func TestWaitsCoalescePerID(t *testing.T) {
	t.Parallel()
	views := newFakeViews(compania("c-1", "Acme", t0, 1))
	changes := newBroadcastChanges()
	e := newEnv(t, views, func(d *httpapi.Deps, o *httpapi.Options) {
		d.Changes = changes
		o.PollMin, o.PollMax = time.Hour, time.Hour // only notifications wake
	})
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = "ghost"
	}
	stop := startWaits(t, e, ids)
	waitUntil(t, "500 waits on 1 watch", func() bool { r, n := e.api.Waiting(); return r == 500 && n == 1 })
	waitUntil(t, "the watch's first read", func() bool { return views.reads() >= 1 })
	if n := views.reads(); n != 1 {
		t.Errorf("500 waits on one id made %d store reads, want 1", n)
	}
	normalGETFast(t, e) // read 2
	for i := range 3 {
		changes.fire()
		want := 3 + i
		waitUntil(t, fmt.Sprintf("read %d after wake-up %d", want, i+1), func() bool { return views.reads() >= want })
	}
	normalGETFast(t, e) // read 6
	if n := views.reads(); n != 6 {
		t.Errorf("store reads = %d, want 6: one per wake-up, 1 at the start, 2 plain GETs", n)
	}
	stop()
	waitUntil(t, "the watch to stop", func() bool { r, n := e.api.Waiting(); return r == 0 && n == 0 })
}

// With a notifier that names the ids a batch wrote, a batch wakes only the
// watches of its ids: 500 waits on 500 missing ids cost one read each at
// the start and none for a batch that wrote other ids.
func TestWaitsWakeOnlyTheirIDs(t *testing.T) {
	t.Parallel()
	views := newFakeViews(compania("c-1", "Acme", t0, 1))
	changes := newIDChanges()
	e := newEnv(t, views, func(d *httpapi.Deps, o *httpapi.Options) {
		d.Changes = changes
		o.PollMin, o.PollMax = time.Hour, time.Hour
	})
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = fmt.Sprintf("ghost-%03d", i)
	}
	stop := startWaits(t, e, ids)
	waitUntil(t, "500 watches", func() bool { r, n := e.api.Waiting(); return r == 500 && n == 500 })
	waitUntil(t, "their first reads", func() bool { return views.reads() >= 500 })
	changes.broadcastChanges.fire() // a plain broadcast is not listened to
	changes.fireIDs("c-1", "other")
	normalGETFast(t, e) // read 501
	changes.fireIDs("ghost-007")
	waitUntil(t, "ghost-007's watch to read again", func() bool { return views.reads() >= 502 })
	normalGETFast(t, e) // read 503
	if n := views.reads(); n != 503 {
		t.Errorf("store reads = %d, want 503: 500 first reads, 1 for the batch that wrote ghost-007, 2 plain GETs", n)
	}
	stop()
	waitUntil(t, "every watch to stop and release its subscription", func() bool {
		r, n := e.api.Waiting()
		return r == 0 && n == 0 && changes.subscriptions() == 0
	})
}

// Beyond MaxWaits, a wait is refused at once with 503 and Retry-After; a
// plain GET is not counted.
func TestWaitsCap(t *testing.T) {
	t.Parallel()
	views := newFakeViews(compania("c-1", "Acme", t0, 1))
	e := newEnv(t, views, func(_ *httpapi.Deps, o *httpapi.Options) {
		o.MaxWaits = 2
		o.PollMin, o.PollMax = time.Hour, time.Hour
	})
	stop := startWaits(t, e, []string{"a", "b"})
	waitUntil(t, "2 waits", func() bool { r, _ := e.api.Waiting(); return r == 2 })
	rec := e.do(t, http.MethodGet, "/v1/companias/c-1?min_version=1&wait=10s")
	p := wantProblem(t, rec, http.StatusServiceUnavailable)
	if p.Code != "too_many_waits" || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("third wait: code %q Retry-After %q, want too_many_waits and 1", p.Code, rec.Header().Get("Retry-After"))
	}
	normalGETFast(t, e)
	stop()
	waitUntil(t, "the waits to end", func() bool { r, _ := e.api.Waiting(); return r == 0 })
	if rec := e.do(t, http.MethodGet, "/v1/companias/c-1?min_version=1"); rec.Code != http.StatusOK {
		t.Errorf("a wait after the others ended = %d, want 200", rec.Code)
	}
}
