package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/jwtauth"
)

// OAuth scopes a bearer token must hold, per route.
const (
	// AuthScopeWrite allows POST /v1/companias, PATCH /v1/companias/{id}
	// and POST /ingestion/compania-comando.
	AuthScopeWrite = "companias:write"
	// AuthScopeApprove allows POST /v1/companias/{id}/aprobar and /rechazar.
	AuthScopeApprove = "companias:approve"
)

// authRealm is the realm of the WWW-Authenticate challenges.
const authRealm = "companias"

// Gin context keys of the authenticated caller.
const (
	// keySubject holds the token's sub claim, for the access log.
	keySubject = "httpapi.subject"
	// keyCaller holds callerScope of the token's iss and sub; it is unset
	// when the token has no sub.
	keyCaller = "httpapi.caller"
)

// Authenticator verifies a bearer token (without its "Bearer " prefix) and
// returns its claims. A refusal is an error of kind apperr.Unauthenticated
// (a *jwtauth.Verifier satisfies it).
type Authenticator interface {
	Verify(ctx context.Context, rawToken string) (jwtauth.Claims, error)
}

// authorize returns the middleware guarding a route with scope. Without an
// Authenticator the API is open and the middleware does nothing. A missing
// or refused token answers 401, a token without scope 403; both carry an
// RFC 6750 WWW-Authenticate challenge. A key set that cannot be fetched
// answers 503.
func (h *handlers) authorize(scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if h.auth == nil {
			c.Next()
			return
		}
		token, err := jwtauth.FromHeader(c.Request.Header.Get("Authorization"))
		var claims jwtauth.Claims
		if err == nil {
			claims, err = h.auth.Verify(c.Request.Context(), token)
		}
		if err == nil {
			err = jwtauth.RequireScope(claims, scope)
		}
		if err != nil {
			if jwtauth.NeedsChallenge(err) { // not on a 503: the key server is down
				c.Header("WWW-Authenticate", jwtauth.Challenge(authRealm, err, scope))
			}
			h.fail(c, err)
			return
		}
		c.Set(keySubject, claims.Subject)
		if claims.Subject != "" {
			c.Set(keyCaller, callerScope(claims.Issuer, claims.Subject))
		}
		c.Next()
	}
}
