package httpapi

import (
	"fmt"
	"net/http"

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
		return "", badRequest("invalid_idempotency_key", "send at most one Idempotency-Key header")
	}
	k := vals[0]
	if len(k) < 1 || len(k) > maxIdempotencyKeyLen || !visibleASCII(k) {
		return "", badRequest("invalid_idempotency_key",
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
