// Package httpkittest holds the test helpers both HTTP ports share: HS256
// bearer tokens for the auth tests, a check of the request metrics as the
// admin listener serves them, and a sink for the JSON logs. It is imported
// by tests only.
package httpkittest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// HS256Key returns a copy of a fixed, valid HS256 key (32 random bytes,
// which jwtauth accepts) for tests that verify the tokens MintHS256 signs.
func HS256Key() []byte {
	return []byte{
		0x94, 0x48, 0x7c, 0xab, 0xbd, 0x3b, 0xeb, 0xa5, 0x5a, 0x73, 0x16, 0xe5, 0x0f, 0x97, 0xf2, 0x74,
		0x8f, 0x23, 0x09, 0xd2, 0xd6, 0x2f, 0x7d, 0xa7, 0x4b, 0xb6, 0x93, 0xa1, 0x46, 0x67, 0xe0, 0x02,
	}
}

// MintHS256 returns a compact JWT with claims, signed with secret under
// HS256 ({"alg":"HS256","typ":"JWT"}). It fails t if claims cannot be
// marshalled.
func MintHS256(t testing.TB, secret []byte, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// WantMetrics scrapes GET /metrics from h (the admin listener's handler),
// fails t unless it answers 200 in the text format with every one of lines
// as a whole line, and returns the exposition for further checks.
func WantMetrics(t testing.TB, h http.Handler, lines ...string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	body := rec.Body.String()
	for _, line := range lines {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	return body
}

// LogSink collects the JSON log lines of a service under test; it is safe
// for concurrent use, as a slog handler's writer must be.
type LogSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String returns every line written so far.
func (s *LogSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Records returns the records whose field equals value (e.g. "level",
// "ERROR" or "msg", "http request"), in order. A line that is not a JSON
// object fails t.
func (s *LogSink) Records(t testing.TB, field, value string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m[field] == value {
			out = append(out, m)
		}
	}
	return out
}
