package envconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// The variables of the bearer-token configuration read by Parser.Auth.
const (
	// AuthModeVar selects the mode: none, hs256 or jwks, in any case. Unset
	// means none if HTTP_ADDR is a loopback address, and is a problem
	// otherwise (see Parser.Auth).
	AuthModeVar = "AUTH_MODE"
	// AuthAllowNoneOnNetworkVar (a bool, default false) is the explicit
	// opt-in that lets AUTH_MODE=none serve beyond loopback.
	AuthAllowNoneOnNetworkVar = "AUTH_ALLOW_NONE_ON_NETWORK"
	// HTTPAddrVar is the listen address of the API the AUTH_* settings
	// protect; Parser.Auth reads it to decide whether the API may be open.
	HTTPAddrVar = "HTTP_ADDR"
	// AuthSecretVar holds the HS256 secret.
	AuthSecretVar = "AUTH_HS256_SECRET"
	// AuthSecretFileVar names a file holding the HS256 secret instead.
	AuthSecretFileVar = "AUTH_HS256_SECRET_FILE"
	// AuthJWKSURLVar is the URL of the key set of mode jwks: https, or http
	// to a loopback host (see CheckJWKSURL).
	AuthJWKSURLVar = "AUTH_JWKS_URL"
	// AuthIssuerVar is the required iss claim (required with hs256 and jwks).
	AuthIssuerVar = "AUTH_ISSUER"
	// AuthAudienceVar is a required aud value, one per service (required
	// with hs256 and jwks).
	AuthAudienceVar = "AUTH_AUDIENCE"
)

// Auth reads the bearer-token settings from AUTH_MODE,
// AUTH_ALLOW_NONE_ON_NETWORK, AUTH_HS256_SECRET or the file named by AUTH_HS256_SECRET_FILE (one
// trailing newline removed), AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE,
// and records every inconsistency: an unknown mode, both a secret and a
// secret file, an unreadable secret file, a missing secret with hs256 or
// one that DecodeHS256Secret or CheckHS256Key refuses, a missing issuer or
// audience with hs256 or jwks, a JWKS URL on a .invalid host (the shipped
// placeholder) (the secret is
// "base64:" or "hex:" followed by the encoded key; HS256Secret holds the
// decoded key), a missing JWKS URL or one
// CheckJWKSURL refuses with jwks, and settings that belong to another mode (any setting with
// none). A problem about the secret names the variable it came from.
//
// The API fails closed: AUTH_MODE unset means none only when HTTP_ADDR
// (the API's listen address) is a loopback address; beyond loopback it is
// a problem naming AUTH_MODE, and an explicit AUTH_MODE=none is a problem
// unless AUTH_ALLOW_NONE_ON_NETWORK=true (see ValidateAuth).
func (p *Parser) Auth() AuthSettings {
	httpAddr := p.Raw(HTTPAddrVar)
	s := AuthSettings{
		Mode:     AuthMode(strings.ToLower(p.Raw(AuthModeVar))),
		JWKSURL:  p.Raw(AuthJWKSURLVar),
		Issuer:   p.Raw(AuthIssuerVar),
		Audience: p.Raw(AuthAudienceVar),
	}
	if p.IsSet(AuthAllowNoneOnNetworkVar) {
		s.AllowNoneOnNetwork = p.Bool(AuthAllowNoneOnNetworkVar)
	}
	if s.Mode == "" {
		if !loopbackAddr(httpAddr) {
			p.Fail(AuthModeVar, fmt.Sprintf("is not set and %s %q listens beyond loopback: set AUTH_MODE=jwks "+
				"(or hs256) with AUTH_ISSUER and AUTH_AUDIENCE, or listen on 127.0.0.1", HTTPAddrVar, httpAddr))
			return s
		}
		s.Mode = AuthModeNone
	}
	secret, file := p.getenv(AuthSecretVar), p.Raw(AuthSecretFileVar)
	readFailed := false
	switch {
	case secret != "" && file != "":
		p.Fail(AuthSecretVar, "and "+AuthSecretFileVar+" are both set; set one")
	case file != "":
		b, err := p.readFile(file)
		if err != nil {
			p.Fail(AuthSecretFileVar, fmt.Sprintf("cannot be read: %v", err))
			readFailed = true
		}
		secret = TrimNewline(string(b))
	}
	s.HS256Secret = Secret(secret)
	secretName := AuthSecretVar
	if file != "" {
		secretName = AuthSecretFileVar
	}
	if s.Mode == AuthModeHS256 && secret != "" && !readFailed {
		key, err := DecodeHS256Secret(secret)
		if err != nil {
			p.Fail(secretName, err.Error()+"; "+HS256SecretHint)
			readFailed = true // reported: not checked again
		}
		s.HS256Secret = Secret(key)
	}
	p.errs = append(p.errs, checkAuth(s, httpAddr, secretName, secret != "" || file != "", readFailed)...)
	return s
}

// ValidateAuth reports every inconsistency of s that Parser.Auth reports
// (except those about reading the secret), naming the AUTH_* variables, as
// one joined error, or nil. httpAddr is the listen address of the API s
// protects: AuthModeNone with an address that is not loopback is a problem
// unless s.AllowNoneOnNetwork.
func ValidateAuth(s AuthSettings, httpAddr string) error {
	return errors.Join(checkAuth(s, httpAddr, AuthSecretVar, s.HS256Secret != "", false)...)
}

// loopbackAddr reports whether the listen address addr (host:port) binds
// to loopback only; "" and malformed addresses do not (Parser.Addr reports
// the latter).
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && Loopback(host)
}

// checkAuth checks the mode of s against its other settings and httpAddr.
// secretName is the variable the secret came from, secretSet whether a
// secret or a secret file was given, readFailed whether the secret file
// could not be read (its length is then not checked).
func checkAuth(s AuthSettings, httpAddr, secretName string, secretSet, readFailed bool) []error {
	var errs []error
	fail := func(name, msg string) { errs = append(errs, fmt.Errorf("%s %s", name, msg)) }
	if s.AllowNoneOnNetwork && s.Mode != AuthModeNone {
		fail(AuthAllowNoneOnNetworkVar, "is only used with AUTH_MODE=none")
	}
	switch s.Mode {
	case AuthModeNone:
		if !s.AllowNoneOnNetwork && !loopbackAddr(httpAddr) {
			fail(AuthModeVar, fmt.Sprintf("is none but %s %q listens beyond loopback, which serves an open API: "+
				"set AUTH_MODE=jwks (or hs256), listen on 127.0.0.1, or set %s=true to do so on purpose",
				HTTPAddrVar, httpAddr, AuthAllowNoneOnNetworkVar))
		}
		for _, v := range []struct {
			name string
			set  bool
		}{{secretName, secretSet}, {AuthJWKSURLVar, s.JWKSURL != ""}, {AuthIssuerVar, s.Issuer != ""}, {AuthAudienceVar, s.Audience != ""}} {
			if v.set {
				fail(v.name, "is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)")
			}
		}
	case AuthModeHS256:
		if !secretSet {
			fail(AuthSecretVar, "or "+AuthSecretFileVar+" is required with AUTH_MODE=hs256")
		} else if err := CheckHS256Key([]byte(s.HS256Secret)); !readFailed && err != nil {
			fail(secretName, err.Error()+"; "+HS256SecretHint)
		}
		if s.JWKSURL != "" {
			fail(AuthJWKSURLVar, "is only used with AUTH_MODE=jwks")
		}
	case AuthModeJWKS:
		if s.JWKSURL == "" {
			fail(AuthJWKSURLVar, "is required with AUTH_MODE=jwks")
		} else if err := CheckJWKSURL(s.JWKSURL); err != nil {
			fail(AuthJWKSURLVar, fmt.Sprintf("must be an absolute https URL (http only to a loopback host), got %q", s.JWKSURL))
		} else if u, _ := url.Parse(s.JWKSURL); strings.HasSuffix(strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), ".invalid") {
			fail(AuthJWKSURLVar, fmt.Sprintf("%q is the shipped placeholder (a .invalid host): put the JWKS URL of your identity provider", s.JWKSURL))
		}
		if secretSet {
			fail(secretName, "is only used with AUTH_MODE=hs256")
		}
	default:
		fail(AuthModeVar, fmt.Sprintf("must be none, hs256 or jwks, got %q", string(s.Mode)))
	}
	if s.Mode == AuthModeHS256 || s.Mode == AuthModeJWKS {
		// Without them a token minted for any service of the issuer, or by
		// any issuer sharing the keys, would do.
		if s.Issuer == "" {
			fail(AuthIssuerVar, fmt.Sprintf("is required with AUTH_MODE=%s: the iss claim of the tokens this service accepts", s.Mode))
		}
		if s.Audience == "" {
			fail(AuthAudienceVar, fmt.Sprintf("is required with AUTH_MODE=%s: this service's own aud value (companias-command, companias-query)", s.Mode))
		}
	}
	return errs
}
