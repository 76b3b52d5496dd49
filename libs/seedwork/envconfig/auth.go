package envconfig

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/propalpes/companias/libs/seedwork/jwtauth"
)

// The variables of the bearer-token configuration read by Parser.Auth.
const (
	// AuthModeVar selects the mode: none (the default), hs256 or jwks, in any case.
	AuthModeVar = "AUTH_MODE"
	// AuthSecretVar holds the HS256 secret.
	AuthSecretVar = "AUTH_HS256_SECRET"
	// AuthSecretFileVar names a file holding the HS256 secret instead.
	AuthSecretFileVar = "AUTH_HS256_SECRET_FILE"
	// AuthJWKSURLVar is the http(s) URL of the key set of mode jwks.
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
// than jwtauth.MinSecretLen bytes with hs256, a missing or non-http(s) JWKS
// URL with jwks, and settings that belong to another mode (any setting with
// none). A problem about the secret names the variable it came from.
func (p *Parser) Auth() jwtauth.Settings {
	s := jwtauth.Settings{
		Mode:     jwtauth.Mode(strings.ToLower(cmp.Or(p.Raw(AuthModeVar), string(jwtauth.ModeNone)))),
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
	s.HS256Secret = jwtauth.Secret(secret)
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
func ValidateAuth(s jwtauth.Settings) error {
	return errors.Join(checkAuth(s, AuthSecretVar, s.HS256Secret != "", false)...)
}

// checkAuth checks the mode of s against its other settings. secretName is
// the variable the secret came from, secretSet whether a secret or a secret
// file was given, readFailed whether the secret file could not be read (its
// length is then not checked).
func checkAuth(s jwtauth.Settings, secretName string, secretSet, readFailed bool) []error {
	var errs []error
	fail := func(name, msg string) { errs = append(errs, fmt.Errorf("%s %s", name, msg)) }
	switch s.Mode {
	case jwtauth.ModeNone:
		for _, v := range []struct {
			name string
			set  bool
		}{{secretName, secretSet}, {AuthJWKSURLVar, s.JWKSURL != ""}, {AuthIssuerVar, s.Issuer != ""}, {AuthAudienceVar, s.Audience != ""}} {
			if v.set {
				fail(v.name, "is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)")
			}
		}
	case jwtauth.ModeHS256:
		if !secretSet {
			fail(AuthSecretVar, "or "+AuthSecretFileVar+" is required with AUTH_MODE=hs256")
		} else if !readFailed && len(s.HS256Secret) < jwtauth.MinSecretLen {
			fail(secretName, fmt.Sprintf("must hold at least %d bytes, got %d", jwtauth.MinSecretLen, len(s.HS256Secret)))
		}
		if s.JWKSURL != "" {
			fail(AuthJWKSURLVar, "is only used with AUTH_MODE=jwks")
		}
	case jwtauth.ModeJWKS:
		if s.JWKSURL == "" {
			fail(AuthJWKSURLVar, "is required with AUTH_MODE=jwks")
		} else if u, err := url.Parse(s.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			fail(AuthJWKSURLVar, fmt.Sprintf("must be an absolute http(s) URL, got %q", s.JWKSURL))
		}
		if secretSet {
			fail(secretName, "is only used with AUTH_MODE=hs256")
		}
	default:
		fail(AuthModeVar, fmt.Sprintf("must be none, hs256 or jwks, got %q", string(s.Mode)))
	}
	return errs
}
