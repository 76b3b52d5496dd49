// Package apperr classifies application errors by kind so that each port
// (HTTP, Kafka) can map them to its own vocabulary in exactly one place.
//
// Domain and application code return *Error values (or wrap them with %w);
// adapters call KindOf to decide on a status code or a dead-letter reason.
// Matching is always done with errors.As, never by comparing strings.
package apperr

import (
	"errors"
	"strings"
)

// Kind is the category of an application error. The zero value is Internal.
type Kind int

const (
	// Internal is an unexpected failure: a bug or an unavailable dependency.
	Internal Kind = iota
	// Invalid means the input broke a validation rule; Fields names each bad field.
	Invalid
	// NotFound means the addressed entity does not exist.
	NotFound
	// Conflict means the request clashes with current state: a uniqueness rule,
	// an illegal state transition or a concurrent modification.
	Conflict
	// PreconditionFailed means a precondition supplied by the caller (such as
	// an expected version) does not hold.
	PreconditionFailed
	// Unavailable means a dependency is temporarily unreachable; retrying may help.
	Unavailable
	// Unauthenticated means the caller did not prove who it is: credentials
	// are missing or invalid (expired, badly signed, meant for someone else).
	Unauthenticated
	// Forbidden means the caller is known but not allowed to do this, for
	// example because its token lacks a required scope.
	Forbidden
)

// String returns the lower-case name of the kind.
func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not_found"
	case Conflict:
		return "conflict"
	case PreconditionFailed:
		return "precondition_failed"
	case Unavailable:
		return "unavailable"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	default:
		return "internal"
	}
}

// FieldError describes one invalid input field. Field uses the wire name
// (for example "nombre" or "email").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an application error with a kind, a stable machine-readable code,
// a message that is safe to show to clients, and optionally the offending fields.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Fields  []FieldError
	// Err is an optional cause; it is never shown to clients.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field)
		b.WriteString(" ")
		b.WriteString(f.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Kind and Code, so that
// sentinel errors can be matched with errors.Is even when copied with fields.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && t.Code == e.Code
}

// New returns an *Error of the given kind.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Validation returns an Invalid error listing every bad field, or nil when
// fields is empty.
func Validation(code, message string, fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Code: code, Message: message, Fields: fields}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
// A nil error has kind Internal; callers check for nil first.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
