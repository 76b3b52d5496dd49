// Package jwtauth verifies bearer JSON Web Tokens (RFC 7519) with the
// standard library only.
//
// A Verifier accepts exactly one kind of key, chosen when it is built:
// HS256 with a shared secret, or RS256 and ES256 with the public keys of a
// JWKS document (RFC 7517) fetched over HTTP and cached by key id. The
// token's alg header must be one the Verifier was configured for and must
// match the type of the key it selects, so that an HS256 token can never be
// checked against an RSA public key (algorithm confusion) and "none" is
// always refused.
//
// Verify checks the signature, exp (required), nbf and iat with a small
// leeway, and the issuer and audience when configured. Its errors are
// *apperr.Error values of kind apperr.Unauthenticated (HTTP 401);
// RequireScope reports a missing scope as apperr.Forbidden (HTTP 403).
// Challenge builds the matching RFC 6750 WWW-Authenticate header.
package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// Supported signature algorithms (RFC 7518 names).
const (
	HS256 = "HS256"
	RS256 = "RS256"
	ES256 = "ES256"
)

// MinSecretLen is the shortest HS256 secret accepted: 32 bytes, the size of
// the SHA-256 output (RFC 7518 §3.2).
const MinSecretLen = 32

// MaxTokenLen bounds the size of a token Verify will parse.
const MaxTokenLen = 8 << 10

// Defaults for the zero fields of Config.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultFetchTimeout       = 5 * time.Second
	DefaultRefreshInterval    = 15 * time.Minute
	DefaultMinRefreshInterval = 30 * time.Second
)

// Error codes of the errors this package returns (the Code of the
// *apperr.Error, and the RFC 6750 error attribute of Challenge).
const (
	// CodeNoToken: the request carries no bearer token.
	CodeNoToken = "unauthenticated"
	// CodeInvalidToken: the token is malformed, badly signed, expired, not
	// yet valid or meant for another issuer or audience.
	CodeInvalidToken = "invalid_token"
	// CodeInsufficientScope: the token is valid but lacks a required scope.
	CodeInsufficientScope = "insufficient_scope"
	// CodeKeysUnavailable: the JWKS could not be fetched and the token's
	// key is not cached (kind apperr.Unavailable, HTTP 503).
	CodeKeysUnavailable = "auth_keys_unavailable"
)

// Sentinel errors, matched with errors.Is (by kind and code: the errors
// Verify returns carry a more precise message and cause).
var (
	// ErrNoToken means the request has no bearer token.
	ErrNoToken = apperr.New(apperr.Unauthenticated, CodeNoToken, "a bearer token is required")
	// ErrInvalidToken means the token was refused.
	ErrInvalidToken = apperr.New(apperr.Unauthenticated, CodeInvalidToken, "the bearer token is invalid")
	// ErrInsufficientScope means the token lacks a required scope.
	ErrInsufficientScope = apperr.New(apperr.Forbidden, CodeInsufficientScope, "the bearer token lacks a required scope")
)

// Config configures a Verifier. Exactly one of HS256Secret and JWKSURL must
// be set.
type Config struct {
	// HS256Secret, if set, verifies HS256 tokens; it must be at least
	// MinSecretLen bytes long.
	HS256Secret []byte
	// JWKSURL, if set, is the http(s) URL of the JWKS document holding the
	// RS256 (kty RSA, at least 2048 bits) and ES256 (kty EC, crv P-256)
	// public keys; tokens must name their key with a kid header.
	JWKSURL string
	// Algorithms restricts the accepted algs. Empty means HS256 with a
	// secret, RS256 and ES256 with a JWKS URL; HS256 is never accepted with
	// a JWKS URL, nor RS256 or ES256 with a secret.
	Algorithms []string
	// Issuer, if set, must equal the iss claim.
	Issuer string
	// Audience, if set, must be one of the aud claim's values.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat
	// (default DefaultLeeway; negative means none).
	Leeway time.Duration
	// HTTPClient fetches the JWKS (default: a client without a global
	// timeout; FetchTimeout bounds each fetch).
	HTTPClient *http.Client
	// FetchTimeout bounds one JWKS fetch (default DefaultFetchTimeout).
	FetchTimeout time.Duration
	// RefreshInterval is the age after which the cached key set is fetched
	// again, on the next Verify (default DefaultRefreshInterval).
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetches: a token
	// naming an unknown kid triggers a fetch only that often, so that
	// forged kids cannot make the service hammer the key server
	// (default DefaultMinRefreshInterval).
	MinRefreshInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Claims are the verified claims of a token.
type Claims struct {
	// Subject is the sub claim.
	Subject string
	// Issuer is the iss claim.
	Issuer string
	// Audience lists the aud claim's values.
	Audience []string
	// ExpiresAt, NotBefore and IssuedAt are exp, nbf and iat (zero when
	// absent; exp is always present in verified claims).
	ExpiresAt, NotBefore, IssuedAt time.Time
	// Scopes are the scope claim's space-separated values, or the values of
	// the scp claim (an array, or a space-separated string).
	Scopes []string
}

// HasScope reports whether scope is one of c.Scopes.
func (c Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Verifier verifies tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	algs   []string
	secret []byte
	jwks   *keySet
}

// New checks cfg and returns a Verifier. It does not fetch the JWKS: the
// first Verify does, so that the service starts while the key server is
// down. The error lists every problem of cfg.
func New(cfg Config) (*Verifier, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	hasSecret, hasJWKS := len(cfg.HS256Secret) > 0, cfg.JWKSURL != ""
	var allowed []string
	switch {
	case hasSecret && hasJWKS:
		bad("jwtauth: set either an HS256 secret or a JWKS URL, not both")
	case hasSecret:
		allowed = []string{HS256}
		if len(cfg.HS256Secret) < MinSecretLen {
			bad("jwtauth: the HS256 secret has %d bytes, want at least %d", len(cfg.HS256Secret), MinSecretLen)
		}
	case hasJWKS:
		allowed = []string{RS256, ES256}
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("jwtauth: the JWKS URL %q is not an absolute http(s) URL", cfg.JWKSURL)
		}
	default:
		bad("jwtauth: an HS256 secret or a JWKS URL is required")
	}
	algs := allowed
	if len(cfg.Algorithms) > 0 {
		algs = nil
		for _, a := range cfg.Algorithms {
			if !slices.Contains(allowed, a) {
				bad("jwtauth: algorithm %q is not usable with this key source (want one of %v)", a, allowed)
				continue
			}
			algs = append(algs, a)
		}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	cfg.Leeway = max(cfg.Leeway, 0)
	setDefault(&cfg.FetchTimeout, DefaultFetchTimeout)
	setDefault(&cfg.RefreshInterval, DefaultRefreshInterval)
	setDefault(&cfg.MinRefreshInterval, DefaultMinRefreshInterval)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, algs: algs}
	if hasSecret {
		v.secret = slices.Clone(cfg.HS256Secret)
	} else {
		v.jwks = newKeySet(cfg)
	}
	return v, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// header is the JOSE header of a token.
type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// invalid returns an invalid_token error with a client-safe message.
func invalid(msg string, cause error) error {
	return &apperr.Error{Kind: apperr.Unauthenticated, Code: CodeInvalidToken, Message: msg, Err: cause}
}

// Verify parses raw (the token without the "Bearer " prefix), checks its
// signature and its claims and returns them. Every refusal is an
// *apperr.Error of kind apperr.Unauthenticated with code CodeInvalidToken
// (errors.Is(err, ErrInvalidToken)); an empty raw is ErrNoToken. When the
// JWKS cannot be fetched and the token's key is not cached, the error has
// kind apperr.Unavailable (code CodeKeysUnavailable). ctx bounds a JWKS
// fetch the call may make.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, ErrNoToken
	}
	if len(raw) > MaxTokenLen {
		return Claims{}, invalid("the token is too large", nil)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return Claims{}, invalid("the token is not a signed JWT (three base64url parts)", nil)
	}
	var h header
	if err := decodeSegment(parts[0], &h); err != nil {
		return Claims{}, invalid("the token header is malformed", err)
	}
	if h.Alg == "" || strings.EqualFold(h.Alg, "none") {
		return Claims{}, invalid("unsigned tokens are not accepted", nil)
	}
	if !slices.Contains(v.algs, h.Alg) {
		return Claims{}, invalid(fmt.Sprintf("the token algorithm %q is not accepted", clip(h.Alg)), nil)
	}
	if len(h.Crit) > 0 {
		return Claims{}, invalid("the token has critical header parameters this service does not understand", nil)
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") && !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return Claims{}, invalid(fmt.Sprintf("the token type %q is not a JWT", clip(h.Typ)), nil)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return Claims{}, invalid("the token signature is not base64url", err)
	}
	signed := raw[:len(parts[0])+1+len(parts[1])]
	if err := v.checkSignature(ctx, h, signed, sig); err != nil {
		return Claims{}, err
	}
	var p payload
	if err := decodeSegment(parts[1], &p); err != nil {
		return Claims{}, invalid("the token claims are malformed", err)
	}
	return v.checkClaims(p)
}

// checkSignature verifies sig over signed with the key the header selects.
// The key's type must match the alg.
func (v *Verifier) checkSignature(ctx context.Context, h header, signed string, sig []byte) error {
	if h.Alg == HS256 {
		mac := hmac.New(sha256.New, v.secret)
		mac.Write([]byte(signed))
		if !hmac.Equal(mac.Sum(nil), sig) {
			return invalid("the token signature is invalid", nil)
		}
		return nil
	}
	if h.Kid == "" {
		return invalid("the token has no kid header", nil)
	}
	key, err := v.jwks.key(ctx, h.Kid)
	if err != nil {
		return err
	}
	if key.alg != "" && key.alg != h.Alg {
		return invalid(fmt.Sprintf("key %q is for %s, not %s", clip(h.Kid), key.alg, h.Alg), nil)
	}
	digest := sha256.Sum256([]byte(signed))
	switch h.Alg {
	case RS256:
		pub, ok := key.pub.(*rsa.PublicKey)
		if !ok {
			return invalid(fmt.Sprintf("key %q is not an RSA key", clip(h.Kid)), nil)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return invalid("the token signature is invalid", err)
		}
	case ES256:
		pub, ok := key.pub.(*ecdsa.PublicKey)
		if !ok {
			return invalid(fmt.Sprintf("key %q is not a P-256 EC key", clip(h.Kid)), nil)
		}
		if len(sig) != 64 {
			return invalid("the token signature is invalid", fmt.Errorf("ES256 signature has %d bytes, want 64", len(sig)))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub, digest[:], r, s) {
			return invalid("the token signature is invalid", nil)
		}
	default:
		return invalid(fmt.Sprintf("the token algorithm %q is not accepted", clip(h.Alg)), nil)
	}
	return nil
}

// payload is the claims set as sent.
type payload struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Aud   json.RawMessage `json:"aud"`
	Exp   *json.Number    `json:"exp"`
	Nbf   *json.Number    `json:"nbf"`
	Iat   *json.Number    `json:"iat"`
	Scope json.RawMessage `json:"scope"`
	Scp   json.RawMessage `json:"scp"`
}

func (v *Verifier) checkClaims(p payload) (Claims, error) {
	c := Claims{Subject: p.Sub, Issuer: p.Iss}
	var err error
	if p.Exp == nil {
		return Claims{}, invalid("the token has no exp claim", nil)
	}
	if c.ExpiresAt, err = numericDate(*p.Exp); err != nil {
		return Claims{}, invalid("the token exp claim is not a NumericDate", err)
	}
	if p.Nbf != nil {
		if c.NotBefore, err = numericDate(*p.Nbf); err != nil {
			return Claims{}, invalid("the token nbf claim is not a NumericDate", err)
		}
	}
	if p.Iat != nil {
		if c.IssuedAt, err = numericDate(*p.Iat); err != nil {
			return Claims{}, invalid("the token iat claim is not a NumericDate", err)
		}
	}
	now, leeway := v.cfg.Now(), v.cfg.Leeway
	switch {
	case !now.Before(c.ExpiresAt.Add(leeway)):
		return Claims{}, invalid("the token has expired", nil)
	case !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore):
		return Claims{}, invalid("the token is not valid yet", nil)
	case !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt):
		return Claims{}, invalid("the token was issued in the future", nil)
	}
	if c.Audience, err = stringOrList(p.Aud, false); err != nil {
		return Claims{}, invalid("the token aud claim is malformed", err)
	}
	if v.cfg.Issuer != "" && c.Issuer != v.cfg.Issuer {
		return Claims{}, invalid("the token was issued by another issuer", nil)
	}
	if v.cfg.Audience != "" && !slices.Contains(c.Audience, v.cfg.Audience) {
		return Claims{}, invalid("the token is meant for another audience", nil)
	}
	scope, err := stringOrList(p.Scope, true)
	if err != nil {
		return Claims{}, invalid("the token scope claim is malformed", err)
	}
	scp, err := stringOrList(p.Scp, true)
	if err != nil {
		return Claims{}, invalid("the token scp claim is malformed", err)
	}
	c.Scopes = append(scope, scp...)
	return c, nil
}

// maxNumericDate bounds a NumericDate: 2^40 seconds is past the year 36000,
// and keeps a date and its leeway arithmetic inside time.Time's range (an
// nbf near the int64 limit would otherwise wrap around into the past).
const maxNumericDate = 1 << 40

// numericDate parses a JSON number of seconds since the epoch (fractions
// allowed), from 0 to maxNumericDate.
func numericDate(n json.Number) (time.Time, error) {
	if i, err := n.Int64(); err == nil {
		if i < 0 || i > maxNumericDate {
			return time.Time{}, fmt.Errorf("NumericDate %q is out of range", n)
		}
		return time.Unix(i, 0), nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("bad NumericDate %q", n)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

// stringOrList decodes a claim that is a string or an array of strings;
// split splits strings at spaces (scope), else a string is one value (aud).
func stringOrList(raw json.RawMessage, split bool) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if split {
			return strings.Fields(s), nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("want a string or an array of strings")
	}
	return list, nil
}

// decodeSegment decodes one base64url (unpadded) JSON object of a token.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// More is false before a stray '}' or ']': only the end of the input
	// may follow the object.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// RequireScope returns nil if c has scope, else an error of kind
// apperr.Forbidden matching ErrInsufficientScope.
func RequireScope(c Claims, scope string) error {
	if c.HasScope(scope) {
		return nil
	}
	return &apperr.Error{Kind: apperr.Forbidden, Code: CodeInsufficientScope,
		Message: fmt.Sprintf("the bearer token lacks the %s scope", scope)}
}

// FromHeader extracts the token of an Authorization header value
// ("Bearer <token>", the scheme in any case). It returns ErrNoToken when
// the header is empty or uses another scheme, and an invalid_token error
// when the Bearer credentials are empty or contain spaces.
func FromHeader(authorization string) (string, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", invalid("the Authorization header does not hold one bearer token", nil)
	}
	return token, nil
}

// NeedsChallenge reports whether err calls for a WWW-Authenticate header:
// it is of kind apperr.Unauthenticated or apperr.Forbidden.
func NeedsChallenge(err error) bool {
	k := apperr.KindOf(err)
	return k == apperr.Unauthenticated || k == apperr.Forbidden
}

// Challenge returns the RFC 6750 WWW-Authenticate value answering err:
// `Bearer realm="…"` when no token was sent, with error="invalid_token" and
// a description when a token was refused, and with
// error="insufficient_scope" and scope="…" (the scope argument) when one
// was missing.
func Challenge(realm string, err error, scope string) string {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(quote(realm))
	e, ok := apperr.As(err)
	if !ok || e.Code == CodeNoToken {
		return b.String()
	}
	switch e.Code {
	case CodeInvalidToken:
		b.WriteString(`, error="invalid_token", error_description=`)
		b.WriteString(quote(e.Message))
	case CodeInsufficientScope:
		b.WriteString(`, error="insufficient_scope", error_description=`)
		b.WriteString(quote(e.Message))
		if scope != "" {
			b.WriteString(", scope=")
			b.WriteString(quote(scope))
		}
	}
	return b.String()
}

// quote makes s an RFC 9110 quoted-string of the characters RFC 6750 allows
// in its attributes (%x20-21 / %x23-5B / %x5D-7E): others become '?'.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			c = '?'
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// clip shortens a token-supplied value echoed in an error message.
func clip(s string) string {
	const maxEcho = 64
	if len(s) <= maxEcho {
		return s
	}
	return s[:maxEcho] + "…"
}
