package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/services/command/internal/app"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// env is one running API over a real listener (httptest on 127.0.0.1:0).
type env struct {
	t     *testing.T
	srv   *httptest.Server
	api   *httpapi.API
	logs  *httpkittest.LogSink
	ready *atomic.Pointer[error] // readiness answer; nil means ready
}

// with returns e reporting to t, for subtests.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// newEnv starts the API on repo; its readiness answer is e.ready.
func newEnv(t *testing.T, repo command.Repository) *env {
	t.Helper()
	return newEnvReady(t, repo, nil)
}

// newEnvReady starts the API on repo with a readiness check; nil uses e.ready.
func newEnvReady(t *testing.T, repo command.Repository, ready func(context.Context) error) *env {
	t.Helper()
	return newEnvConfig(t, repo, ready, nil)
}

// newEnvConfig is newEnvReady with a last say on the API's Deps.
func newEnvConfig(t *testing.T, repo command.Repository, ready func(context.Context) error, mod func(*httpapi.Deps)) *env {
	t.Helper()
	e := &env{t: t, logs: &httpkittest.LogSink{}, ready: &atomic.Pointer[error]{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if ready == nil {
		ready = func(context.Context) error {
			if p := e.ready.Load(); p != nil {
				return *p
			}
			return nil
		}
	}
	cfg := httpapi.Deps{
		App:    app.New(repo, newUUID, testClock(), nil),
		Ready:  ready,
		Logger: logger,
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := httpapi.New(cfg, httpapi.Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.api = r
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	return e
}

// testClock ticks one millisecond per call from a fixed instant, truncated
// to microseconds as PostgreSQL stores it.
func testClock() command.Clock {
	var n atomic.Int64
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	return func() time.Time {
		return base.Add(time.Duration(n.Add(1)) * 1001 * time.Microsecond)
	}
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// req is one HTTP request of a test.
type req struct {
	method string
	path   string
	body   string
	header map[string]string
	ctype  string // Content-Type; "" means application/json when body != ""
}

// resp is a response, with its body decoded when it is JSON.
type resp struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

func (r resp) str(key string) string {
	s, _ := r.json[key].(string)
	return s
}

// fields returns the "errors" member of a problem as JSON Pointer → detail.
func (r resp) fields() map[string]string {
	out := map[string]string{}
	list, _ := r.json["errors"].([]any)
	for _, it := range list {
		m, _ := it.(map[string]any)
		f, _ := m["pointer"].(string)
		msg, _ := m["detail"].(string)
		out[f] = msg
	}
	return out
}

// do sends rq and checks the response against the OpenAPI document.
func (e *env) do(rq req) resp {
	e.t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	hr, err := http.NewRequest(rq.method, e.srv.URL+rq.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	switch {
	case rq.ctype != "":
		hr.Header.Set("Content-Type", rq.ctype)
	case rq.body != "":
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range rq.header {
		hr.Header.Set(k, v)
	}
	return e.send(hr)
}

// send sends hr and checks the response against the OpenAPI document.
func (e *env) send(hr *http.Request) resp {
	e.t.Helper()
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", hr.Method, hr.URL.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if ct := res.Header.Get("Content-Type"); strings.Contains(ct, "json") {
		if err := json.Unmarshal(raw, &out.json); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %v\n%s", hr.Method, hr.URL.Path, err, raw)
		}
	}
	if res.StatusCode >= 400 {
		checkProblem(e.t, out, hr.URL.EscapedPath())
	}
	if res.Header.Get("X-Request-Id") == "" {
		e.t.Errorf("%s %s: no X-Request-Id in the response", hr.Method, hr.URL.Path)
	}
	spec(e.t).check(e.t, hr.Method, hr.URL.Path, out)
	return out
}

// want fails the test unless r has the status.
func want(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.raw)
	}
}

// wantProblem fails unless r is a problem with the status and code.
func wantProblem(t *testing.T, r resp, status int, code string) {
	t.Helper()
	want(t, r, status)
	if got := r.str("code"); got != code {
		t.Fatalf("problem code = %q, want %q; body: %s", got, code, r.raw)
	}
}

// checkProblem asserts the RFC 9457 shape of an error response.
func checkProblem(t *testing.T, r resp, path string) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("error Content-Type = %q, want application/problem+json", ct)
		return
	}
	if got := r.json["status"]; got != float64(r.status) {
		t.Errorf("problem status = %v, want %d", got, r.status)
	}
	if !strings.HasPrefix(r.str("type"), "https://propalpes.co/problems/") || r.str("title") == "" {
		t.Errorf("problem type/title missing: %s", r.raw)
	}
	if r.str("instance") != path {
		t.Errorf("problem instance = %q, want %q", r.str("instance"), path)
	}
	if r.str("request_id") != r.header.Get("X-Request-Id") {
		t.Errorf("problem request_id = %q, header %q", r.str("request_id"), r.header.Get("X-Request-Id"))
	}
}

// ----- OpenAPI conformance -----

// openapiSpec checks responses against the document the API serves.
type openapiSpec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema
	paths    []specPath
}

type specPath struct {
	template string
	re       *regexp.Regexp
}

var (
	specOnce sync.Once
	specVal  *openapiSpec
	specErr  error
)

const specURL = "mem://openapi.json"

// spec loads the OpenAPI document once per test binary, through the API.
func spec(t *testing.T) *openapiSpec {
	t.Helper()
	specOnce.Do(func() { specVal, specErr = loadSpec() })
	if specErr != nil {
		t.Fatalf("load OpenAPI document: %v", specErr)
	}
	return specVal
}

func loadSpec() (*openapiSpec, error) {
	r, err := httpapi.New(httpapi.Deps{
		App:    app.New(newMemRepo(), newUUID, testClock(), nil),
		Ready:  func(context.Context) error { return nil },
		Logger: slog.New(slog.DiscardHandler),
	}, httpapi.Options{})
	if err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /openapi.json = %d", rec.Code)
	}
	raw := rec.Body.Bytes()
	s := &openapiSpec{schemas: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(raw, &s.doc); err != nil {
		return nil, fmt.Errorf("document is not JSON: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	s.compiler = jsonschema.NewCompiler()
	s.compiler.DefaultDraft(jsonschema.Draft2020)
	s.compiler.AssertFormat()
	if err := s.compiler.AddResource(specURL, inst); err != nil {
		return nil, err
	}
	paths, _ := s.doc["paths"].(map[string]any)
	for p := range paths {
		re := "^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
		s.paths = append(s.paths, specPath{template: p, re: regexp.MustCompile(re)})
	}
	return s, nil
}

// pointer escapes a JSON pointer token.
func pointer(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

// lookup follows a local JSON pointer ("#/a/b") in the document.
func (s *openapiSpec) lookup(ptr string) (map[string]any, bool) {
	var cur any = s.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur = m[tok]
	}
	m, ok := cur.(map[string]any)
	return m, ok
}

// check asserts that method+path is documented with r's status, that r's
// media type and notable headers are documented and that the body matches
// the schema. Unrouted paths (404/405) have no operation and are skipped.
func (s *openapiSpec) check(t *testing.T, method, path string, r resp) {
	t.Helper()
	var template string
	for _, p := range s.paths {
		if p.re.MatchString(path) {
			template = p.template
		}
	}
	opPtr := "#/paths/" + pointer(template) + "/" + strings.ToLower(method)
	if _, ok := s.lookup(opPtr); template == "" || !ok {
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s answered %d but is not in the OpenAPI document", method, path, r.status)
		}
		return
	}
	resPtr := opPtr + "/responses/" + strconv.Itoa(r.status)
	res, ok := s.lookup(resPtr)
	if !ok {
		t.Errorf("%s %s: status %d is not documented", method, template, r.status)
		return
	}
	if ref, ok := res["$ref"].(string); ok {
		resPtr = ref
		res, _ = s.lookup(ref)
	}
	headers, _ := res["headers"].(map[string]any)
	for _, h := range []string{"ETag", "Location", "Idempotent-Replayed", "Accept-Patch", "X-Request-Id", "WWW-Authenticate"} {
		if r.header.Get(h) != "" && headers[h] == nil {
			t.Errorf("%s %s %d: header %s is sent but not documented", method, template, r.status, h)
		}
	}
	ct := r.header.Get("Content-Type")
	if ct == "" {
		return
	}
	content, _ := res["content"].(map[string]any)
	if content[ct] == nil {
		t.Errorf("%s %s %d: Content-Type %q is not documented", method, template, r.status, ct)
		return
	}
	schemaPtr := resPtr + "/content/" + pointer(ct) + "/schema"
	sch, err := s.schema(schemaPtr)
	if err != nil {
		t.Errorf("compile %s: %v", schemaPtr, err)
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.raw))
	if err != nil {
		t.Errorf("%s %s %d: body is not JSON: %v", method, template, r.status, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s %d: body does not match the documented schema: %v\n%s", method, template, r.status, err, r.raw)
	}
}

func (s *openapiSpec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.schemas[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(specURL + ptr)
	if err != nil {
		return nil, err
	}
	s.schemas[ptr] = sch
	return sch, nil
}
