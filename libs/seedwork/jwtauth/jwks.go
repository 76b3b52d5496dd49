package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// maxJWKSBytes bounds the JWKS document read from the key server.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
const minRSABits = 2048

// publicKey is one usable key of the set.
type publicKey struct {
	alg string // the JWK's alg member, if any: the only alg it may verify
	pub crypto.PublicKey
}

// keySet caches the JWKS keys by kid. Fetches are serialized and rate
// limited; a failed fetch keeps the keys already known.
type keySet struct {
	url      string
	client   *http.Client
	timeout  time.Duration
	maxAge   time.Duration
	minGap   time.Duration
	now      func() time.Time
	fetchMu  sync.Mutex // held during a fetch
	mu       sync.Mutex // guards the fields below
	keys     map[string]publicKey
	fetched  time.Time // last successful fetch
	attempts time.Time // last fetch attempt
}

func newKeySet(cfg Config) *keySet {
	return &keySet{
		url: cfg.JWKSURL, client: cfg.HTTPClient, timeout: cfg.FetchTimeout,
		maxAge: cfg.RefreshInterval, minGap: cfg.MinRefreshInterval, now: cfg.Now,
	}
}

// lookup returns the cached key and whether a fetch is due: the set is
// older than maxAge (or was never fetched), or kid is unknown, and the last
// attempt is at least minGap ago.
func (s *keySet) lookup(kid string) (publicKey, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[kid]
	now := s.now()
	stale := s.fetched.IsZero() || now.Sub(s.fetched) >= s.maxAge
	due := (stale || !ok) && (s.attempts.IsZero() || now.Sub(s.attempts) >= s.minGap)
	return k, ok, due
}

// key returns the key named kid, fetching the set when it is unknown or
// stale (at most once per minGap). A stale key is still used when the
// refresh fails.
func (s *keySet) key(ctx context.Context, kid string) (publicKey, error) {
	k, ok, due := s.lookup(kid)
	if ok && !due {
		return k, nil
	}
	// Wait for a fetch in progress: it may bring kid. Then fetch unless
	// another caller did so while this one waited.
	s.fetchMu.Lock()
	if k, ok, due = s.lookup(kid); due {
		err := s.refresh(ctx)
		k, ok, _ = s.lookup(kid)
		if err != nil && !ok {
			s.fetchMu.Unlock()
			// The token may well be valid: say so with a retryable 503
			// rather than a 401 that would make the client drop it.
			return publicKey{}, &apperr.Error{Kind: apperr.Unavailable, Code: CodeKeysUnavailable,
				Message: "the token signing keys cannot be fetched; retry later", Err: err}
		}
	}
	s.fetchMu.Unlock()
	if !ok {
		return publicKey{}, invalid(fmt.Sprintf("the token key %q is unknown", clip(kid)), nil)
	}
	return k, nil
}

// refresh fetches the set and replaces the cache on success.
func (s *keySet) refresh(ctx context.Context) error {
	s.mu.Lock()
	s.attempts = s.now()
	s.mu.Unlock()
	keys, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys, s.fetched = keys, s.now()
	s.mu.Unlock()
	return nil
}

// jwk is one key of a JWKS document (RFC 7517, RFC 7518 §6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// fetch downloads and parses the JWKS. Keys that are not usable signature
// keys of a supported type (other kty, use "enc", no kid, bad values) are
// skipped; a document without any usable key is an error.
func (s *keySet) fetch(ctx context.Context) (map[string]publicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("read jwks: document larger than 1 MiB")
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := map[string]publicKey{}
	for _, k := range doc.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pub, err := parseJWK(k)
		if err != nil {
			continue
		}
		keys[k.Kid] = publicKey{alg: k.Alg, pub: pub}
	}
	if len(keys) == 0 {
		return nil, errors.New("decode jwks: no usable RS256 or ES256 key")
	}
	return keys, nil
}

// parseJWK builds the public key of an RSA (RS256) or P-256 (ES256) JWK.
func parseJWK(k jwk) (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != RS256 {
			return nil, fmt.Errorf("unsupported alg %q", k.Alg)
		}
		n, err := b64Int(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64Int(k.E)
		if err != nil {
			return nil, err
		}
		if n.BitLen() < minRSABits || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("weak or malformed RSA key")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		if k.Crv != "P-256" || (k.Alg != "" && k.Alg != ES256) {
			return nil, fmt.Errorf("unsupported curve %q / alg %q", k.Crv, k.Alg)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != 32 {
			return nil, errors.New("malformed x")
		}
		y, err := base64.RawURLEncoding.DecodeString(k.Y)
		if err != nil || len(y) != 32 {
			return nil, errors.New("malformed y")
		}
		point := append(append([]byte{4}, x...), y...)
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	default:
		return nil, fmt.Errorf("unsupported kty %q", k.Kty)
	}
}

func b64Int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("malformed base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}
