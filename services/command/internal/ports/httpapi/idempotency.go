package httpapi

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/services/command/internal/app/command"
)

// idempotencyKey returns the Idempotency-Key header, "" when absent. A key
// must be 1–255 visible ASCII characters and be sent once; otherwise 400.
func idempotencyKey(h http.Header) (string, error) {
	vals := h.Values(headerIdempotencyKey)
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", httpkit.BadRequest("invalid_idempotency_key", "send at most one Idempotency-Key header")
	}
	k := vals[0]
	if len(k) < 1 || len(k) > maxIdempotencyKeyLen || !visibleASCII(k) {
		return "", httpkit.BadRequest("invalid_idempotency_key",
			fmt.Sprintf("the Idempotency-Key must be 1 to %d visible ASCII characters", maxIdempotencyKeyLen))
	}
	return k, nil
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotency builds the command's idempotency identity, nil without a key.
func idempotency(scope, key string, canonical any) (*command.Idempotency, error) {
	if key == "" {
		return nil, nil
	}
	hash, err := requestHash(canonical)
	if err != nil {
		return nil, err
	}
	return &command.Idempotency{Scope: scope, Key: key, RequestHash: hash}, nil
}

// callerScope returns the key space of an authenticated caller:
// "sub:" and the hex SHA-256 of the token's issuer and subject, each
// length-prefixed so that no two (issuer, subject) pairs share an input.
// The digest keeps the scope 68 bytes long whatever the token carries, and
// no subject can forge another's scope by its spelling.
func callerScope(issuer, subject string) string {
	h := sha256.New()
	for _, s := range []string{issuer, subject} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return "sub:" + hex.EncodeToString(h.Sum(nil))
}

// idempotency builds the idempotency identity of a request to route
// (ScopeCrear or ScopeLegacy), nil without a key. Its scope is the
// route's followed by ":" and the caller's scope, so one caller can neither
// replay nor probe another's keys. Without an Authenticator (AUTH_MODE=none,
// loopback development) every request is the one anonymous caller and the
// scope is the route's alone. A verified token without a subject names no
// caller: its Idempotency-Key is refused (400) rather than shared with every
// other subject-less token.
func (h *API) idempotency(c *gin.Context, route, key string, canonical any) (*command.Idempotency, error) {
	if key == "" {
		return nil, nil
	}
	scope := route
	if h.kit.AuthEnabled() {
		claims, _ := httpkit.Claims(c)
		if claims.Subject == "" {
			return nil, httpkit.BadRequest("invalid_idempotency_key",
				"an Idempotency-Key needs a bearer token with a sub claim, which names the caller whose key it is")
		}
		scope += ":" + callerScope(claims.Issuer, claims.Subject)
	}
	return idempotency(scope, key, canonical)
}
