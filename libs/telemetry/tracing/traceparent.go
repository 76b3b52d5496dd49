package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// MaxTraceparentLen is the longest traceparent value ParseTraceparent
// looks at. Version 00 has exactly 55 characters; a later version may append
// fields, but nothing the services keep lies beyond the first 55, so a longer
// value is refused whole rather than scanned (it came from outside: an HTTP
// header, a Kafka command header).
const MaxTraceparentLen = 512

// traceparentLen is the length of the fields every version shares:
// version-traceid-parentid-flags.
const traceparentLen = 55

// ParseTraceparent is the services' one rule for a W3C Trace Context
// traceparent received from outside (the HTTP port, the Kafka command
// intake): it returns the value to keep and continue the trace with — the
// first 55 characters, version-traceid-parentid-flags — and true, or "" and
// false when s must be ignored.
//
// Kept: lower-case hex fields, version not ff, trace and parent ids not all
// zero; version 00 exactly 55 characters, a later version 55 or more with a
// '-' after the flags; at most MaxTraceparentLen characters; and readable by
// the tracing library as that trace and parent (so version 00 with flags
// beyond 02 is ignored). Anything else is ignored, as the specification
// asks: the caller starts a new trace, or stores none, and goes on.
func ParseTraceparent(s string) (string, bool) {
	if len(s) < traceparentLen || len(s) > MaxTraceparentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return "", false
	}
	version, traceID, parentID, flags := s[0:2], s[3:35], s[36:52], s[53:55]
	if !lowerHex(version) || version == "ff" || !lowerHex(traceID) || !lowerHex(parentID) || !lowerHex(flags) {
		return "", false
	}
	if allZero(traceID) || allZero(parentID) {
		return "", false
	}
	switch {
	case len(s) == traceparentLen:
	case version == "00":
		return "", false
	case s[traceparentLen] != '-':
		return "", false
	}
	s = s[:traceparentLen]
	if _, ok := extract(s); !ok {
		return "", false
	}
	return s, true
}

// extract reads tp with the tracing library alone.
func extract(tp string) (trace.SpanContext, bool) {
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	sc := trace.SpanContextFromContext(ctx)
	return sc, sc.IsValid()
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
