package jwtauth

import (
	"fmt"
	"log/slog"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// Settings, Mode, Secret and the modes are those of envconfig, where the
// environment is parsed (seedwork stays stdlib-only); they are re-exported
// here so that a service names its auth configuration with one import.
type (
	// Settings is envconfig.AuthSettings.
	Settings = envconfig.AuthSettings
	// Mode is envconfig.AuthMode.
	Mode = envconfig.AuthMode
	// Secret is envconfig.Secret: it formats and logs as "[redacted]".
	Secret = envconfig.Secret
)

// The authentication modes (envconfig.AuthModeNone, …).
const (
	// ModeNone checks no token: the API is open (development only).
	ModeNone = envconfig.AuthModeNone
	// ModeHS256 verifies HS256 tokens with a shared secret.
	ModeHS256 = envconfig.AuthModeHS256
	// ModeJWKS verifies RS256 and ES256 tokens with the keys of a JWKS URL.
	ModeJWKS = envconfig.AuthModeJWKS
)

// NewFromSettings builds the Verifier that s asks for: an HS256 Verifier for
// ModeHS256, a JWKS Verifier for ModeJWKS (the secret, respectively the URL,
// of the other mode is ignored). ModeNone and unknown modes are errors: with
// ModeNone the caller must not authenticate at all, and decides itself how
// to warn about it. The errors of New are wrapped.
func NewFromSettings(s Settings) (*Verifier, error) {
	cfg := Config{Issuer: s.Issuer, Audience: s.Audience}
	switch s.Mode {
	case ModeHS256:
		cfg.HS256Secret = []byte(s.HS256Secret)
	case ModeJWKS:
		cfg.JWKSURL = s.JWKSURL
	case ModeNone:
		return nil, fmt.Errorf("auth mode %q builds no token verifier", s.Mode)
	default:
		return nil, fmt.Errorf("unknown auth mode %q", s.Mode)
	}
	v, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("build token verifier: %w", err)
	}
	return v, nil
}

// NewLogged is NewFromSettings for a service's start-up, logging the
// outcome on log. With ModeNone it logs offWarning at level Warn (it should
// say what the open API allows and how to turn authentication on), after
// an Error line if s.AllowNoneOnNetwork (the API is open beyond loopback),
// and returns nil, nil: the caller then leaves its API open. Otherwise it
// builds the Verifier and logs at level Info the mode, JWKS URL, issuer,
// audience and the scopes the service checks.
func NewLogged(s Settings, log *slog.Logger, offWarning string, scopes ...string) (*Verifier, error) {
	if s.Mode == ModeNone {
		if s.AllowNoneOnNetwork {
			log.Error("AUTHENTICATION IS OFF ON A NETWORK ADDRESS (AUTH_MODE=none, AUTH_ALLOW_NONE_ON_NETWORK=true): " +
				"anyone who reaches HTTP_ADDR uses the API without a token")
		}
		log.Warn(offWarning)
		return nil, nil
	}
	v, err := NewFromSettings(s)
	if err != nil {
		return nil, err
	}
	log.Info("bearer authentication enabled", "mode", string(s.Mode), "jwks_url", s.JWKSURL,
		"issuer", s.Issuer, "audience", s.Audience, "scopes", scopes)
	return v, nil
}
