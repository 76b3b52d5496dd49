// Package profiling serves the Go runtime profiler (net/http/pprof) on a
// listener of its own, away from a service's API port, for operators who
// switch it on (PPROF_ADDR). Profiles expose the program's internals and a
// CPU profile costs CPU while it runs: bind the listener to localhost or a
// private interface, never to the public network.
package profiling

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Handler returns the profiler's endpoints on a mux of their own (never
// http.DefaultServeMux): /debug/pprof/ (the index and the named profiles:
// heap, allocs, goroutine, block, mutex, threadcreate), and
// /debug/pprof/cmdline, /profile (CPU, ?seconds=N), /symbol and /trace.
// Anything else is a 404.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Server serves Handler on its own listener. Create it with Listen and run
// it with Run.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen opens the listener on addr ("host:port"; port 0 picks a free one),
// so that a taken or invalid address fails at start-up.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("profiling: listen on %s: %w", addr, err)
	}
	return &Server{ln: ln, srv: &http.Server{
		Handler:           Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: a CPU profile or an execution trace answers only
		// after the ?seconds it was asked for.
		IdleTimeout: time.Minute,
	}}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done, then closes the listener and every
// connection (a profile being taken is cut short) and returns nil; it
// returns an error only if serving fails. Call it once.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	defer stop()
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("profiling: serve: %w", err)
	}
	return nil
}
