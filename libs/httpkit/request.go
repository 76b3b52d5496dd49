package httpkit

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/telemetry/tracing"
)

// Header names the kit reads and writes.
const (
	// HeaderRequestID carries the request id, in and out.
	HeaderRequestID = "X-Request-Id"
	// HeaderTraceparent is the W3C Trace Context header.
	HeaderTraceparent = "traceparent"
)

// gin context keys; only this package sets them, read them with the
// accessors below.
const (
	keyRequestID   = "httpkit.request_id"
	keyTraceparent = "httpkit.traceparent"
	keyClaims      = "httpkit.claims"
)

// MaxRequestIDLen is the longest X-Request-Id adopted from a client.
const MaxRequestIDLen = 128

// RequestID returns the request's id: the client's X-Request-Id when
// ValidRequestID accepts it, else one the kit generated. It is "" only
// outside an Engine's chain.
func RequestID(c *gin.Context) string { return c.GetString(keyRequestID) }

// Traceparent returns the traceparent a command should carry on: the server
// span's when the Kit has a Tracer, else the request's own valid
// traceparent, else "".
func Traceparent(c *gin.Context) string { return c.GetString(keyTraceparent) }

// ValidRequestID reports whether id may be adopted as the request id: 1 to
// MaxRequestIDLen characters of [A-Za-z0-9._:-]. The set covers UUIDs, ULIDs
// and hex ids and nothing that needs escaping in a log line, a header or a
// URL.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == ':' || b == '-') {
			return false
		}
	}
	return true
}

// NewRequestID returns a new request id: 32 lower-case hex digits of
// crypto/rand.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// requestContext adopts a valid X-Request-Id (or generates one), echoes it in
// the response and keeps a valid traceparent; an invalid traceparent is
// dropped with a Warn log of its length (the request goes on).
func (k *Kit) requestContext(c *gin.Context) {
	id := c.Request.Header.Get(HeaderRequestID)
	if !ValidRequestID(id) {
		id = NewRequestID()
	}
	c.Set(keyRequestID, id)
	c.Header(HeaderRequestID, id)
	if values := c.Request.Header.Values(HeaderTraceparent); len(values) > 0 {
		if tp, ok := parseTraceparent(values); ok {
			c.Set(keyTraceparent, tp)
		} else {
			// Never the value: it came from outside and may be huge.
			size := 0
			for _, v := range values {
				size += len(v)
			}
			k.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "invalid traceparent dropped",
				slog.Int("length", size), slog.Int("headers", len(values)), slog.String("request_id", id))
		}
	}
	c.Next()
}

// parseTraceparent returns the traceparent to keep from the request's
// traceparent header lines: the one line, under tracing.ParseTraceparent's
// rule (shared with the Kafka intake). Several lines are ignored, as the W3C
// specification asks.
func parseTraceparent(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	return tracing.ParseTraceparent(values[0])
}
