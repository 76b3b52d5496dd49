package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// authSecret signs and verifies the test tokens.
var authSecret = httpkittest.HS256Key()

// mint returns an HS256 token for sub with scope (space-separated),
// expiring at exp, signed with secret.
func mint(t *testing.T, secret []byte, sub, scope string, exp time.Time) string {
	t.Helper()
	return httpkittest.MintHS256(t, secret, map[string]any{"sub": sub, "scope": scope, "exp": exp.Unix(), "iat": time.Now().Unix(), "aud": "companias-command"})
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// newAuthEnv starts the API with HS256 bearer authentication (audience
// companias-command).
func newAuthEnv(t *testing.T) *env {
	t.Helper()
	v, err := jwtauth.New(jwtauth.Config{HS256Secret: authSecret, Audience: "companias-command"})
	if err != nil {
		t.Fatal(err)
	}
	return newEnvConfig(t, newMemRepo(), nil, func(c *httpapi.Deps) {
		c.Auth = v
	})
}

// guarded lists every guarded operation, with the scope it needs; %s is a
// company id.
var guarded = []struct {
	method, path, body, scope string
	ok                        int
}{
	{"POST", "/v1/companias", `{"nombre":"N%s","email":"a@acme.co","identificacion":"1"}`, httpapi.AuthScopeWrite, http.StatusCreated},
	{"PATCH", "/v1/companias/%s", `{"email":"b@acme.co"}`, httpapi.AuthScopeWrite, http.StatusOK},
	{"POST", "/ingestion/compania-comando", `{"compania":{"nombre":"I%s","email":"a@acme.co","identificacion":"2"}}`, httpapi.AuthScopeWrite, http.StatusAccepted},
	{"POST", "/v1/companias/%s/aprobar", ``, httpapi.AuthScopeApprove, http.StatusOK},
	{"POST", "/v1/companias/%s/rechazar", `{"motivo":"no"}`, httpapi.AuthScopeApprove, http.StatusOK},
}

func TestAuthGuardsCommands(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	now := time.Now()
	writer := mint(t, authSecret, "writer", "openid "+httpapi.AuthScopeWrite, now.Add(time.Hour))
	approver := mint(t, authSecret, "approver", httpapi.AuthScopeApprove, now.Add(time.Hour))
	tokens := map[string]string{httpapi.AuthScopeWrite: writer, httpapi.AuthScopeApprove: approver}
	other := map[string]string{httpapi.AuthScopeWrite: approver, httpapi.AuthScopeApprove: writer}

	for i, g := range guarded {
		t.Run(g.method+" "+g.path, func(t *testing.T) {
			e := e.with(t)
			// Each operation gets its own PENDIENTE company.
			cr := e.do(req{method: "POST", path: "/v1/companias", header: bearer(writer),
				body: crearBody(fmt.Sprintf("Co %d", i), "900123456")})
			want(t, cr, http.StatusCreated)
			id := cr.str("id")
			path := strings.ReplaceAll(g.path, "%s", id)
			body := strings.ReplaceAll(g.body, "%s", id)

			// No token: 401, a challenge without error.
			r := e.do(req{method: g.method, path: path, body: body})
			wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")
			if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="companias"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			// Another scheme counts as no token.
			r = e.do(req{method: g.method, path: path, body: body, header: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}})
			wantProblem(t, r, http.StatusUnauthorized, "unauthenticated")

			// Refused tokens: 401 invalid_token.
			for name, tok := range map[string]string{
				"garbage":      "not.a.jwt",
				"expired":      mint(t, authSecret, "w", g.scope, now.Add(-time.Hour)),
				"other secret": mint(t, []byte("another-secret-that-is-32-bytes-long"), "w", g.scope, now.Add(time.Hour)),
			} {
				r := e.do(req{method: g.method, path: path, body: body, header: bearer(tok)})
				wantProblem(t, r, http.StatusUnauthorized, "invalid_token")
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="companias", error="invalid_token", error_description="`) {
					t.Errorf("%s: WWW-Authenticate = %q", name, got)
				}
			}

			// Valid token, wrong scope: 403.
			r = e.do(req{method: g.method, path: path, body: body, header: bearer(other[g.scope])})
			wantProblem(t, r, http.StatusForbidden, "insufficient_scope")
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) || !strings.Contains(got, `scope="`+g.scope+`"`) {
				t.Errorf("WWW-Authenticate = %q", got)
			}

			// The right scope: the command runs.
			want(t, e.do(req{method: g.method, path: path, body: body, header: bearer(tokens[g.scope])}), g.ok)
		})
	}
}

// TestAuthBeforeBody checks that an unauthenticated request is refused
// before its body or headers are looked at.
func TestAuthBeforeBody(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	wantProblem(t, e.do(req{method: "POST", path: "/v1/companias", body: "{", ctype: "text/plain"}), http.StatusUnauthorized, "unauthenticated")
	wantProblem(t, e.do(req{method: "PATCH", path: "/v1/companias/not-a-uuid", body: "{}"}), http.StatusUnauthorized, "unauthenticated")
	// Unknown routes and methods stay 404 and 405.
	want(t, e.do(req{method: "GET", path: "/v1/nothing"}), http.StatusNotFound)
	want(t, e.do(req{method: "DELETE", path: "/v1/companias"}), http.StatusMethodNotAllowed)
}

func TestAuthOpenRoutes(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	for _, path := range []string{"/health", "/healthz", "/readyz", "/openapi.json"} {
		want(t, e.do(req{method: "GET", path: path}), http.StatusOK)
	}
}

func TestAuthLogsSubject(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	tok := mint(t, authSecret, "alice@propalpes", httpapi.AuthScopeWrite, time.Now().Add(time.Hour))
	want(t, e.do(req{method: "POST", path: "/v1/companias", body: crearBody("ACME", "1"), header: bearer(tok)}), http.StatusCreated)
	found := false
	for _, rec := range e.logs.Records(t, "level", "DEBUG") {
		if rec["msg"] == "http request" && rec["subject"] == "alice@propalpes" {
			found = true
		}
	}
	if !found {
		t.Error("no access-log line names the token's subject")
	}
}

// TestOpenAPISecurityMatchesRoutes checks that the document requires
// exactly the scope each route enforces, and nothing on the open routes.
func TestOpenAPISecurityMatchesRoutes(t *testing.T) {
	t.Parallel()
	s := spec(t)
	want := map[string]string{}
	for _, g := range guarded {
		p := strings.ReplaceAll(g.path, "%s", "{id}")
		want[strings.ToLower(g.method)+" "+p] = g.scope
	}
	paths, _ := s.doc["paths"].(map[string]any)
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for m, op := range ops {
			o, _ := op.(map[string]any)
			key := m + " " + p
			sec, _ := o["security"].([]any)
			responses, _ := o["responses"].(map[string]any)
			scope, guardedOp := want[key]
			if !guardedOp {
				if sec != nil || responses["401"] != nil {
					t.Errorf("%s is open but documents security %v", key, sec)
				}
				continue
			}
			if len(sec) != 1 || fmt.Sprint(sec[0]) != fmt.Sprintf("map[bearerAuth:[%s]]", scope) {
				t.Errorf("%s security = %v, want bearerAuth [%s]", key, sec, scope)
			}
			if responses["401"] == nil || responses["403"] == nil {
				t.Errorf("%s does not document 401 and 403", key)
			}
			delete(want, key)
		}
	}
	if len(want) != 0 {
		t.Errorf("guarded operations not in the document: %v", want)
	}
}
