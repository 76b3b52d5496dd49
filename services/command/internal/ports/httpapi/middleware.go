package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/telemetry/tracing"
)

// Header names handled by the middlewares.
const (
	headerRequestID   = "X-Request-Id"
	headerTraceparent = "traceparent"
)

// gin context keys.
const (
	keyRequestID   = "httpapi.request_id"
	keyTraceparent = "httpapi.traceparent"
)

const maxRequestIDLen = 128

// requestContext propagates a valid X-Request-Id (or generates one), echoes
// it in the response and keeps a valid traceparent for the commands.
func (h *handlers) requestContext(c *gin.Context) {
	id := c.Request.Header.Get(headerRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Set(keyRequestID, id)
	c.Header(headerRequestID, id)
	if tp, ok := parseTraceparent(c.Request.Header.Values(headerTraceparent)); ok {
		c.Set(keyTraceparent, tp)
	}
	c.Next()
}

// validRequestID accepts 1–128 visible ASCII characters, so a client's id can
// be logged and echoed without escaping surprises.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// parseTraceparent validates a W3C Trace Context traceparent header
// (version-traceid-parentid-flags, lower-case hex). Version 00 must be exactly
// 55 characters; a later version may carry more fields after a '-', and its
// first 55 characters are kept. Anything else — several headers, version ff,
// all-zero ids, upper case — is ignored, as the spec asks. So is one the
// tracing library cannot read (version 00 with flags beyond 02): it is kept
// only to continue the trace, through that library, here and downstream.
func parseTraceparent(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	s := values[0]
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
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
	case len(s) == 55:
	case version == "00":
		return "", false
	case s[55] != '-':
		return "", false
	}
	if _, ok := tracing.SpanContext(s[:55]); !ok {
		return "", false
	}
	return s[:55], true
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

// observeRequest reports each served request to the ObserveRequest hook,
// labelled with the route template, never the raw path.
func (h *handlers) observeRequest(c *gin.Context) {
	start := time.Now()
	c.Next()
	h.observe(c.FullPath(), c.Request.Method, c.Writer.Status(), time.Since(start))
}

// accessLog writes one Debug line per request, after it was served.
func (h *handlers) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	ctx := c.Request.Context()
	if !h.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	h.log.LogAttrs(ctx, slog.LevelDebug, "http request",
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", c.GetString(keyRequestID)),
		slog.String("subject", c.GetString(keySubject)),
	)
}

// recoverer turns a panic in a handler into a logged 500 problem. It lets
// http.ErrAbortHandler through, since that panic asks net/http to abort the
// response on purpose.
func (h *handlers) recoverer(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		err := fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		if c.Writer.Written() {
			// Too late for a problem document: log and cut the response.
			h.logFailure(c, http.StatusInternalServerError, err)
			c.Abort()
			return
		}
		h.fail(c, err)
	}()
	c.Next()
}
