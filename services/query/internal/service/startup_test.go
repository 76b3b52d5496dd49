package service

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStartupHandler checks the responses served while waiting.
func TestStartupHandler(t *testing.T) {
	t.Parallel()
	st := newStartupState()
	st.ready(depKafka)
	st.waitFor(depMongo)
	h := startupHandler(st)
	skipped := newStartupState()
	skipped.skip(depKafka)
	if checks, waiting := skipped.snapshot(); checks["kafka"] != "skipped" || waiting != "" {
		t.Errorf("after skip(kafka): checks %v, waiting %q", checks, waiting)
	}
	for _, tt := range []struct {
		path     string
		code     int
		contains string
	}{
		{"/healthz", http.StatusOK, `"status":"ok"`},
		{"/health", http.StatusOK, `"status":"up"`},
		{"/readyz", http.StatusServiceUnavailable, `"checks":{"consumer":"not started","kafka":"ok","mongo":"waiting"}`},
		{"/readyz", http.StatusServiceUnavailable, "waiting for mongo"},
		{"/v1/companias", http.StatusServiceUnavailable, `"code":"starting"`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.contains) {
			t.Errorf("GET %s = %d %s, want %d containing %s", tt.path, rec.Code, rec.Body, tt.code, tt.contains)
		}
	}
}
