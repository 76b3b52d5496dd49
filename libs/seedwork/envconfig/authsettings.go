package envconfig

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
)

// AuthMode selects how an HTTP API authenticates its requests.
type AuthMode string

// The authentication modes.
const (
	// AuthModeNone checks no token: the API is open (development only).
	AuthModeNone AuthMode = "none"
	// AuthModeHS256 verifies HS256 tokens with a shared secret.
	AuthModeHS256 AuthMode = "hs256"
	// AuthModeJWKS verifies RS256 and ES256 tokens with the keys of a JWKS URL.
	AuthModeJWKS AuthMode = "jwks"
)

// MinHS256SecretLen is the shortest HS256 secret accepted: 32 bytes, the
// size of the SHA-256 output (RFC 7518 §3.2).
const MinHS256SecretLen = 32

// Secret is a confidential string. It formats and logs as "[redacted]", so
// that printing a configuration does not leak it; convert it to use the value.
type Secret string

// String returns "[redacted]".
func (Secret) String() string { return "[redacted]" }

// GoString returns "[redacted]" (for %#v).
func (Secret) GoString() string { return "[redacted]" }

// LogValue implements slog.LogValuer with "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// AuthSettings is the bearer-token configuration of a service, as read from
// its environment by Parser.Auth: the mode, the key source of that mode,
// and the issuer and audience every token must carry. The token verifier that
// uses it lives in libs/jwtauth (seedwork stays stdlib-only).
type AuthSettings struct {
	// Mode is AuthModeNone, AuthModeHS256 or AuthModeJWKS.
	Mode AuthMode
	// HS256Secret is the key of AuthModeHS256, decoded (see
	// DecodeHS256Secret): at least MinHS256SecretLen bytes that
	// CheckHS256Key accepts.
	HS256Secret Secret
	// JWKSURL is the URL of the key set of AuthModeJWKS (see CheckJWKSURL).
	JWKSURL string
	// Issuer must equal the tokens' iss claim (required unless AuthModeNone).
	Issuer string
	// Audience must be one of the tokens' aud values: the service's own,
	// so that a token for one service is refused by the other (required
	// unless AuthModeNone).
	Audience string
	// AllowNoneOnNetwork is AUTH_ALLOW_NONE_ON_NETWORK: only with it may
	// AuthModeNone serve an API listening beyond loopback. Log it loudly.
	AllowNoneOnNetwork bool
}

// CheckJWKSURL returns nil if raw is an absolute https URL, or an http URL
// whose host is a loopback address or "localhost" (tests and local
// development): signing keys fetched in clear text over a network could be
// replaced by anyone on the path.
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	ok := err == nil && u.Hostname() != "" && u.User == nil &&
		(u.Scheme == "https" || (u.Scheme == "http" && IsLoopbackHost(u.Hostname())))
	if !ok {
		return fmt.Errorf("the JWKS URL %q is not an absolute https URL (http is allowed only to a loopback host)", raw)
	}
	return nil
}

// IsLoopbackHost reports whether host (without port) is "localhost", a name
// under ".localhost" or a loopback IP address.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
