package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
)

// statusClientClosedRequest is recorded (nginx's convention) when the client
// went away before the answer: there is nobody left to read a status.
const statusClientClosedRequest = 499

// requestError is a failure found by the HTTP port itself, before any use
// case runs: media type, size, JSON syntax, headers, routing. Its statuses
// (400, 404, 405, 413, 415) are HTTP matters that apperr kinds do not cover.
type requestError struct {
	status int
	code   string
	detail string
	fields []apperr.FieldError
	header http.Header // extra response headers, e.g. Accept-Patch on a 415
}

func (e *requestError) Error() string { return e.detail }

func badRequest(code, detail string) *requestError {
	return &requestError{status: http.StatusBadRequest, code: code, detail: detail}
}

// fail answers err as a problem document and aborts the chain. It is the
// only place where errors become statuses: requestErrors keep theirs, every
// other error goes through problem.FromError. A 5xx cause is logged once
// here (503 at Warn, the rest at Error); a request whose client cancelled it
// is not an error and is logged at Debug only.
func (h *handlers) fail(c *gin.Context, err error) {
	ctx := c.Request.Context()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		h.log.LogAttrs(ctx, slog.LevelDebug, "request cancelled by the client",
			slog.String("route", c.FullPath()), slog.String("request_id", c.GetString(keyRequestID)))
		c.AbortWithStatus(statusClientClosedRequest)
		return
	}
	p := problemFor(err)
	var re *requestError
	if errors.As(err, &re) {
		for k, vs := range re.header {
			c.Writer.Header()[k] = vs
		}
	}
	if p.Status >= http.StatusInternalServerError {
		h.logFailure(c, p.Status, err)
	}
	p.Instance = c.Request.URL.EscapedPath()
	if id := c.GetString(keyRequestID); id != "" {
		p.Extra = map[string]any{"request_id": id}
	}
	problem.Write(c.Writer, p)
	c.Abort()
}

// problemFor maps err to its problem: a requestError keeps its status,
// anything else goes through problem.FromError.
func problemFor(err error) problem.Problem {
	var re *requestError
	if errors.As(err, &re) {
		p := problem.New(re.status, re.code, re.detail)
		p.Errors = problem.BodyViolations(re.fields)
		return p
	}
	return problem.FromError(err)
}

func (h *handlers) logFailure(c *gin.Context, status int, err error) {
	level := slog.LevelError
	if status == http.StatusServiceUnavailable {
		level = slog.LevelWarn
	}
	h.log.LogAttrs(c.Request.Context(), level, "request failed",
		slog.Int("status", status),
		slog.String("error", err.Error()),
		slog.String("method", c.Request.Method),
		slog.String("route", c.FullPath()),
		slog.String("request_id", c.GetString(keyRequestID)),
	)
}

// writeJSON answers v as application/json. Marshalling the port's own DTOs
// cannot fail; if it ever does, the client gets a logged 500.
func (h *handlers) writeJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Data(status, "application/json", append(b, '\n'))
}
