// Package runtest bounds what a test runs in time. Start runs a long-lived
// worker — anything with a Run(ctx) error method that returns when ctx
// ends — for the duration of a test, and checks that it stops cleanly:
// cancel its context, then expect it to return nil within a deadline.
// Context gives a test's calls a deadline.
package runtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// StopTimeout is how long a stop waits for run to return after cancelling
// its context.
const StopTimeout = 30 * time.Second

// Start runs run in a new goroutine with a context that stop cancels. stop
// then waits up to StopTimeout for run to return, and reports with t.Errorf
// a non-nil error or a run that did not return (once, however often stop is
// called). stop is idempotent, safe to call from any goroutine, and
// registered with t.Cleanup, so a test that need not stop the worker
// earlier can ignore it.
func Start(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	stopErr := start(run)
	var once sync.Once
	stop = func() {
		err := stopErr()
		once.Do(func() {
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// StartErr is Start for a test that checks run's result itself: stop
// returns run's error as is, or an error saying that run did not return
// within StopTimeout, and reports nothing. Every call to stop returns the
// same value. The cleanup registered with t.Cleanup stops the worker and
// ignores the result.
func StartErr(t testing.TB, run func(context.Context) error) (stop func() error) {
	t.Helper()
	stop = start(run)
	t.Cleanup(func() { _ = stop() })
	return stop
}

// start runs run until the returned stop cancels it; stop waits for run and
// returns its result, the same on every call.
func start(run func(context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(StopTimeout):
				err = fmt.Errorf("did not return within %v of cancel", StopTimeout)
			}
		})
		return err
	}
}

// Context returns a context that ends timeout from now or when the test
// ends (it derives from t.Context), whichever comes first.
func Context(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}
