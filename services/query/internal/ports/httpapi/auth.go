package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/jwtauth"
)

// OAuth scopes a bearer token must hold, per route.
const (
	// AuthScopeRead allows the read routes: /v1/companias…,
	// /v1/estadisticas, /v1/proyecciones and /ingestion/compania-query….
	AuthScopeRead = "companias:read"
	// AuthScopeAdmin allows the rebuild endpoints, /v1/admin/rebuild: a
	// rebuild replays the whole topic, which a reader must not trigger.
	AuthScopeAdmin = "companias:admin"
)

// authRealm is the realm of the WWW-Authenticate challenges.
const authRealm = "companias"

// subjectKey is the gin context key of the authenticated subject.
const subjectKey = "subject"

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
func (a *API) authorize(scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if a.deps.Auth == nil {
			c.Next()
			return
		}
		token, err := jwtauth.FromHeader(c.GetHeader("Authorization"))
		var claims jwtauth.Claims
		if err == nil {
			claims, err = a.deps.Auth.Verify(c.Request.Context(), token)
		}
		if err == nil {
			err = jwtauth.RequireScope(claims, scope)
		}
		if err != nil {
			if jwtauth.NeedsChallenge(err) { // not on a 503: the key server is down
				c.Header("WWW-Authenticate", jwtauth.Challenge(authRealm, err, scope))
			}
			a.fail(c, err)
			return
		}
		c.Set(subjectKey, claims.Subject)
		c.Next()
	}
}
