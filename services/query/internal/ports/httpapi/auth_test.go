package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
)

// authSecret signs and verifies the test tokens.
var authSecret = httpkittest.HS256Key()

// mint returns an HS256 token for sub with scope (space-separated, sent
// in the scp claim as an array when asArray), expiring at exp.
func mint(t *testing.T, secret []byte, sub, scope string, exp time.Time, asArray bool) string {
	t.Helper()
	claims := map[string]any{"sub": sub, "exp": exp.Unix(), "iss": "https://idp.test", "aud": []string{"companias-query"}}
	if asArray {
		claims["scp"] = strings.Fields(scope)
	} else {
		claims["scope"] = scope
	}
	return httpkittest.MintHS256(t, secret, claims)
}

// withAuth turns on HS256 authentication (issuer https://idp.test,
// audience companias-query).
func withAuth(t *testing.T) envOption {
	t.Helper()
	v, err := jwtauth.New(jwtauth.Config{HS256Secret: authSecret, Issuer: "https://idp.test", Audience: "companias-query"})
	if err != nil {
		t.Fatal(err)
	}
	return func(d *httpapi.Deps, _ *httpapi.Options) {
		d.Auth = v
	}
}

func TestAuthGuardsReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(compania("c-1", "Acme", t0, 1)), withAuth(t))
	now := time.Now()
	reader := mint(t, authSecret, "reader", "openid "+httpapi.AuthScopeRead, now.Add(time.Hour), false)
	readerScp := mint(t, authSecret, "reader", httpapi.AuthScopeRead, now.Add(time.Hour), true)
	admin := mint(t, authSecret, "ops", httpapi.AuthScopeAdmin, now.Add(time.Hour), false)
	tokens := map[string]string{httpapi.AuthScopeRead: reader, httpapi.AuthScopeAdmin: admin}
	other := map[string]string{httpapi.AuthScopeRead: admin, httpapi.AuthScopeAdmin: reader}

	for _, g := range []struct {
		method, path, scope string
		ok                  int
	}{
		{http.MethodGet, "/v1/companias", httpapi.AuthScopeRead, http.StatusOK},
		{http.MethodGet, "/v1/companias/c-1", httpapi.AuthScopeRead, http.StatusOK},
		{http.MethodGet, "/v1/estadisticas", httpapi.AuthScopeRead, http.StatusOK},
		{http.MethodGet, "/v1/proyecciones", httpapi.AuthScopeRead, http.StatusOK},
		{http.MethodGet, "/ingestion/compania-query", httpapi.AuthScopeRead, http.StatusOK},
		{http.MethodGet, "/ingestion/compania-query/c-1", httpapi.AuthScopeRead, http.StatusOK},
		{http.MethodGet, "/v1/admin/rebuild", httpapi.AuthScopeAdmin, http.StatusOK},
		{http.MethodPost, "/v1/admin/rebuild", httpapi.AuthScopeAdmin, http.StatusAccepted},
	} {
		t.Run(g.method+" "+g.path, func(t *testing.T) {
			rec := e.do(t, g.method, g.path)
			if p := wantProblem(t, rec, http.StatusUnauthorized); p.Code != "unauthenticated" {
				t.Errorf("no token: code %q", p.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="companias"` {
				t.Errorf("no token: WWW-Authenticate = %q", got)
			}
			for name, tok := range map[string]string{
				"garbage":      "x.y.z",
				"expired":      mint(t, authSecret, "r", g.scope, now.Add(-time.Hour), false),
				"other secret": mint(t, []byte("some-other-secret-of-at-least-32-bytes"), "r", g.scope, now.Add(time.Hour), false),
			} {
				rec := e.do(t, g.method, g.path, "Authorization", "Bearer "+tok)
				if p := wantProblem(t, rec, http.StatusUnauthorized); p.Code != "invalid_token" {
					t.Errorf("%s: code %q", name, p.Code)
				}
				if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="companias", error="invalid_token"`) {
					t.Errorf("%s: WWW-Authenticate = %q", name, got)
				}
			}
			rec = e.do(t, g.method, g.path, "Authorization", "Bearer "+other[g.scope])
			if p := wantProblem(t, rec, http.StatusForbidden); p.Code != "insufficient_scope" {
				t.Errorf("wrong scope: code %q", p.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, `scope="`+g.scope+`"`) {
				t.Errorf("wrong scope: WWW-Authenticate = %q", got)
			}
			if rec := e.do(t, g.method, g.path, "Authorization", "Bearer "+tokens[g.scope]); rec.Code != g.ok {
				t.Errorf("right scope: status %d, want %d; body %s", rec.Code, g.ok, rec.Body)
			}
		})
	}
	// Scopes may come as an scp array.
	if rec := e.do(t, http.MethodGet, "/v1/companias/c-1", "Authorization", "Bearer "+readerScp); rec.Code != http.StatusOK {
		t.Errorf("scp token: status %d", rec.Code)
	}
}

func TestAuthOpenRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(), withAuth(t))
	for _, path := range []string{"/healthz", "/readyz", "/health", "/openapi.json"} {
		if rec := e.do(t, http.MethodGet, path); rec.Code != http.StatusOK {
			t.Errorf("GET %s without a token = %d, want 200", path, rec.Code)
		}
	}
	// Unknown routes stay 404.
	wantProblem(t, e.do(t, http.MethodGet, "/v2/nothing"), http.StatusNotFound)
}

func TestAuthLogsSubject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(), withAuth(t))
	tok := mint(t, authSecret, "bob@propalpes", httpapi.AuthScopeRead, time.Now().Add(time.Hour), false)
	if rec := e.do(t, http.MethodGet, "/v1/estadisticas", "Authorization", "Bearer "+tok); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	found := false
	for _, r := range e.logs.Records(t, "msg", "http request") {
		if r["subject"] == "bob@propalpes" {
			found = true
		}
	}
	if !found {
		t.Errorf("no access-log line names the subject: %s", e.logs.String())
	}
}

// TestAuthOffIsOpen checks that without an Authenticator the reads need no token.
func TestAuthOffIsOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(), func(d *httpapi.Deps, _ *httpapi.Options) {
		d.Logger = slog.New(slog.DiscardHandler)
	})
	if rec := e.do(t, http.MethodGet, "/v1/companias"); rec.Code != http.StatusOK {
		t.Errorf("status %d, want 200 without auth", rec.Code)
	}
}

// TestOpenAPISecurityMatchesRoutes checks that the document requires the
// scope each route enforces, with 401 and 403, and nothing on open routes.
func TestOpenAPISecurityMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(), withAuth(t))
	doc := decodeJSON[struct {
		Paths map[string]map[string]struct {
			Security  []map[string][]string      `json:"security"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}](t, e.do(t, http.MethodGet, "/openapi.json"), http.StatusOK)
	anyToken := mint(t, authSecret, "x", "unrelated", time.Now().Add(time.Hour), false)
	for path, ops := range doc.Paths {
		for method, op := range ops {
			target := strings.ReplaceAll(path, "{id}", "c-1")
			rec := e.do(t, strings.ToUpper(method), target, "Authorization", "Bearer "+anyToken)
			if len(op.Security) == 0 {
				if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden || op.Responses["401"] != nil {
					t.Errorf("%s %s is documented as open but answered %d", method, path, rec.Code)
				}
				continue
			}
			scopes := op.Security[0]["bearerAuth"]
			if len(op.Security) != 1 || len(scopes) != 1 || op.Responses["401"] == nil || op.Responses["403"] == nil {
				t.Errorf("%s %s: security %v, want one bearerAuth scope with 401 and 403", method, path, op.Security)
				continue
			}
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `scope="`+scopes[0]+`"`) {
				t.Errorf("%s %s: answered %d %q, want 403 asking for %s", method, path, rec.Code, rec.Header().Get("WWW-Authenticate"), scopes[0])
			}
		}
	}
}
