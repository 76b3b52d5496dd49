package main

import (
	"log/slog"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/services/command/internal/ports/httpapi"
)

// newAuthenticator builds the bearer-token verifier that cfg asks for
// (httpkit.NewAuthenticator). With AUTH_MODE=none it logs a loud warning and
// returns a nil Authenticator: the API is then open.
func newAuthenticator(cfg jwtauth.Settings, log *slog.Logger) (httpapi.Authenticator, error) {
	return httpkit.NewAuthenticator(cfg, log,
		"AUTHENTICATION IS OFF (AUTH_MODE=none): the command API accepts every request without a token; "+
			"set AUTH_MODE=hs256 or AUTH_MODE=jwks outside local development",
		httpapi.AuthScopeWrite, httpapi.AuthScopeApprove)
}
