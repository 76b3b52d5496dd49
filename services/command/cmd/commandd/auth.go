package main

import (
	"fmt"
	"log/slog"

	"github.com/propalpes/companias/libs/seedwork/jwtauth"
	"github.com/propalpes/companias/services/command/internal/config"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// newAuthenticator builds the bearer-token verifier that cfg asks for. With
// AUTH_MODE=none it logs a loud warning and returns a nil Authenticator
// (an untyped nil: the router then leaves the API open).
func newAuthenticator(cfg config.Auth, log *slog.Logger) (httpapi.Authenticator, error) {
	jc := jwtauth.Config{Issuer: cfg.Issuer, Audience: cfg.Audience}
	switch cfg.Mode {
	case config.AuthNone:
		log.Warn("AUTHENTICATION IS OFF (AUTH_MODE=none): the command API accepts every request without a token; " +
			"set AUTH_MODE=hs256 or AUTH_MODE=jwks outside local development")
		return nil, nil
	case config.AuthHS256:
		jc.HS256Secret = []byte(cfg.HS256Secret)
	case config.AuthJWKS:
		jc.JWKSURL = cfg.JWKSURL
	default:
		return nil, fmt.Errorf("unknown auth mode %q", cfg.Mode)
	}
	v, err := jwtauth.New(jc)
	if err != nil {
		return nil, fmt.Errorf("build token verifier: %w", err)
	}
	log.Info("bearer authentication enabled", "mode", string(cfg.Mode), "jwks_url", cfg.JWKSURL,
		"issuer", cfg.Issuer, "audience", cfg.Audience,
		"scopes", []string{httpapi.AuthScopeWrite, httpapi.AuthScopeApprove})
	return v, nil
}
