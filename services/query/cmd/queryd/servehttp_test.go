package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestServeHTTPCleanShutdown(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, srv, ln, time.Second, slog.New(slog.DiscardHandler)) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("status = %d", res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveHTTP after cancel = %v, want nil", err)
	}
}

func TestServeHTTPListenerFailure(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	ln.Close()
	err := serveHTTP(t.Context(), &http.Server{}, ln, time.Second, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "http server") {
		t.Errorf("serveHTTP on a closed listener = %v, want an http server error", err)
	}
}

func TestServeHTTPShutdownTimeout(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release // a request that outlives the shutdown timeout
	})}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, srv, ln, 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			res.Body.Close()
		}
	}()
	<-entered
	cancel()
	err := <-done
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "http shutdown") {
		t.Errorf("serveHTTP with a stuck request = %v, want an http shutdown deadline error", err)
	}
}

func TestRunBounded(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	if err := runBounded(t.Context(), func(context.Context) error { return boom }, time.Second); err != boom {
		t.Errorf("failing worker: runBounded = %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := runBounded(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil }, time.Second); err != nil {
		t.Errorf("clean stop: runBounded = %v, want nil", err)
	}
	stuck := make(chan struct{})
	defer close(stuck)
	err := runBounded(ctx, func(context.Context) error { <-stuck; return nil }, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not stop within 10ms") {
		t.Errorf("stuck worker: runBounded = %v, want a timeout error", err)
	}
}
