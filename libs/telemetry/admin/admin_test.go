package admin_test

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/telemetry/admin"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The admin listener serves GET /metrics and nothing else, and stops
// gracefully when its context ends.
func TestServer(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") })
	s, err := admin.Listen("127.0.0.1:0", metrics, 5*time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stop := runtest.Start(t, s.Run)

	base := "http://" + s.Addr()
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || body != "up 1\n" {
		t.Errorf("GET /metrics = %d %q, want 200 and the exposition", code, body)
	}
	for _, path := range []string{"/", "/debug/pprof/", "/v1/companias"} {
		if code, _ := get(t, base+path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
	res, err := http.Post(base+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", res.StatusCode)
	}

	stop()
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("the listener still answers after Run returned")
	}
}

func TestListenTaken(t *testing.T) {
	t.Parallel()
	s, err := admin.Listen("127.0.0.1:0", http.NotFoundHandler(), time.Second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runtest.Start(t, s.Run)
	if _, err := admin.Listen(s.Addr(), http.NotFoundHandler(), time.Second, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("Listen on a taken address succeeded")
	}
}
