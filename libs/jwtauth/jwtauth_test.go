package jwtauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/libs/seedwork/apperr"
)

var (
	// secret is a valid HS256 key: 32 random bytes (the fuzz seeds under
	// testdata are signed with it).
	secret = mustHex("be0da3902584cd87680503001310e08433a7c8f49c7177c1712b1282dbbf9089")
	t0     = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// token signs claims with key under hdr ("alg" and "kid" as given). key is
// a []byte (HS256), *rsa.PrivateKey (RS256) or *ecdsa.PrivateKey (ES256);
// nil leaves the signature empty.
func token(t *testing.T, hdr map[string]any, claims map[string]any, key any) string {
	t.Helper()
	signed := segment(t, hdr) + "." + segment(t, claims)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch k := key.(type) {
	case nil:
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(signed))
		sig = m.Sum(nil)
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	default:
		t.Fatalf("unsupported key %T", key)
	}
	return signed + "." + b64(sig)
}

func hsHdr() map[string]any { return map[string]any{"alg": "HS256", "typ": "JWT"} }

// good returns valid claims at t0.
func good() map[string]any {
	return map[string]any{
		"sub": "user-1", "iss": "https://idp.example", "aud": []string{"companias", "other"},
		"exp": t0.Add(time.Hour).Unix(), "nbf": t0.Add(-time.Minute).Unix(), "iat": t0.Add(-time.Minute).Unix(),
		"scope": "companias:write companias:read",
	}
}

func with(c map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func hsVerifier(t *testing.T, mod func(*jwtauth.Config)) *jwtauth.Verifier {
	t.Helper()
	return newVerifier(t, jwtauth.Config{HS256Secret: secret, Issuer: "https://idp.example", Audience: "companias", Now: func() time.Time { return t0 }}, mod)
}

// newVerifier returns the Verifier for cfg after mod, when not nil, has
// changed it; it fails the test when jwtauth.New refuses the Config.
func newVerifier(t *testing.T, cfg jwtauth.Config, mod func(*jwtauth.Config)) *jwtauth.Verifier {
	t.Helper()
	if mod != nil {
		mod(&cfg)
	}
	v, err := jwtauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if !errors.Is(err, jwtauth.ErrInvalidToken) || apperr.KindOf(err) != apperr.Unauthenticated {
		t.Fatalf("err = %v, want an invalid_token error", err)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("err = %q, want it to mention %q", err, msg)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  jwtauth.Config
		want []string
	}{
		{"nothing", jwtauth.Config{}, []string{"HS256 secret or a JWKS URL is required"}},
		{"both", jwtauth.Config{HS256Secret: secret, JWKSURL: "https://x/jwks"}, []string{"not both"}},
		{"short secret", jwtauth.Config{HS256Secret: []byte("short")}, []string{"5 bytes of key material, want at least 32"}},
		{"patterned secret", jwtauth.Config{HS256Secret: []byte("0123456789abcdef0123456789abcdef")}, []string{"repeats a 16-byte pattern"}},
		{"placeholder secret", jwtauth.Config{HS256Secret: []byte("CHANGE-ME-32-OR-MORE-RANDOM-BYTES")}, []string{"placeholder"}},
		{"bad url", jwtauth.Config{JWKSURL: "ftp://x", Algorithms: []string{"HS256"}}, []string{"not an absolute https URL", `"HS256" is not usable`}},
		{"http beyond loopback", jwtauth.Config{JWKSURL: "http://idp.example/jwks"}, []string{`"http://idp.example/jwks" is not an absolute https URL (http is allowed only to a loopback host)`}},
		{"rs with secret", jwtauth.Config{HS256Secret: secret, Algorithms: []string{"RS256"}}, []string{`"RS256" is not usable`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := jwtauth.New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted an invalid Config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHS256(t *testing.T) {
	t.Parallel()
	v := hsVerifier(t, nil)
	ctx := context.Background()

	c, err := v.Verify(ctx, token(t, hsHdr(), good(), secret))
	if err != nil {
		t.Fatalf("Verify(good) = %v", err)
	}
	if c.Subject != "user-1" || c.Issuer != "https://idp.example" || !c.HasScope("companias:write") || !c.HasScope("companias:read") ||
		c.HasScope("companias") || len(c.Audience) != 2 || !c.ExpiresAt.Equal(t0.Add(time.Hour)) || !c.IssuedAt.Equal(t0.Add(-time.Minute)) {
		t.Errorf("claims = %+v", c)
	}

	tests := []struct {
		name  string
		token string
		msg   string
	}{
		{"expired", token(t, hsHdr(), with(good(), "exp", t0.Add(-31*time.Second).Unix()), secret), "expired"},
		{"missing exp", token(t, hsHdr(), with(good(), "exp", nil), secret), "no exp"},
		{"exp not a number", token(t, hsHdr(), with(good(), "exp", "tomorrow"), secret), "malformed"},
		{"not valid yet", token(t, hsHdr(), with(good(), "nbf", t0.Add(time.Minute).Unix()), secret), "not valid yet"},
		{"issued in the future", token(t, hsHdr(), with(good(), "iat", t0.Add(time.Minute).Unix()), secret), "future"},
		{"bad signature", token(t, hsHdr(), good(), []byte("another secret, also 32 bytes long!!")), "signature"},
		{"tampered claims", tamper(t, token(t, hsHdr(), good(), secret)), "signature"},
		{"alg none", token(t, map[string]any{"alg": "none"}, good(), nil), "unsigned"},
		{"alg None", token(t, map[string]any{"alg": "None"}, good(), nil), "unsigned"},
		{"no alg", token(t, map[string]any{"typ": "JWT"}, good(), secret), "unsigned"},
		{"alg HS512", token(t, map[string]any{"alg": "HS512"}, good(), secret), `"HS512" is not accepted`},
		{"alg RS256 with a secret", token(t, map[string]any{"alg": "RS256", "kid": "k"}, good(), secret), `"RS256" is not accepted`},
		{"crit", token(t, map[string]any{"alg": "HS256", "crit": []string{"exp"}}, good(), secret), "critical"},
		{"typ", token(t, map[string]any{"alg": "HS256", "typ": "JWE"}, good(), secret), "type"},
		{"wrong audience", token(t, hsHdr(), with(good(), "aud", "someone-else"), secret), "audience"},
		{"no audience", token(t, hsHdr(), with(good(), "aud", nil), secret), "audience"},
		{"bad audience", token(t, hsHdr(), with(good(), "aud", 7), secret), "aud claim is malformed"},
		{"wrong issuer", token(t, hsHdr(), with(good(), "iss", "https://evil.example"), secret), "issuer"},
		{"bad scope", token(t, hsHdr(), with(good(), "scope", 3), secret), "scope claim"},
		{"two parts", "a.b", "three"},
		{"padding", token(t, hsHdr(), good(), secret) + "=", "base64url"},
		{"header not json", b64([]byte("nope")) + ".e30." + b64([]byte("x")), "header"},
		{"too large", strings.Repeat("a", jwtauth.MaxTokenLen+1), "too large"},
		{"long alg is clipped", token(t, map[string]any{"alg": strings.Repeat("X", 500)}, good(), secret), `"` + strings.Repeat("X", 64) + `…" is not accepted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(ctx, tt.token)
			wantInvalid(t, err, tt.msg)
		})
	}
	if _, err := v.Verify(ctx, ""); !errors.Is(err, jwtauth.ErrNoToken) {
		t.Errorf("Verify(\"\") = %v, want ErrNoToken", err)
	}
}

// tamper changes the claims of a signed token, keeping its signature.
func tamper(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	parts[1] = segment(t, with(good(), "scope", "companias:approve"))
	return strings.Join(parts, ".")
}

func TestHS256Leeway(t *testing.T) {
	t.Parallel()
	v := hsVerifier(t, func(c *jwtauth.Config) { c.Issuer, c.Audience = "", "" })
	ctx := context.Background()
	// Within the default 30s leeway: accepted.
	for _, claims := range []map[string]any{
		{"exp": t0.Add(-29 * time.Second).Unix()},
		{"exp": t0.Add(time.Hour).Unix(), "nbf": t0.Add(29 * time.Second).Unix(), "iat": float64(t0.Add(29*time.Second).UnixMilli()) / 1000},
	} {
		if _, err := v.Verify(ctx, token(t, hsHdr(), claims, secret)); err != nil {
			t.Errorf("Verify(%v) = %v, want accepted within the leeway", claims, err)
		}
	}
	strict := hsVerifier(t, func(c *jwtauth.Config) { c.Leeway = -1 })
	_, err := strict.Verify(ctx, token(t, hsHdr(), with(good(), "exp", t0.Unix()), secret))
	wantInvalid(t, err, "expired")
}

func TestScopes(t *testing.T) {
	t.Parallel()
	v := hsVerifier(t, func(c *jwtauth.Config) { c.Issuer, c.Audience = "", "" })
	base := map[string]any{"exp": t0.Add(time.Hour).Unix()}
	for _, tt := range []struct {
		claims map[string]any
		want   []string
	}{
		{with(base, "scope", "a  b"), []string{"a", "b"}},
		{with(base, "scp", []string{"c", "d"}), []string{"c", "d"}},
		{with(base, "scp", "e f"), []string{"e", "f"}},
		{with(with(base, "scope", "a"), "scp", []string{"c"}), []string{"a", "c"}},
		{base, nil},
	} {
		c, err := v.Verify(context.Background(), token(t, hsHdr(), tt.claims, secret))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(c.Scopes, ",") != strings.Join(tt.want, ",") {
			t.Errorf("scopes of %v = %v, want %v", tt.claims, c.Scopes, tt.want)
		}
	}
	c := jwtauth.Claims{Scopes: []string{"companias:read"}}
	if err := jwtauth.RequireScope(c, "companias:read"); err != nil {
		t.Errorf("RequireScope(held) = %v", err)
	}
	err := jwtauth.RequireScope(c, "companias:write")
	if !errors.Is(err, jwtauth.ErrInsufficientScope) || apperr.KindOf(err) != apperr.Forbidden || !strings.Contains(err.Error(), "companias:write") {
		t.Errorf("RequireScope(missing) = %v", err)
	}
}

func TestFromHeaderAndChallenge(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Bearer abc.def.ghi": "abc.def.ghi", "bearer  x ": "x"} {
		if got, err := jwtauth.FromHeader(in); err != nil || got != want {
			t.Errorf("FromHeader(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "Basic dXNlcjpwYXNz", "Bearertoken"} {
		if _, err := jwtauth.FromHeader(in); !errors.Is(err, jwtauth.ErrNoToken) {
			t.Errorf("FromHeader(%q) = %v, want ErrNoToken", in, err)
		}
	}
	for _, in := range []string{"Bearer", "Bearer ", "Bearer a b"} {
		if _, err := jwtauth.FromHeader(in); !errors.Is(err, jwtauth.ErrInvalidToken) {
			t.Errorf("FromHeader(%q) = %v, want ErrInvalidToken", in, err)
		}
	}
	for _, err := range []error{jwtauth.ErrNoToken, jwtauth.ErrInvalidToken, jwtauth.ErrInsufficientScope} {
		if !jwtauth.NeedsChallenge(err) {
			t.Errorf("NeedsChallenge(%v) = false", err)
		}
	}
	if got := jwtauth.Challenge("companias", jwtauth.ErrNoToken, "x"); got != `Bearer realm="companias"` {
		t.Errorf("Challenge(no token) = %s", got)
	}
	_, err := hsVerifier(t, nil).Verify(context.Background(), token(t, hsHdr(), with(good(), "exp", 1), secret))
	if got := jwtauth.Challenge("companias", err, ""); got != `Bearer realm="companias", error="invalid_token", error_description="the token has expired"` {
		t.Errorf("Challenge(expired) = %s", got)
	}
	err = jwtauth.RequireScope(jwtauth.Claims{}, "companias:write")
	if got := jwtauth.Challenge("c\"x", err, "companias:write"); got != `Bearer realm="c?x", error="insufficient_scope", error_description="the bearer token lacks the companias:write scope", scope="companias:write"` {
		t.Errorf("Challenge(scope) = %s", got)
	}
}

// ----- JWKS -----

// jwksServer serves a JWKS document that a test can replace, counting fetches.
type jwksServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	doc     []byte
	status  int
	fetches atomic.Int64
	block   chan struct{} // if set, requests wait for it
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		doc, status, block := s.doc, s.status, s.block
		s.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(t *testing.T, keys ...map[string]any) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.doc = b
	s.mu.Unlock()
}

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]any {
	b, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:])}
}

// Keys are generated once per test binary: RSA generation is slow under -race.
var (
	keysOnce sync.Once
	rsaKey1  *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey1, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func jwksVerifier(t *testing.T, url string, clk *clock, mod func(*jwtauth.Config)) *jwtauth.Verifier {
	t.Helper()
	return newVerifier(t, jwtauth.Config{JWKSURL: url, Audience: "companias", Now: clk.Now,
		MinRefreshInterval: time.Minute, RefreshInterval: time.Hour}, mod)
}

func TestJWKSRS256AndES256(t *testing.T) {
	t.Parallel()
	testKeys(t)
	s := newJWKSServer(t)
	s.set(t, rsaJWK("rsa-1", rsaKey1), ecJWK("ec-1", ecKey), map[string]any{"kty": "oct", "kid": "sym", "k": b64(secret)})
	clk := &clock{now: t0}
	v := jwksVerifier(t, s.srv.URL, clk, nil)
	ctx := context.Background()

	for _, tt := range []struct {
		hdr map[string]any
		key any
	}{
		{map[string]any{"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}, rsaKey1},
		{map[string]any{"alg": "ES256", "kid": "ec-1"}, ecKey},
	} {
		c, err := v.Verify(ctx, token(t, tt.hdr, good(), tt.key))
		if err != nil || c.Subject != "user-1" {
			t.Fatalf("Verify(%v) = %+v, %v", tt.hdr, c, err)
		}
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (keys cached)", n)
	}

	// Algorithm confusion: an HS256 token whose "secret" is the RSA public
	// key in any encoding must never verify.
	der, err := x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{der, rsaKey1.N.Bytes(), []byte(b64(rsaKey1.N.Bytes()))} {
		_, err := v.Verify(ctx, token(t, map[string]any{"alg": "HS256", "kid": "rsa-1"}, good(), k))
		wantInvalid(t, err, `"HS256" is not accepted`)
	}
	for name, tc := range map[string]struct {
		tok, msg string
	}{
		"ES256 header on an RSA key":   {token(t, map[string]any{"alg": "ES256", "kid": "rsa-1"}, good(), ecKey), "is for RS256"},
		"RS256 header on an EC key":    {token(t, map[string]any{"alg": "RS256", "kid": "ec-1"}, good(), rsaKey1), "not an RSA key"},
		"oct key is never loaded":      {token(t, map[string]any{"alg": "RS256", "kid": "sym"}, good(), rsaKey1), "unknown"},
		"no kid":                       {token(t, map[string]any{"alg": "RS256"}, good(), rsaKey1), "no kid"},
		"RS256 signed by another key":  {token(t, map[string]any{"alg": "RS256", "kid": "rsa-1"}, good(), rsaKey2), "signature"},
		"ES256 with a short signature": {token(t, map[string]any{"alg": "ES256", "kid": "ec-1"}, good(), nil), "signature"},
		"alg none with a kid":          {token(t, map[string]any{"alg": "none", "kid": "rsa-1"}, good(), nil), "unsigned"},
		"wrong audience":               {token(t, map[string]any{"alg": "ES256", "kid": "ec-1"}, with(good(), "aud", "x"), ecKey), "audience"},
	} {
		_, err := v.Verify(ctx, tc.tok)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.msg)
		}
	}
}

func TestJWKSRotationAndRateLimit(t *testing.T) {
	t.Parallel()
	testKeys(t)
	s := newJWKSServer(t)
	s.set(t, rsaJWK("k1", rsaKey1))
	clk := &clock{now: t0}
	v := jwksVerifier(t, s.srv.URL, clk, nil)
	ctx := context.Background()
	claims := good()
	claims["exp"] = t0.Add(24 * time.Hour).Unix()

	if _, err := v.Verify(ctx, token(t, map[string]any{"alg": "RS256", "kid": "k1"}, claims, rsaKey1)); err != nil {
		t.Fatal(err)
	}
	// Rotation: the IdP publishes k2 and signs with it. The first token
	// naming k2 comes more than MinRefreshInterval after the last fetch,
	// so the set is fetched again and the token verifies.
	s.set(t, rsaJWK("k1", rsaKey1), rsaJWK("k2", rsaKey2))
	clk.advance(time.Minute)
	if _, err := v.Verify(ctx, token(t, map[string]any{"alg": "RS256", "kid": "k2"}, claims, rsaKey2)); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// Unknown kids within MinRefreshInterval do not reach the key server.
	for range 20 {
		_, err := v.Verify(ctx, token(t, map[string]any{"alg": "RS256", "kid": "forged"}, claims, rsaKey2))
		wantInvalid(t, err, "unknown")
	}
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d after unknown kids, want 2 (rate limited)", n)
	}
	// Once the interval passed, one more fetch is allowed.
	clk.advance(time.Minute)
	_, err := v.Verify(ctx, token(t, map[string]any{"alg": "RS256", "kid": "forged"}, claims, rsaKey2))
	wantInvalid(t, err, "unknown")
	if n := s.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
	// Periodic refresh: after RefreshInterval a removed key stops working.
	s.set(t, rsaJWK("k2", rsaKey2))
	clk.advance(time.Hour)
	_, err = v.Verify(ctx, token(t, map[string]any{"alg": "RS256", "kid": "k1"}, claims, rsaKey1))
	wantInvalid(t, err, "unknown")
	if n := s.fetches.Load(); n != 4 {
		t.Fatalf("fetches = %d, want 4 (periodic refresh)", n)
	}
	// A failed refresh keeps the keys already known.
	s.mu.Lock()
	s.status = http.StatusInternalServerError
	s.mu.Unlock()
	clk.advance(2 * time.Hour)
	if _, err := v.Verify(ctx, token(t, map[string]any{"alg": "RS256", "kid": "k2"}, claims, rsaKey2)); err != nil {
		t.Fatalf("stale key after a failed refresh: %v", err)
	}
	if n := s.fetches.Load(); n != 5 {
		t.Fatalf("fetches = %d, want 5", n)
	}
}

func TestJWKSFetchFailures(t *testing.T) {
	t.Parallel()
	testKeys(t)
	tok := token(t, map[string]any{"alg": "RS256", "kid": "k1"}, good(), rsaKey1)
	for name, setup := range map[string]func(s *jwksServer){
		"status":   func(s *jwksServer) { s.status = http.StatusNotFound },
		"not json": func(s *jwksServer) { s.doc = []byte("<html>") },
		"no usable": func(s *jwksServer) {
			s.doc = []byte(`{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"},{"kty":"EC","kid":"k2","crv":"P-384","x":"","y":""}]}`)
		},
		"enc key only": func(s *jwksServer) {
			s.doc = mustJSON(map[string]any{"keys": []any{with(rsaJWK("k1", rsaKey1), "use", "enc")}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newJWKSServer(t)
			setup(s)
			v := jwksVerifier(t, s.srv.URL, &clock{now: t0}, nil)
			_, err := v.Verify(context.Background(), tok)
			wantUnavailable(t, err)
		})
	}
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		s := newJWKSServer(t)
		s.set(t, rsaJWK("k1", rsaKey1))
		s.block = make(chan struct{})
		defer close(s.block)
		v := jwksVerifier(t, s.srv.URL, &clock{now: t0}, func(c *jwtauth.Config) { c.FetchTimeout = 50 * time.Millisecond })
		_, err := v.Verify(context.Background(), tok)
		wantUnavailable(t, err)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the fetch deadline as its cause", err)
		}
	})
	t.Run("invalid EC point", func(t *testing.T) {
		t.Parallel()
		s := newJWKSServer(t)
		k := ecJWK("e", ecKey)
		k["y"] = b64(make([]byte, 32)) // (x, 0) is not on P-256
		s.set(t, k)
		v := jwksVerifier(t, s.srv.URL, &clock{now: t0}, nil)
		_, err := v.Verify(context.Background(), token(t, map[string]any{"alg": "ES256", "kid": "e"}, good(), ecKey))
		wantUnavailable(t, err)
	})
}

func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	if e, ok := apperr.As(err); !ok || e.Kind != apperr.Unavailable || e.Code != jwtauth.CodeKeysUnavailable {
		t.Fatalf("err = %v, want an Unavailable %s error", err, jwtauth.CodeKeysUnavailable)
	}
	if jwtauth.NeedsChallenge(err) {
		t.Errorf("NeedsChallenge(%v) = true", err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestJWKSConcurrentUnknownKid checks that concurrent requests naming a new
// kid share one fetch.
func TestJWKSConcurrentUnknownKid(t *testing.T) {
	t.Parallel()
	testKeys(t)
	s := newJWKSServer(t)
	s.set(t, ecJWK("ec", ecKey))
	v := jwksVerifier(t, s.srv.URL, &clock{now: t0}, nil)
	tok := token(t, map[string]any{"alg": "ES256", "kid": "ec"}, good(), ecKey)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}
