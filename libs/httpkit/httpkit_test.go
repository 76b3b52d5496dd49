package httpkit_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
	"github.com/propalpes/companias/libs/telemetry/tracing"
)

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(w *logBuffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func serve(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func problemOf(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %q (body %s)", ct, problem.ContentType, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("problem body: %v", err)
	}
	return m
}

func TestValidRequestID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"abc-123":                              true,
		"0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11": true,
		"01HZX3.a_b:c":                         true,
		strings.Repeat("x", 128):               true,
		strings.Repeat("x", 129):               false,
		"":                                     false,
		"a b":                                  false,
		"ñ":                                    false,
		"req\n":                                false,
		"01HZX3~:/+=.":                         false,
		`"quoted"`:                             false,
	} {
		if got := httpkit.ValidRequestID(s); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", s, got, want)
		}
	}
	if id := httpkit.NewRequestID(); len(id) != 32 || !httpkit.ValidRequestID(id) {
		t.Errorf("NewRequestID() = %q, want 32 hex digits", id)
	}
}

type observed struct {
	route, method string
	status        int
}

func TestEngine(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	var mu sync.Mutex
	var seen []observed
	kit := httpkit.New(httpkit.Options{Logger: newLogger(&logs, slog.LevelDebug), Observe: func(route, method string, status int, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, observed{route, method, status})
	}})
	e := kit.Engine()
	e.GET("/v1/things/:id", func(c *gin.Context) { kit.WriteJSON(c, http.StatusOK, map[string]string{"id": c.Param("id")}) })
	e.GET("/panic", func(*gin.Context) { panic("boom") })
	e.GET("/abort", func(*gin.Context) { panic(http.ErrAbortHandler) })
	e.GET("/late-panic", func(c *gin.Context) { c.Status(http.StatusOK); _, _ = c.Writer.WriteString("partial"); panic("late") })

	w := serve(e, http.MethodGet, "/v1/things/7", http.Header{httpkit.HeaderRequestID: {"client-id"}})
	if w.Code != http.StatusOK || w.Header().Get(httpkit.HeaderRequestID) != "client-id" || w.Body.String() != "{\"id\":\"7\"}\n" {
		t.Errorf("GET /v1/things/7 = %d %q, X-Request-Id %q", w.Code, w.Body, w.Header().Get(httpkit.HeaderRequestID))
	}

	w = serve(e, http.MethodGet, "/v1/things/7/", http.Header{httpkit.HeaderRequestID: {"bad id"}})
	p := problemOf(t, w)
	id := w.Header().Get(httpkit.HeaderRequestID)
	if w.Code != http.StatusNotFound || p["code"] != "route_not_found" || p["request_id"] != id || id == "bad id" || p["instance"] != "/v1/things/7/" {
		t.Errorf("trailing slash: %d %v (X-Request-Id %q), want a 404 problem, no redirect", w.Code, p, id)
	}

	w = serve(e, "BREW", "/v1/things/7", nil)
	if p := problemOf(t, w); w.Code != http.StatusMethodNotAllowed || p["code"] != "method_not_allowed" || !strings.Contains(p["detail"].(string), "allowed: GET") {
		t.Errorf("BREW: %d %v", w.Code, p)
	}

	w = serve(e, http.MethodGet, "/panic", nil)
	if p := problemOf(t, w); w.Code != http.StatusInternalServerError || p["code"] != "internal" || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("panic: %d %v", w.Code, p)
	}
	if n := strings.Count(logs.String(), `"msg":"http handler panic"`); n != 1 || !strings.Contains(logs.String(), `"panic":"boom","stack":"goroutine`) {
		t.Errorf("panic logged %d times, want once with its value:\n%s", n, logs.String())
	}

	w = serve(e, http.MethodGet, "/late-panic", nil)
	if w.Code != http.StatusOK || w.Body.String() != "partial" {
		t.Errorf("late panic: %d %q, want the partial response cut", w.Code, w.Body)
	}

	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("ErrAbortHandler: recovered %v, want it re-raised", v)
			}
		}()
		serve(e, http.MethodGet, "/abort", nil)
	}()

	mu.Lock()
	defer mu.Unlock()
	want := []observed{
		{"/v1/things/:id", "GET", 200}, {"", "GET", 404}, {"", "other", 405}, {"/panic", "GET", 500}, {"/late-panic", "GET", 200},
	}
	if fmt.Sprint(seen[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
	if !strings.Contains(logs.String(), `"msg":"http request"`) || !strings.Contains(logs.String(), `"route":"/v1/things/:id"`) {
		t.Errorf("no access log line:\n%s", logs.String())
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	kit := httpkit.New(httpkit.Options{Logger: newLogger(&logs, slog.LevelInfo)})
	e := kit.Engine()
	errs := map[string]error{
		"request":   &httpkit.Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Detail: "json only", Header: http.Header{"Accept-Patch": {"application/merge-patch+json"}}, Errors: []problem.Violation{{Pointer: "/x", Detail: "bad"}}},
		"app":       fmt.Errorf("wrap: %w", apperr.New(apperr.NotFound, "not_found", "no such thing")),
		"timeout":   fmt.Errorf("query: %w", context.DeadlineExceeded),
		"down":      apperr.New(apperr.Unavailable, "unavailable", "store down"),
		"internal":  errors.New("password=hunter2"),
		"cancelled": context.Canceled,
	}
	for name, err := range errs {
		e.GET("/"+name, func(c *gin.Context) {
			if name == "cancelled" {
				ctx, cancel := context.WithCancel(c.Request.Context())
				cancel()
				c.Request = c.Request.WithContext(ctx)
			}
			kit.Fail(c, err)
		})
	}
	for _, tc := range []struct {
		name   string
		status int
		code   string
		level  string
	}{
		{"request", 415, "unsupported_media_type", ""},
		{"app", 404, "not_found", ""},
		{"timeout", 503, "timeout", "WARN"},
		{"down", 503, "unavailable", "WARN"},
		{"internal", 500, "internal", "ERROR"},
	} {
		w := serve(e, http.MethodGet, "/"+tc.name, nil)
		p := problemOf(t, w)
		if w.Code != tc.status || p["code"] != tc.code || p["status"] != float64(tc.status) || p["request_id"] != w.Header().Get(httpkit.HeaderRequestID) {
			t.Errorf("%s: %d %v, want %d %s", tc.name, w.Code, p, tc.status, tc.code)
		}
		logged := strings.Contains(logs.String(), `"path":"/`+tc.name+`"`)
		if logged != (tc.level != "") || (logged && !strings.Contains(logs.String(), `"level":"`+tc.level+`","msg":"http request failed"`)) {
			t.Errorf("%s: logged %v, want level %q:\n%s", tc.name, logged, tc.level, logs.String())
		}
	}
	if strings.Contains(serve(e, http.MethodGet, "/internal", nil).Body.String(), "hunter2") {
		t.Error("a 500 shows its cause")
	}
	w := serve(e, http.MethodGet, "/request", nil)
	if w.Header().Get("Accept-Patch") != "application/merge-patch+json" || !strings.Contains(w.Body.String(), `"errors":[{"detail":"bad","pointer":"/x"}]`) {
		t.Errorf("request error: headers %v body %s", w.Header(), w.Body)
	}
	if w := serve(e, http.MethodGet, "/cancelled", nil); w.Code != httpkit.StatusClientClosedRequest || w.Body.Len() != 0 {
		t.Errorf("cancelled: %d %q, want 499 and no body", w.Code, w.Body)
	}
}

// fakeAuth accepts the token "good" with the scopes after it ("good,a,b").
type fakeAuth struct{}

func (fakeAuth) Verify(_ context.Context, raw string) (jwtauth.Claims, error) {
	f := strings.Split(raw, ",")
	if len(f) == 0 || f[0] != "good" {
		return jwtauth.Claims{}, apperr.New(apperr.Unauthenticated, "invalid_token", "bad token")
	}
	return jwtauth.Claims{Subject: "alice", Issuer: "iss", Scopes: f[1:]}, nil
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	handler := func(kit *httpkit.Kit) http.Handler {
		e := kit.Engine()
		e.GET("/r", kit.Authorize("s:read"), func(c *gin.Context) {
			claims, ok := httpkit.Claims(c)
			c.String(http.StatusOK, "%v %s %s", ok, httpkit.Subject(c), claims.Issuer)
		})
		return e
	}
	open := handler(httpkit.New(httpkit.Options{Logger: slog.New(slog.DiscardHandler)}))
	if w := serve(open, http.MethodGet, "/r", nil); w.Code != http.StatusOK || w.Body.String() != "false  " {
		t.Errorf("open: %d %q", w.Code, w.Body)
	}
	kit := httpkit.New(httpkit.Options{Logger: slog.New(slog.DiscardHandler), Auth: fakeAuth{}, Realm: "test"})
	if !kit.AuthEnabled() {
		t.Error("AuthEnabled() = false with an Authenticator")
	}
	guarded := handler(kit)
	for _, tc := range []struct {
		token     string
		status    int
		challenge string
	}{
		{"", 401, `Bearer realm="test"`},
		{"Bearer bad", 401, `error="invalid_token"`},
		{"Bearer good,other", 403, `error="insufficient_scope"`},
		{"Bearer good,s:read", 200, ""},
	} {
		w := serve(guarded, http.MethodGet, "/r", http.Header{"Authorization": {tc.token}})
		if w.Code != tc.status || !strings.Contains(w.Header().Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("%q: %d, WWW-Authenticate %q; want %d with %q", tc.token, w.Code, w.Header().Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
		if tc.status == 200 && w.Body.String() != "true alice iss" {
			t.Errorf("%q: body %q, want the claims kept", tc.token, w.Body)
		}
	}
}

// TestAuthKeyServerDown checks that a JWKS that cannot be fetched answers
// 503 without a challenge (the client's token may be fine), logged once at
// Warn.
func TestAuthKeyServerDown(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	v, err := jwtauth.New(jwtauth.Config{JWKSURL: down.URL})
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	kit := httpkit.New(httpkit.Options{Logger: newLogger(&logs, slog.LevelInfo), Auth: v})
	e := kit.Engine()
	e.GET("/r", kit.Authorize("s:read"), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	tok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"k1"}`)) + ".e30.c2ln"
	w := serve(e, http.MethodGet, "/r", http.Header{"Authorization": {"Bearer " + tok}})
	if p := problemOf(t, w); w.Code != http.StatusServiceUnavailable || p["code"] != jwtauth.CodeKeysUnavailable {
		t.Errorf("key server down: %d %v, want 503 %s", w.Code, p, jwtauth.CodeKeysUnavailable)
	}
	if got := w.Header().Get("WWW-Authenticate"); got != "" {
		t.Errorf("WWW-Authenticate = %q on a 503", got)
	}
	if n := strings.Count(logs.String(), `"level":"WARN","msg":"http request failed"`); n != 1 {
		t.Errorf("the 503 was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestNewAuthenticator checks what NewAuthenticator adds to
// jwtauth.NewLogged (whose rules are tested in jwtauth): the service's
// warning, and an untyped nil Authenticator when authentication is off or
// fails to build.
func TestNewAuthenticator(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	log := newLogger(&logs, slog.LevelInfo)
	a, err := httpkit.NewAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeNone}, log, "AUTH IS OFF", "s:read")
	if err != nil || a != nil {
		t.Fatalf("NewAuthenticator(none) = %v, %v; want an untyped nil and no error", a, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"AUTH IS OFF"`) {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	key, err := hex.DecodeString("94487cabbd3beba55a7316e50f97f2748f2309d2d62f7da74bb693a14667e002")
	if err != nil {
		t.Fatal(err)
	}
	a, err = httpkit.NewAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: jwtauth.Secret(key)}, log, "AUTH IS OFF", "s:read")
	if err != nil || a == nil {
		t.Fatalf("NewAuthenticator(hs256) = %v, %v", a, err)
	}
	if _, err := a.Verify(context.Background(), "a.b.c"); !errors.Is(err, jwtauth.ErrInvalidToken) {
		t.Errorf("Verify(garbage) = %v, want ErrInvalidToken", err)
	}
	if a, err := httpkit.NewAuthenticator(jwtauth.Settings{Mode: "ldap"}, log, "AUTH IS OFF"); err == nil || a != nil {
		t.Errorf("unknown mode = %v, %v; want an error and an untyped nil Authenticator", a, err)
	}
}

// FuzzRequestHeaders serves X-Request-Id and traceparent (one header line per
// "\n") through an Engine. The request id echoed and kept is the client's
// when ValidRequestID accepts it, else a new 32-hex-digit one. A traceparent
// is kept only when sent once, at most tracing.MaxTraceparentLen long, and
// valid: 55 characters (version, trace id, parent id, flags in lower-case
// hex, ids not zero, version not ff) that the tracing library reads as the
// same trace and parent.
func FuzzRequestHeaders(f *testing.F) {
	kit := httpkit.New(httpkit.Options{Logger: slog.New(slog.DiscardHandler)})
	e := kit.Engine()
	var id, tp string
	e.GET("/x", func(c *gin.Context) { id, tp = httpkit.RequestID(c), httpkit.Traceparent(c) })
	f.Fuzz(func(t *testing.T, requestID, traceparent string) {
		h := http.Header{}
		if requestID != "" {
			h[httpkit.HeaderRequestID] = []string{requestID}
		}
		lines := headerLines(traceparent)
		if lines != nil {
			h[http.CanonicalHeaderKey(httpkit.HeaderTraceparent)] = lines
		}
		id, tp = "", ""
		w := serve(e, http.MethodGet, "/x", h)
		if w.Header().Get(httpkit.HeaderRequestID) != id || !httpkit.ValidRequestID(id) {
			t.Fatalf("request id %q: echoed %q, kept %q", requestID, w.Header().Get(httpkit.HeaderRequestID), id)
		}
		if id != requestID && (httpkit.ValidRequestID(requestID) || len(id) != 32 || !lowerHex(id)) {
			t.Fatalf("request id %q replaced by %q", requestID, id)
		}
		if tp == "" {
			return
		}
		if len(lines) != 1 || len(tp) != 55 || !strings.HasPrefix(lines[0], tp) || len(lines[0]) > tracing.MaxTraceparentLen {
			t.Fatalf("traceparent %q kept as %q", traceparent, tp)
		}
		if !lowerHex(tp[:2]+tp[3:35]+tp[36:52]+tp[53:]) || tp[:2] == "ff" || strings.Trim(tp[3:35], "0") == "" || strings.Trim(tp[36:52], "0") == "" {
			t.Fatalf("traceparent %q kept, though invalid", tp)
		}
		sc, ok := tracing.SpanContext(tp)
		if !ok || sc.TraceID().String() != tp[3:35] || sc.SpanID().String() != tp[36:52] {
			t.Fatalf("traceparent %q kept, but the tracing library reads it as %v (%v)", tp, sc, ok)
		}
	})
}

// headerLines splits a fuzzed header into its lines, none for "".
func headerLines(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, "\n")
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	e := httpkit.New(httpkit.Options{Logger: slog.New(slog.DiscardHandler)}).Engine()
	h := func(*gin.Context) {}
	e.POST("/v1/a/:id/x", h)
	e.GET("/v1/a/:id", h)
	e.GET("/v1/a", h)
	e.PATCH("/v1/a/:id", h)
	got := fmt.Sprint(httpkit.Routes(e))
	if want := "[{GET /v1/a} {GET /v1/a/{id}} {PATCH /v1/a/{id}} {POST /v1/a/{id}/x}]"; got != want {
		t.Errorf("Routes = %s, want %s", got, want)
	}
}
