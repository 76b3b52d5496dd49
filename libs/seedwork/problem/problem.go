// Package problem writes RFC 9457 "problem details" responses and maps
// application errors (package apperr) to HTTP status codes in one place.
package problem

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// ContentType is the media type of a problem details document.
const ContentType = "application/problem+json"

// TypeBase prefixes the "type" URI of every problem this project emits; the
// suffix is the error code (for example TypeBase+"validation").
const TypeBase = "https://propalpes.co/problems/"

// Problem is an RFC 9457 problem details object. Code, Errors and Extra are
// extension members.
type Problem struct {
	Type     string      `json:"type"`
	Title    string      `json:"title"`
	Status   int         `json:"status"`
	Detail   string      `json:"detail,omitempty"`
	Instance string      `json:"instance,omitempty"`
	Code     string      `json:"code,omitempty"`
	Errors   []Violation `json:"errors,omitempty"`
	// Extra holds further extension members; keys must not collide with the
	// members above.
	Extra map[string]any `json:"-"`
}

// Violation is one entry of a problem's "errors" member, shaped as in
// RFC 9457 section 3: what is wrong (Detail) and where. A body member is
// located by Pointer, a JSON Pointer (RFC 6901) into the request body such
// as "/nombre" or "/compania/email". A URL query or path parameter, which a
// JSON Pointer cannot name, is located by Parameter, its name ("limit"); this
// member is this project's extension. Exactly one of Pointer and Parameter is
// set.
type Violation struct {
	Detail    string `json:"detail"`
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
}

// Pointer returns the JSON Pointer of a body member named field. A field
// that already is a pointer (it starts with "/") is returned as is; any
// other is one top-level member name, escaped as RFC 6901 asks ("~" as
// "~0", "/" as "~1"). Nested members are named by pointers: "/compania/email".
func Pointer(field string) string {
	if strings.HasPrefix(field, "/") {
		return field
	}
	return "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(field)
}

// BodyViolations turns the field errors of a request body into violations
// located by Pointer. It returns nil for no fields.
func BodyViolations(fields []apperr.FieldError) []Violation {
	if len(fields) == 0 {
		return nil
	}
	out := make([]Violation, len(fields))
	for i, f := range fields {
		out[i] = Violation{Pointer: Pointer(f.Field), Detail: f.Message}
	}
	return out
}

// ParameterViolations turns the field errors of URL query or path
// parameters into violations located by Parameter (the field's name). It
// returns nil for no fields.
func ParameterViolations(fields []apperr.FieldError) []Violation {
	if len(fields) == 0 {
		return nil
	}
	out := make([]Violation, len(fields))
	for i, f := range fields {
		out[i] = Violation{Parameter: f.Field, Detail: f.Message}
	}
	return out
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
// message and fields, the fields as body violations (BodyViolations: the
// application validates what a body carried); any other error becomes a generic 500 whose detail
// reveals nothing of the cause (the caller logs it).
func FromError(err error) Problem {
	e, ok := apperr.As(err)
	if !ok || e.Kind == apperr.Internal {
		return New(http.StatusInternalServerError, "internal", "an unexpected error occurred")
	}
	p := New(StatusOf(e.Kind), e.Code, e.Message)
	p.Errors = BodyViolations(e.Fields)
	return p
}

// Write sends p as the response with its status and the problem media type.
func Write(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
