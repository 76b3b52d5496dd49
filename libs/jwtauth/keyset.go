package jwtauth

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// keySet caches the JWKS keys by kid and decides when to fetch them again.
//
// A fetch runs in its own goroutine with its own context (bounded by the
// fetch timeout), never the context of the request that caused it, so a
// client that disconnects cannot cancel it. At most one fetch runs at a
// time, and one starts at most once per minGap: when the set is older than
// maxAge, or when a token names an unknown kid. Requests that need the
// fetch in progress wait for it (or for their own context, then 503). A
// failed fetch keeps the keys already known.
type keySet struct {
	url     string
	client  *http.Client
	timeout time.Duration
	maxAge  time.Duration
	minGap  time.Duration
	now     func() time.Time

	mu        sync.Mutex // guards the fields below
	keys      map[string]publicKey
	fetched   time.Time     // end of the last successful fetch
	attempted time.Time     // start of the last fetch
	lastErr   error         // error of the last fetch, nil if it succeeded
	pending   chan struct{} // non-nil while a fetch runs; closed when it ends
}

func newKeySet(cfg Config) *keySet {
	return &keySet{
		url: cfg.JWKSURL, client: jwksClient(cfg.HTTPClient), timeout: cfg.FetchTimeout,
		maxAge: cfg.RefreshInterval, minGap: cfg.MinRefreshInterval, now: cfg.Now,
	}
}

// key returns the key named kid. A fresh cached key is returned at once.
// Otherwise (kid unknown, or the set older than maxAge) a fetch is started
// unless one ran less than minGap ago, and the fetch in progress, if any,
// is awaited. Errors: unknown kid after a successful fetch, invalid_token
// (401); kid still unknown because the last fetch failed, or ctx ended
// while waiting, CodeKeysUnavailable (503: the token may well be valid).
func (s *keySet) key(ctx context.Context, kid string) (publicKey, error) {
	s.mu.Lock()
	k, ok := s.keys[kid]
	if ok && !s.fetched.IsZero() && s.now().Sub(s.fetched) < s.maxAge {
		s.mu.Unlock()
		return k, nil
	}
	done := s.startFetchLocked()
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return publicKey{}, unavailable("the token signing keys are being fetched; retry later", ctx.Err())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if s.lastErr != nil {
		return publicKey{}, unavailable("the token signing keys cannot be fetched; retry later", s.lastErr)
	}
	return publicKey{}, invalid(fmt.Sprintf("the token key %q is unknown", clip(kid)), nil)
}

// startFetchLocked returns the channel closed at the end of the fetch in
// progress, first starting one if none runs and the last started at least
// minGap ago; nil when no fetch runs. s.mu must be held.
func (s *keySet) startFetchLocked() <-chan struct{} {
	if s.pending != nil {
		return s.pending
	}
	now := s.now()
	if !s.attempted.IsZero() && now.Sub(s.attempted) < s.minGap {
		return nil
	}
	s.attempted = now
	done := make(chan struct{})
	s.pending = done
	go func() {
		defer close(done)
		keys, err := s.fetch(context.Background())
		s.mu.Lock()
		defer s.mu.Unlock()
		if err == nil {
			s.keys, s.fetched = keys, s.now()
		}
		s.lastErr, s.pending = err, nil
	}()
	return done
}

// unavailable returns a retryable CodeKeysUnavailable error.
func unavailable(msg string, cause error) error {
	return &apperr.Error{Kind: apperr.Unavailable, Code: CodeKeysUnavailable, Message: msg, Err: cause}
}
