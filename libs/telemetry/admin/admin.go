// Package admin serves a service's operator endpoints — GET /metrics, the
// Prometheus exposition — on a listener of their own (METRICS_ADDR), away
// from the public API port, so that scrapes and their cost are reachable
// only where the operator binds them (loopback by default, a pod port that
// only the scraper reaches in a cluster).
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/propalpes/companias/libs/telemetry/profiling"
)

// Server serves GET /metrics; every other path is 404. Create it with
// Listen and run it with Run.
type Server struct {
	ln       net.Listener
	srv      *http.Server
	shutdown time.Duration
}

// Listen opens the listener on addr ("host:port"; port 0 picks a free one),
// so that a taken or invalid address fails at start-up. metrics serves the
// exposition; shutdownTimeout bounds the graceful stop of Run.
func Listen(addr string, metrics http.Handler, shutdownTimeout time.Duration, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	return &Server{ln: ln, shutdown: shutdownTimeout, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done, then stops gracefully: it stops accepting,
// lets the scrapes in flight finish within the shutdown timeout and
// returns nil (or the shutdown error). It returns an error at once if
// serving fails. Call it once.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdown)
	defer cancel()
	if err := s.srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve: %w", err)
	}
	return nil
}

// Close closes the listener of a server that will not Run.
func (s *Server) Close() error { return s.ln.Close() }

// Listeners are a service's operator listeners; either may be nil (off).
type Listeners struct {
	Metrics  *Server
	Profiler *profiling.Server
}

// Open opens the metrics listener on metricsAddr ("" : none), serving
// metrics, and the profiler on pprofAddr ("": none). The caller checked
// that pprofAddr is loopback unless pprofRemote (see envconfig.Admin);
// pprofRemote is logged at Warn. On error nothing stays open.
func Open(metricsAddr string, metrics http.Handler, pprofAddr string, pprofRemote bool, shutdownTimeout time.Duration, log *slog.Logger) (Listeners, error) {
	var l Listeners
	var err error
	if metricsAddr != "" {
		if l.Metrics, err = Listen(metricsAddr, metrics, shutdownTimeout, log); err != nil {
			return Listeners{}, err
		}
	}
	if pprofAddr != "" {
		if pprofRemote {
			log.Warn("the profiler may be reachable beyond this host (PPROF_ALLOW_REMOTE=true)", "addr", pprofAddr)
		}
		if l.Profiler, err = profiling.Listen(pprofAddr); err != nil {
			if l.Metrics != nil {
				_ = l.Metrics.Close()
			}
			return Listeners{}, err
		}
	}
	return l, nil
}

// Go runs each open listener with g.Go until ctx is done, logging its
// address first.
func (l Listeners) Go(ctx context.Context, g interface{ Go(func() error) }, log *slog.Logger) {
	if l.Metrics != nil {
		g.Go(func() error {
			log.Info("metrics listening", "addr", l.Metrics.Addr())
			return l.Metrics.Run(ctx)
		})
	}
	if l.Profiler != nil {
		g.Go(func() error {
			log.Info("profiler listening", "addr", l.Profiler.Addr())
			return l.Profiler.Run(ctx)
		})
	}
}
