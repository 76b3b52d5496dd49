// Package jwtauth verifies bearer JSON Web Tokens (RFC 7519) for the
// services' HTTP APIs.
//
// Parsing, signature verification and the time, issuer and audience checks
// are those of github.com/golang-jwt/jwt/v5, run with strict options; JWKS
// documents (RFC 7517) are decoded and validated by
// github.com/MicahParks/jwkset. This package adds what the services need
// around them: one kind of key per Verifier (HS256 with a shared secret, or
// RS256 and ES256 with the public keys of a JWKS URL), refusal of tokens
// whose header or claims repeat a member name or have an unexpected typ,
// claim dates bounded to a sane range, the JWKS cache and its refresh
// policy, scopes, apperr errors and the RFC 6750 challenge.
//
// Verify's errors are *apperr.Error values of kind apperr.Unauthenticated
// (HTTP 401), or apperr.Unavailable (HTTP 503, retryable) when the token's
// key cannot be known yet; RequireScope reports a missing scope as
// apperr.Forbidden (HTTP 403). Challenge builds the matching RFC 6750
// WWW-Authenticate header.
package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// Supported signature algorithms (RFC 7518 names).
const (
	HS256 = "HS256"
	RS256 = "RS256"
	ES256 = "ES256"
)

// MinSecretLen is the shortest HS256 secret accepted (envconfig.MinHS256SecretLen).
const MinSecretLen = envconfig.MinHS256SecretLen

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
	// CodeKeysUnavailable: the token's key is not known and the JWKS could
	// not be fetched, or is being fetched (kind apperr.Unavailable, HTTP 503).
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
	// HS256Secret, if set, is the key that verifies HS256 tokens: at least
	// MinSecretLen random bytes (envconfig.CheckHS256Key refuses short,
	// low-entropy and placeholder keys).
	HS256Secret []byte
	// JWKSURL, if set, is the https URL (http only to a loopback host, see
	// envconfig.CheckJWKSURL) of the JWKS document holding the RS256 (kty
	// RSA, at least 2048 bits) and ES256 (kty EC, crv P-256) public keys;
	// tokens must name their key with a kid header.
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
	// timeout; FetchTimeout bounds each fetch). The Verifier uses a copy
	// whose redirect policy refuses other hosts and https to http.
	HTTPClient *http.Client
	// FetchTimeout bounds one JWKS fetch (default DefaultFetchTimeout).
	FetchTimeout time.Duration
	// RefreshInterval is the maximum age of the cached key set: an older
	// set is fetched again before it is used (default
	// DefaultRefreshInterval).
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetch attempts: a
	// token naming an unknown kid starts a fetch only that often, so that
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
	algs   []string
	issuer string
	secret []byte
	jwks   *keySet
	parser *jwt.Parser
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
		if err := envconfig.CheckHS256Key(cfg.HS256Secret); err != nil {
			bad("jwtauth: the HS256 secret %w", err)
		}
	case hasJWKS:
		allowed = []string{RS256, ES256}
		if err := envconfig.CheckJWKSURL(cfg.JWKSURL); err != nil {
			bad("jwtauth: %w", err)
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithJSONNumber(),
		jwt.WithStrictDecoding(), // base64url without padding or stray bits
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &Verifier{algs: algs, issuer: cfg.Issuer, parser: jwt.NewParser(opts...)}
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

// invalid returns an invalid_token error with a client-safe message.
func invalid(msg string, cause error) error {
	return &apperr.Error{Kind: apperr.Unauthenticated, Code: CodeInvalidToken, Message: msg, Err: cause}
}

// Verify parses raw (the token without the "Bearer " prefix), checks its
// signature and its claims and returns them. Every refusal is an
// *apperr.Error of kind apperr.Unauthenticated with code CodeInvalidToken
// (errors.Is(err, ErrInvalidToken)); an empty raw is ErrNoToken. When the
// token names a key that is not cached and the JWKS cannot be fetched, or
// is still being fetched when ctx ends, the error has kind
// apperr.Unavailable (code CodeKeysUnavailable): the token may be valid and
// the client should retry. A fetch runs detached from ctx: a caller that
// gives up does not cancel it.
func (v *Verifier) Verify(ctx context.Context, raw string) (Claims, error) {
	if raw == "" {
		return Claims{}, ErrNoToken
	}
	if len(raw) > MaxTokenLen {
		return Claims{}, invalid("the token is too large", nil)
	}
	if _, err := precheck(raw, v.algs); err != nil {
		return Claims{}, err
	}
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(raw, &tc, v.keyfunc(ctx))
	if err != nil {
		return Claims{}, v.refusal(err, &tc)
	}
	return tc.claims()
}

// keyfunc returns the key that verifies a token: the secret for HS256, the
// JWKS key named by the kid header otherwise. The alg was checked by
// precheck and is checked again by the parser (WithValidMethods); the key
// must be of the alg's type and, if its JWK names an alg, of that alg.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		alg := tok.Method.Alg()
		if alg == HS256 {
			return v.secret, nil
		}
		kid, _ := tok.Header["kid"].(string)
		if kid == "" {
			return nil, invalid("the token has no kid header", nil)
		}
		key, err := v.jwks.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if key.alg != "" && key.alg != alg {
			return nil, invalid(fmt.Sprintf("key %q is for %s, not %s", clip(kid), key.alg, alg), nil)
		}
		if !key.fits(alg) {
			return nil, invalid(fmt.Sprintf("key %q is not an %s key", clip(kid), keyKind(alg)), nil)
		}
		return key.pub, nil
	}
}

// keyKind names the key type an alg needs, for messages.
func keyKind(alg string) string {
	if alg == ES256 {
		return "EC P-256"
	}
	return "RSA"
}

// refusal maps an error of the jwt parser on the claims tc to this
// package's errors: the *apperr.Error a keyfunc returned as is, the others
// to an invalid_token error with a client-safe message and the parser's
// error as its cause.
func (v *Verifier) refusal(err error, tc *tokenClaims) error {
	if e, ok := apperr.As(err); ok {
		return e
	}
	var msg string
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		msg = "the token signature is invalid"
	case errors.Is(err, jwt.ErrTokenMalformed):
		msg = "the token is malformed"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && tc.exp == nil:
		msg = "the token has no exp claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		msg = "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		msg = "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		msg = "the token was issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && v.issuer != "" && tc.iss == "":
		msg = "the token was issued by another issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The validator requires aud when it expects one.
		msg = "the token is meant for another audience"
	default:
		msg = "the token is invalid"
	}
	if ce := (*claimError)(nil); errors.As(err, &ce) {
		msg = ce.msg
	}
	return invalid(msg, err)
}

// clip shortens a token-supplied value echoed in an error message.
func clip(s string) string {
	const maxEcho = 64
	if len(s) <= maxEcho {
		return s
	}
	return s[:maxEcho] + "…"
}
