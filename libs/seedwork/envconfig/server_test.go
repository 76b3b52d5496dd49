package envconfig_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

var serverDefaults = map[string]string{"HTTP_ADDR": "127.0.0.1:8080", "HTTP_READ_HEADER_TIMEOUT": "5s",
	"HTTP_READ_TIMEOUT": "15s", "HTTP_WRITE_TIMEOUT": "30s", "HTTP_IDLE_TIMEOUT": "2m"}

func TestHTTPServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vars map[string]string
		want envconfig.HTTPServer
	}{
		{"defaults", nil, envconfig.HTTPServer{Addr: "127.0.0.1:8080", ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}},
		{"overrides", map[string]string{"HTTP_ADDR": ":9000", "HTTP_READ_HEADER_TIMEOUT": "1s", "HTTP_READ_TIMEOUT": "2s",
			"HTTP_WRITE_TIMEOUT": "3s", "HTTP_IDLE_TIMEOUT": "4s"},
			envconfig.HTTPServer{Addr: ":9000", ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second,
				WriteTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newParser(tt.vars, serverDefaults)
			if got := p.HTTPServer(); got != tt.want || p.Err() != nil {
				t.Errorf("HTTPServer() = %+v, %v; want %+v, nil", got, p.Err(), tt.want)
			}
		})
	}
}

func TestHTTPServerProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"no port", map[string]string{"HTTP_ADDR": "host"}, []string{`HTTP_ADDR must be host:port, got "host"`}},
		{"zero", map[string]string{"HTTP_IDLE_TIMEOUT": "0s"}, []string{`HTTP_IDLE_TIMEOUT must be a duration in [1ms, 1h0m0s], got "0s"`}},
		{"negative", map[string]string{"HTTP_READ_TIMEOUT": "-1s"}, []string{`HTTP_READ_TIMEOUT must be a duration in [1ms, 1h0m0s], got "-1s"`}},
		{"every one", map[string]string{"HTTP_READ_HEADER_TIMEOUT": "x", "HTTP_WRITE_TIMEOUT": "2h"},
			[]string{"HTTP_READ_HEADER_TIMEOUT must be", "HTTP_WRITE_TIMEOUT must be"}},
		{"read before headers", map[string]string{"HTTP_READ_HEADER_TIMEOUT": "10s", "HTTP_READ_TIMEOUT": "5s"},
			[]string{"HTTP_READ_TIMEOUT (5s) must not be shorter than HTTP_READ_HEADER_TIMEOUT (10s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newParser(tt.vars, serverDefaults)
			p.HTTPServer()
			err := p.Err()
			if err == nil {
				t.Fatalf("HTTPServer(%v) recorded no problem", tt.vars)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHTTPServerServer(t *testing.T) {
	t.Parallel()
	s := envconfig.HTTPServer{Addr: ":1", ReadHeaderTimeout: 1, ReadTimeout: 2, WriteTimeout: 3, IdleTimeout: 4}
	h := http.NotFoundHandler()
	srv := s.Server(h, slog.New(slog.DiscardHandler))
	if srv.Addr != ":1" || srv.ReadHeaderTimeout != 1 || srv.ReadTimeout != 2 || srv.WriteTimeout != 3 || srv.IdleTimeout != 4 {
		t.Errorf("Server() timeouts = %v %v %v %v at %q, want 1 2 3 4 at :1", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.Addr)
	}
	if srv.MaxHeaderBytes != envconfig.MaxHeaderBytes || srv.ErrorLog == nil || srv.Handler == nil {
		t.Errorf("Server() = MaxHeaderBytes %d, ErrorLog %v, Handler %v; want %d, a logger, the handler", srv.MaxHeaderBytes, srv.ErrorLog, srv.Handler, envconfig.MaxHeaderBytes)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestServeCleanShutdown(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- envconfig.Serve(ctx, srv, ln, time.Second) }()
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
		t.Errorf("Serve after cancel = %v, want nil", err)
	}
}

func TestServeListenerFailure(t *testing.T) {
	t.Parallel()
	ln := listen(t)
	ln.Close()
	err := envconfig.Serve(t.Context(), &http.Server{}, ln, time.Second)
	if err == nil || !strings.Contains(err.Error(), "http server") {
		t.Errorf("Serve on a closed listener = %v, want an http server error", err)
	}
}

func TestServeShutdownTimeout(t *testing.T) {
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
	go func() { done <- envconfig.Serve(ctx, srv, ln, 10*time.Millisecond) }()
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
		t.Errorf("Serve with a stuck request = %v, want an http shutdown deadline error", err)
	}
}
