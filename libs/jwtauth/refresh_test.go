package jwtauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/jwtauth"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// block makes the key server hold requests until the returned func runs.
func (s *jwksServer) hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.block = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.block = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// TestJWKSRefreshDetachedFromRequest: a forged-kid request that gives up
// after 10 ms gets a retryable 503 while the fetch it started is pending,
// and does not cancel that fetch, so the valid token signed with the newly
// published key that follows is accepted without another fetch.
func TestJWKSRefreshDetachedFromRequest(t *testing.T) {
	t.Parallel()
	testKeys(t)
	s := newJWKSServer(t)
	s.set(t, rsaJWK("k1", rsaKey1))
	clk := &clock{now: t0}
	v := jwksVerifier(t, s.srv.URL, clk, nil)
	claims := with(good(), "exp", t0.Add(24*time.Hour).Unix())
	if _, err := v.Verify(context.Background(), token(t, map[string]any{"alg": "RS256", "kid": "k1"}, claims, rsaKey1)); err != nil {
		t.Fatal(err)
	}

	s.set(t, rsaJWK("k1", rsaKey1), rsaJWK("k2", rsaKey2)) // rotation
	release := s.hold()
	defer release()
	clk.advance(time.Minute) // past MinRefreshInterval

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := v.Verify(ctx, token(t, map[string]any{"alg": "RS256", "kid": "forged"}, claims, rsaKey2))
	wantUnavailable(t, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the request's deadline as its cause", err)
	}
	// The fetch the forged kid started goes on: the key server sees it.
	waitFor(t, "the fetch started by the forged kid", func() bool { return s.fetches.Load() == 2 })

	release()
	if _, err := v.Verify(context.Background(), token(t, map[string]any{"alg": "RS256", "kid": "k2"}, claims, rsaKey2)); err != nil {
		t.Fatalf("new kid after the forged request gave up: %v", err)
	}
	_, err = v.Verify(context.Background(), token(t, map[string]any{"alg": "RS256", "kid": "forged"}, claims, rsaKey2))
	wantInvalid(t, err, "unknown")
	if n := s.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

// TestJWKSConcurrentUnknownKids: at cold start, many requests naming new
// kids (valid and forged) while the key server is slow cause one fetch;
// the valid ones are accepted once it completes, the forged ones get 401.
func TestJWKSConcurrentUnknownKids(t *testing.T) {
	t.Parallel()
	testKeys(t)
	s := newJWKSServer(t)
	s.set(t, ecJWK("ec", ecKey))
	release := s.hold()
	defer release()
	v := jwksVerifier(t, s.srv.URL, &clock{now: t0}, nil)
	valid := token(t, map[string]any{"alg": "ES256", "kid": "ec"}, good(), ecKey)
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		tok := valid
		if i%2 == 1 {
			tok = token(t, map[string]any{"alg": "ES256", "kid": fmt.Sprint("forged-", i)}, good(), ecKey)
		}
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tok) })
	}
	waitFor(t, "the first fetch", func() bool { return s.fetches.Load() == 1 })
	release()
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("valid token %d: %v", i, err)
		}
		if i%2 == 1 {
			wantInvalid(t, err, "unknown")
		}
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

// TestJWKSRedirects: the key server may redirect within its host, never
// to another one (whose keys would then sign our tokens).
func TestJWKSRedirects(t *testing.T) {
	t.Parallel()
	testKeys(t)
	keys := newJWKSServer(t)
	keys.set(t, ecJWK("ec", ecKey))
	tok := token(t, map[string]any{"alg": "ES256", "kid": "ec"}, good(), ecKey)

	other := httptest.NewServer(http.RedirectHandler(keys.srv.URL+"/jwks", http.StatusFound))
	t.Cleanup(other.Close)
	v := jwksVerifier(t, other.URL, &clock{now: t0}, nil)
	_, err := v.Verify(context.Background(), tok)
	wantUnavailable(t, err)
	if !strings.Contains(err.Error(), "redirect to another host") {
		t.Errorf("err = %v, want the cross-host redirect named", err)
	}
	if n := keys.fetches.Load(); n != 0 {
		t.Errorf("the other host was fetched %d times", n)
	}

	mux := http.NewServeMux()
	mux.Handle("/old", http.RedirectHandler("/jwks", http.StatusMovedPermanently))
	mux.Handle("/jwks", keys.srv.Config.Handler)
	same := httptest.NewServer(mux)
	t.Cleanup(same.Close)
	v = jwksVerifier(t, same.URL+"/old", &clock{now: t0}, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("same-host redirect: %v", err)
	}
}

// TestJWKSURLMustBeHTTPS: New refuses an http JWKS URL beyond loopback.
func TestJWKSURLMustBeHTTPS(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"https://idp.example/jwks": true, "http://127.0.0.1:8081/jwks": true, "http://localhost/jwks": true,
		"http://idp.example/jwks": false, "http://192.168.1.10/jwks": false,
	} {
		_, err := jwtauth.New(jwtauth.Config{JWKSURL: url})
		if (err == nil) != ok {
			t.Errorf("New(JWKSURL %q) = %v, want ok=%v", url, err, ok)
		}
	}
}
