package httpapi

// OAuth scopes a bearer token must hold, per route (see Deps.Auth).
const (
	// AuthScopeRead allows the read routes: /v1/companias…,
	// /v1/estadisticas, /v1/proyecciones and /ingestion/compania-query….
	AuthScopeRead = "companias:read"
	// AuthScopeAdmin allows the rebuild endpoints, /v1/admin/rebuild: a
	// rebuild replays the whole topic, which a reader must not trigger.
	AuthScopeAdmin = "companias:admin"
)

// AuthOffWarning is what the service logs, loudly, when it starts with
// AUTH_MODE=none (httpkit.NewAuthenticator).
const AuthOffWarning = "AUTHENTICATION IS OFF (AUTH_MODE=none): the query API serves reads and rebuilds without a token; " +
	"set AUTH_MODE=hs256 or AUTH_MODE=jwks outside local development"
