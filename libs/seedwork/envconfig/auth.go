package envconfig

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
)

// The variables of the bearer-token configuration read by Parser.Auth.
const (
	// AuthModeVar selects the mode: none (the default), hs256 or jwks, in any case.
	AuthModeVar = "AUTH_MODE"
	// AuthSecretVar holds the HS256 secret.
	AuthSecretVar = "AUTH_HS256_SECRET"
	// AuthSecretFileVar names a file holding the HS256 secret instead.
	AuthSecretFileVar = "AUTH_HS256_SECRET_FILE"
	// AuthJWKSURLVar is the URL of the key set of mode jwks: https, or http
	// to a loopback host (see CheckJWKSURL).
	AuthJWKSURLVar = "AUTH_JWKS_URL"
	// AuthIssuerVar, if set, is the required iss claim.
	AuthIssuerVar = "AUTH_ISSUER"
	// AuthAudienceVar, if set, is a required aud value.
	AuthAudienceVar = "AUTH_AUDIENCE"
)

// Auth reads the bearer-token settings from AUTH_MODE (default none),
// AUTH_HS256_SECRET or the file named by AUTH_HS256_SECRET_FILE (one
// trailing newline removed), AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE,
// and records every inconsistency: an unknown mode, both a secret and a
// secret file, an unreadable secret file, a missing secret or one shorter
// than MinHS256SecretLen bytes with hs256, a missing JWKS URL or one
// CheckJWKSURL refuses with jwks, and settings that belong to another mode (any setting with
// none). A problem about the secret names the variable it came from.
func (p *Parser) Auth() AuthSettings {
	s := AuthSettings{
		Mode:     AuthMode(strings.ToLower(cmp.Or(p.Raw(AuthModeVar), string(AuthModeNone)))),
		JWKSURL:  p.Raw(AuthJWKSURLVar),
		Issuer:   p.Raw(AuthIssuerVar),
		Audience: p.Raw(AuthAudienceVar),
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
	p.errs = append(p.errs, checkAuth(s, secretName, secret != "" || file != "", readFailed)...)
	return s
}

// ValidateAuth reports every inconsistency of s that Parser.Auth reports
// (except those about reading the secret), naming the AUTH_* variables, as
// one joined error, or nil.
func ValidateAuth(s AuthSettings) error {
	return errors.Join(checkAuth(s, AuthSecretVar, s.HS256Secret != "", false)...)
}

// checkAuth checks the mode of s against its other settings. secretName is
// the variable the secret came from, secretSet whether a secret or a secret
// file was given, readFailed whether the secret file could not be read (its
// length is then not checked).
func checkAuth(s AuthSettings, secretName string, secretSet, readFailed bool) []error {
	var errs []error
	fail := func(name, msg string) { errs = append(errs, fmt.Errorf("%s %s", name, msg)) }
	switch s.Mode {
	case AuthModeNone:
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
		} else if !readFailed && len(s.HS256Secret) < MinHS256SecretLen {
			fail(secretName, fmt.Sprintf("must hold at least %d bytes, got %d", MinHS256SecretLen, len(s.HS256Secret)))
		}
		if s.JWKSURL != "" {
			fail(AuthJWKSURLVar, "is only used with AUTH_MODE=jwks")
		}
	case AuthModeJWKS:
		if s.JWKSURL == "" {
			fail(AuthJWKSURLVar, "is required with AUTH_MODE=jwks")
		} else if err := CheckJWKSURL(s.JWKSURL); err != nil {
			fail(AuthJWKSURLVar, fmt.Sprintf("must be an absolute https URL (http only to a loopback host), got %q", s.JWKSURL))
		}
		if secretSet {
			fail(secretName, "is only used with AUTH_MODE=hs256")
		}
	default:
		fail(AuthModeVar, fmt.Sprintf("must be none, hs256 or jwks, got %q", string(s.Mode)))
	}
	return errs
}
