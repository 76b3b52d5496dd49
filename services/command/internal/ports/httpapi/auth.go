package httpapi

// OAuth scopes a bearer token must hold, per route (see Deps.Auth).
const (
	// AuthScopeWrite allows POST /v1/companias, PATCH /v1/companias/{id}
	// and POST /ingestion/compania-comando.
	AuthScopeWrite = "companias:write"
	// AuthScopeApprove allows POST /v1/companias/{id}/aprobar and /rechazar.
	AuthScopeApprove = "companias:approve"
)

// AuthOffWarning is what the service logs, loudly, when it starts with
// AUTH_MODE=none (httpkit.NewAuthenticator).
const AuthOffWarning = "AUTHENTICATION IS OFF (AUTH_MODE=none): the command API accepts every request without a token; " +
	"set AUTH_MODE=hs256 or AUTH_MODE=jwks outside local development"
