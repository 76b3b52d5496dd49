package httpkit

import (
	"context"
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/jwtauth"
)

// Authenticator verifies a bearer token (without its "Bearer " prefix) and
// returns its claims. A refusal is an error of kind apperr.Unauthenticated;
// a key set that cannot be fetched, of kind apperr.Unavailable (a
// *jwtauth.Verifier satisfies it).
type Authenticator interface {
	Verify(ctx context.Context, rawToken string) (jwtauth.Claims, error)
}

// NewAuthenticator builds the bearer-token verifier that cfg asks for, via
// jwtauth.NewLogged: with AUTH_MODE=none it logs offWarning loudly and
// returns a nil Authenticator (an untyped nil, so that Options.Auth == nil
// and the routes are open); scopes are the service's, listed in the log.
func NewAuthenticator(cfg jwtauth.Settings, log *slog.Logger, offWarning string, scopes ...string) (Authenticator, error) {
	v, err := jwtauth.NewLogged(cfg, log, offWarning, scopes...)
	if v == nil {
		return nil, err
	}
	return v, nil
}

// Claims returns the verified claims of the request's bearer token; ok is
// false when the route is open or no token was checked.
func Claims(c *gin.Context) (claims jwtauth.Claims, ok bool) {
	v, ok := c.Get(keyClaims)
	if !ok {
		return jwtauth.Claims{}, false
	}
	claims, ok = v.(jwtauth.Claims)
	return claims, ok
}

// Subject returns the sub claim of the request's verified token, "" when
// there is none.
func Subject(c *gin.Context) string {
	claims, _ := Claims(c)
	return claims.Subject
}

// Authorize returns the middleware guarding a route with scope. Without an
// Authenticator it does nothing (the route is open). A missing or refused
// token answers 401, a token without scope 403, both with an RFC 6750
// WWW-Authenticate challenge; a key set that cannot be fetched answers 503
// without a challenge. A token that passes is kept for Claims and Subject.
func (k *Kit) Authorize(scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if k.auth == nil {
			c.Next()
			return
		}
		token, err := jwtauth.FromHeader(c.Request.Header.Get("Authorization"))
		var claims jwtauth.Claims
		if err == nil {
			claims, err = k.auth.Verify(c.Request.Context(), token)
		}
		if err == nil {
			err = jwtauth.RequireScope(claims, scope)
		}
		if err != nil {
			if jwtauth.NeedsChallenge(err) { // not on a 503: the key server is down
				c.Header("WWW-Authenticate", jwtauth.Challenge(k.realm, err, scope))
			}
			k.Fail(c, err)
			return
		}
		c.Set(keyClaims, claims)
		c.Next()
	}
}
