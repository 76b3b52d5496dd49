package envconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// HTTPServer is how a service's HTTP API listens: its address and the
// timeouts of its http.Server. Both services read it with the same names,
// so an operator tunes them the same way.
type HTTPServer struct {
	// Addr is the listen address, host:port (HTTP_ADDR).
	Addr string
	// ReadHeaderTimeout bounds reading a request's headers
	// (HTTP_READ_HEADER_TIMEOUT): the guard against slow-header clients.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (HTTP_READ_TIMEOUT).
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its response (HTTP_WRITE_TIMEOUT); a handler that waits (the
	// reader's read-your-writes wait) must finish within it.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request (HTTP_IDLE_TIMEOUT).
	IdleTimeout time.Duration
}

// The variables HTTPServer reads besides HTTPAddrVar; give each a default.
const (
	HTTPReadHeaderTimeoutVar = "HTTP_READ_HEADER_TIMEOUT"
	HTTPReadTimeoutVar       = "HTTP_READ_TIMEOUT"
	HTTPWriteTimeoutVar      = "HTTP_WRITE_TIMEOUT"
	HTTPIdleTimeoutVar       = "HTTP_IDLE_TIMEOUT"
)

// MaxHeaderBytes is the http.Server limit on request headers that
// HTTPServer.Server sets: a bearer token and the usual headers fit many
// times over.
const MaxHeaderBytes = 64 << 10

// maxHTTPTimeout is the largest value an HTTP_*_TIMEOUT may take.
const maxHTTPTimeout = time.Hour

// HTTPServer reads HTTP_ADDR as Addr does and the four HTTP_*_TIMEOUT
// variables as durations in [1ms, 1h]. A read timeout shorter than the
// read-header timeout is a problem: the headers could never be read in full.
func (p *Parser) HTTPServer() HTTPServer {
	s := HTTPServer{
		Addr:              p.Addr(HTTPAddrVar),
		ReadHeaderTimeout: p.DurationRange(HTTPReadHeaderTimeoutVar, time.Millisecond, maxHTTPTimeout),
		ReadTimeout:       p.DurationRange(HTTPReadTimeoutVar, time.Millisecond, maxHTTPTimeout),
		WriteTimeout:      p.DurationRange(HTTPWriteTimeoutVar, time.Millisecond, maxHTTPTimeout),
		IdleTimeout:       p.DurationRange(HTTPIdleTimeoutVar, time.Millisecond, maxHTTPTimeout),
	}
	if s.ReadTimeout < s.ReadHeaderTimeout {
		p.Fail(HTTPReadTimeoutVar, fmt.Sprintf("(%s) must not be shorter than %s (%s)", s.ReadTimeout, HTTPReadHeaderTimeoutVar, s.ReadHeaderTimeout))
	}
	return s
}

// Server returns the http.Server of s serving h: its timeouts,
// MaxHeaderBytes, and the server's own errors (TLS handshakes, panics it
// recovered, accept failures) logged on log at Warn. Its Addr is s.Addr;
// a caller that listens itself passes the listener to Serve.
func (s HTTPServer) Server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              s.Addr,
		Handler:           h,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve serves srv on ln until ctx is cancelled, then shuts it down
// gracefully: it stops accepting and waits up to shutdownTimeout for the
// requests in flight, then closes what is left. It returns nil after a
// clean shutdown, "http server: …" when serving fails (a closed listener),
// and "http shutdown: …" (wrapping context.DeadlineExceeded) when requests
// outlived the timeout. Both services run their API through it, as one
// worker of their errgroup.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, shutdownTimeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}
