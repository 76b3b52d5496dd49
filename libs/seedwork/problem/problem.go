// Package problem writes RFC 9457 "problem details" responses and maps
// application errors (package apperr) to HTTP status codes in one place.
package problem

import (
	"encoding/json"
	"net/http"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// ContentType is the media type of a problem details document.
const ContentType = "application/problem+json"

// TypeBase prefixes the "type" URI of every problem this project emits; the
// suffix is the error code (for example TypeBase+"validation").
const TypeBase = "https://propalpes.co/problems/"

// Problem is an RFC 9457 problem details object. Errors and CurrentVersion
// are extension members.
type Problem struct {
	Type     string              `json:"type"`
	Title    string              `json:"title"`
	Status   int                 `json:"status"`
	Detail   string              `json:"detail,omitempty"`
	Instance string              `json:"instance,omitempty"`
	Code     string              `json:"code,omitempty"`
	Errors   []apperr.FieldError `json:"errors,omitempty"`
	// Extra holds further extension members; keys must not collide with the
	// members above.
	Extra map[string]any `json:"-"`
}

// MarshalJSON merges Extra into the top-level object.
func (p Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	b, err := json.Marshal(plain(p))
	if err != nil || len(p.Extra) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// New builds a problem for status with a code (used in the type URI) and a detail.
func New(status int, code, detail string) Problem {
	return Problem{
		Type:   TypeBase + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// StatusOf maps an application error kind to its HTTP status. This is the
// only place where kinds become status codes.
func StatusOf(kind apperr.Kind) int {
	switch kind {
	case apperr.Invalid:
		return http.StatusUnprocessableEntity
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.PreconditionFailed:
		return http.StatusPreconditionFailed
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// FromError converts err into a problem. Application errors keep their code,
// message and fields; any other error becomes a generic 500 whose detail
// reveals nothing of the cause (the caller logs it).
func FromError(err error) Problem {
	e, ok := apperr.As(err)
	if !ok || e.Kind == apperr.Internal {
		return New(http.StatusInternalServerError, "internal", "an unexpected error occurred")
	}
	p := New(StatusOf(e.Kind), e.Code, e.Message)
	p.Errors = e.Fields
	return p
}

// Write sends p as the response with its status and the problem media type.
func Write(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
