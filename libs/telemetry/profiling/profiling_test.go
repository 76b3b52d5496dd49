package profiling_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/telemetry/profiling"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return res.StatusCode, b
}

func TestHandlerServesOnlyTheProfiler(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(profiling.Handler())
	t.Cleanup(srv.Close)

	code, body := get(t, srv.URL+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("GET /debug/pprof/ = %d %.80q, want 200 with the profile index", code, body)
	}
	code, body = get(t, srv.URL+"/debug/pprof/heap?debug=1")
	if code != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Errorf("GET /debug/pprof/heap?debug=1 = %d %.80q, want 200 with a heap profile", code, body)
	}
	code, _ = get(t, srv.URL+"/debug/pprof/cmdline")
	if code != http.StatusOK {
		t.Errorf("GET /debug/pprof/cmdline = %d, want 200", code)
	}
	for _, path := range []string{"/", "/metrics", "/debug/vars"} {
		if code, _ := get(t, srv.URL+path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
}

func TestServerTakesCPUProfileAndStopsWithContext(t *testing.T) {
	t.Parallel()
	s, err := profiling.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := runtest.Start(t, s.Run)

	code, body := get(t, "http://"+s.Addr()+"/debug/pprof/profile?seconds=1")
	if code != http.StatusOK {
		t.Fatalf("GET /debug/pprof/profile?seconds=1 = %d %.200q, want 200", code, body)
	}
	// A CPU profile is a gzipped protocol buffer.
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("CPU profile is not gzip: %v", err)
	}
	if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
		t.Fatalf("CPU profile: %d bytes, %v", len(raw), err)
	}

	stop()
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Run returned", s.Addr())
	}
}

func TestListenRejectsBadAddress(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	for _, addr := range []string{"not-an-address", taken.Addr().String()} {
		if s, err := profiling.Listen(addr); err == nil {
			s.Run(canceled())
			t.Errorf("Listen(%q) = nil error, want one", addr)
		}
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
