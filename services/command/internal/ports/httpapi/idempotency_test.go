package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// newAuthEnvRepo is newAuthEnv on repo.
func newAuthEnvRepo(t *testing.T, repo *memRepo) *env {
	t.Helper()
	v, err := jwtauth.New(jwtauth.Config{HS256Secret: authSecret, Audience: "companias-command"})
	if err != nil {
		t.Fatal(err)
	}
	return newEnvConfig(t, repo, nil, func(c *httpapi.Deps) { c.Auth = v })
}

// withKey returns the headers of an authenticated request with an
// Idempotency-Key.
func withKey(tok, key string) map[string]string {
	h := bearer(tok)
	h["Idempotency-Key"] = key
	return h
}

// TestIdempotencyKeysPerCaller checks that two callers sending the same
// Idempotency-Key have separate key spaces: the second neither gets the
// first's stored answer nor a 422 because of it, and each replays its own.
func TestIdempotencyKeysPerCaller(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newAuthEnvRepo(t, repo)
	exp := time.Now().Add(time.Hour)
	alice := mint(t, authSecret, "alice", httpapi.AuthScopeWrite, exp)
	bob := mint(t, authSecret, "bob", httpapi.AuthScopeWrite, exp)
	const key = "shared-key"
	post := func(tok, body string) resp {
		return e.do(req{method: "POST", path: "/v1/companias", header: withKey(tok, key), body: body})
	}

	a := post(alice, crearBody("ACME", "1"))
	want(t, a, http.StatusCreated)
	idA := a.str("id")

	// Bob, same key and body: his own command runs, and the company is
	// a duplicate. He is not handed Alice's company.
	r := post(bob, crearBody("ACME", "1"))
	wantProblem(t, r, http.StatusConflict, "compania_duplicada")
	if r.header.Get("Idempotent-Replayed") != "" || strings.Contains(string(r.raw), idA) {
		t.Errorf("bob got alice's stored answer: %s %v", r.raw, r.header)
	}

	// Bob, same key, another body: a new company, not a 422.
	b := post(bob, crearBody("Bravo", "2"))
	want(t, b, http.StatusCreated)
	idB := b.str("id")
	if idB == idA || b.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("bob's create: id %s (alice's %s), Idempotent-Replayed %q", idB, idA, b.header.Get("Idempotent-Replayed"))
	}

	// Each caller's retry replays their own answer.
	for _, tc := range []struct {
		name, tok, body, id string
	}{
		{"alice", alice, crearBody("ACME", "1"), idA},
		{"bob", bob, crearBody("Bravo", "2"), idB},
	} {
		r := post(tc.tok, tc.body)
		want(t, r, http.StatusCreated)
		if r.str("id") != tc.id || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s's retry: id %s, Idempotent-Replayed %q; want %s replayed", tc.name, r.str("id"), r.header.Get("Idempotent-Replayed"), tc.id)
		}
	}
	// A key still guards its caller's own requests.
	wantProblem(t, post(alice, crearBody("Bravo", "2")), http.StatusUnprocessableEntity, "idempotency_key_reused")
	if repo.count() != 2 {
		t.Errorf("%d companies stored, want 2", repo.count())
	}

	// The stored scopes are the route's plus a fixed-size digest per caller.
	scopes := repo.scopes()
	slices.Sort(scopes)
	if len(scopes) != 2 || scopes[0] == scopes[1] {
		t.Fatalf("scopes = %q, want two different ones", scopes)
	}
	for _, s := range scopes {
		digest, ok := strings.CutPrefix(s, httpapi.ScopeCrear+":sub:")
		if !ok || len(digest) != 64 || strings.Contains(s, "alice") || strings.Contains(s, "bob") {
			t.Errorf("scope %q, want %q and 64 hex digits", s, httpapi.ScopeCrear+":sub:")
		}
	}
}

// TestIdempotencyKeyNeedsSubject checks that a token without a sub claim,
// which names no caller, cannot use an Idempotency-Key (else all such
// tokens would share one key space), and works without one.
func TestIdempotencyKeyNeedsSubject(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newAuthEnvRepo(t, repo)
	anon := mint(t, authSecret, "", httpapi.AuthScopeWrite, time.Now().Add(time.Hour))
	for _, rq := range []req{
		{method: "POST", path: "/v1/companias", header: withKey(anon, "k"), body: crearBody("ACME", "1")},
		{method: "POST", path: "/ingestion/compania-comando", header: withKey(anon, "k"),
			body: `{"compania":{"nombre":"ACME","email":"a@b.co","identificacion":"1"}}`},
	} {
		wantProblem(t, e.do(rq), http.StatusBadRequest, "invalid_idempotency_key")
	}
	if repo.count() != 0 {
		t.Errorf("%d companies stored, want none", repo.count())
	}
	want(t, e.do(req{method: "POST", path: "/v1/companias", header: bearer(anon), body: crearBody("ACME", "1")}), http.StatusCreated)
}

// TestIdempotencyAnonymousScope checks that without authentication
// (AUTH_MODE=none) the scope is the route's alone, as before callers had
// key spaces: every anonymous request is the one caller.
func TestIdempotencyAnonymousScope(t *testing.T) {
	t.Parallel()
	repo := newMemRepo()
	e := newEnv(t, repo)
	h := map[string]string{"Idempotency-Key": "anon-1"}
	want(t, e.do(req{method: "POST", path: "/v1/companias", header: h, body: crearBody("ACME", "1")}), http.StatusCreated)
	want(t, e.do(req{method: "POST", path: "/ingestion/compania-comando", header: h,
		body: `{"compania":{"nombre":"Otra","email":"a@b.co","identificacion":"2"}}`}), http.StatusAccepted)
	scopes := repo.scopes()
	slices.Sort(scopes)
	if wantScopes := []string{httpapi.ScopeLegacy, httpapi.ScopeCrear}; !slices.Equal(scopes, wantScopes) {
		t.Errorf("scopes = %q, want %q", scopes, wantScopes)
	}
}
