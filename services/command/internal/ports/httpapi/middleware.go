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
// it in the response and keeps a valid traceparent for the commands; an
// invalid one is dropped with a Warn log of its length (the request goes on).
func (h *handlers) requestContext(c *gin.Context) {
	id := c.Request.Header.Get(headerRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Set(keyRequestID, id)
	c.Header(headerRequestID, id)
	if values := c.Request.Header.Values(headerTraceparent); len(values) > 0 {
		if tp, ok := parseTraceparent(values); ok {
			c.Set(keyTraceparent, tp)
		} else {
			// Never the value: it came from outside and may be huge.
			size := 0
			for _, v := range values {
				size += len(v)
			}
			h.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "invalid traceparent dropped",
				slog.Int("length", size), slog.Int("headers", len(values)), slog.String("request_id", id))
		}
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

// parseTraceparent returns the traceparent to keep from the request's
// traceparent header lines: the one line, under tracing.ParseTraceparent's
// rule (shared with the Kafka intake). Several lines are ignored too, as the
// W3C specification asks.
func parseTraceparent(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	return tracing.ParseTraceparent(values[0])
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
