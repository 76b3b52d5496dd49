package httpapi

// OAuth scopes a bearer token must hold, per route (see Deps.Auth).
const (
	// AuthScopeWrite allows POST /v1/companias, PATCH /v1/companias/{id}
	// and POST /ingestion/compania-comando.
	AuthScopeWrite = "companias:write"
	// AuthScopeApprove allows POST /v1/companias/{id}/aprobar and /rechazar.
	AuthScopeApprove = "companias:approve"
)
