package httpkit

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

// StatusClientClosedRequest is recorded (nginx's convention) when the client
// went away before the answer: there is nobody left to read a status.
const StatusClientClosedRequest = 499

// Error is a failure found by an HTTP port itself, before any use case runs:
// media type, size, syntax, headers, parameters, routing. Its statuses (400,
// 404, 405, 413, 415…) are HTTP matters that apperr kinds do not cover;
// Fail answers it with its own status, code and detail.
type Error struct {
	Status int
	Code   string
	Detail string
	// Errors lists the offending body members or parameters, if any.
	Errors []problem.Violation
	// Header holds extra response headers, e.g. Accept-Patch on a 415.
	Header http.Header
}

// Error implements error; it returns Detail.
func (e *Error) Error() string { return e.Detail }

// BadRequest returns a 400 Error with code and detail.
func BadRequest(code, detail string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Detail: detail}
}

// Problem maps err to its problem document: an *Error keeps its status; a
// context.DeadlineExceeded that is not an application error is a retryable
// 503 "timeout" (a dependency did not answer in time); anything else goes
// through problem.FromError (application errors by kind, the rest a generic
// 500).
func Problem(err error) problem.Problem {
	var e *Error
	switch {
	case errors.As(err, &e):
		p := problem.New(e.Status, e.Code, e.Detail)
		p.Errors = e.Errors
		return p
	case errors.Is(err, context.DeadlineExceeded) && apperr.KindOf(err) == apperr.Internal:
		return problem.New(http.StatusServiceUnavailable, "timeout", "a dependency did not answer in time; retry later")
	}
	return problem.FromError(err)
}

// Fail answers err as a problem document (see Problem) and aborts the chain:
// it is the one place where a port's errors become statuses and are logged.
// A 5xx cause is logged once (503 at Warn, the rest at Error) and never
// shown; a request whose client cancelled it is not an error: it is logged at
// Debug and recorded as StatusClientClosedRequest, with no body.
func (k *Kit) Fail(c *gin.Context, err error) {
	ctx := c.Request.Context()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		k.log.LogAttrs(ctx, slog.LevelDebug, "http request cancelled by the client",
			slog.String("route", c.FullPath()), slog.String("request_id", RequestID(c)))
		c.AbortWithStatus(StatusClientClosedRequest)
		return
	}
	p := Problem(err)
	var e *Error
	if errors.As(err, &e) {
		for name, values := range e.Header {
			c.Writer.Header()[name] = values
		}
	}
	if p.Status >= http.StatusInternalServerError {
		k.logFailure(c, p.Status, err)
	}
	k.WriteProblem(c, p)
}

// WriteProblem sends p and aborts the chain. It sets p.Instance to the
// request's path when empty and adds the request id as the "request_id"
// extension member. It logs nothing: Fail does.
func (k *Kit) WriteProblem(c *gin.Context, p problem.Problem) {
	if p.Instance == "" {
		p.Instance = c.Request.URL.EscapedPath()
	}
	if id := RequestID(c); id != "" {
		if p.Extra == nil {
			p.Extra = map[string]any{}
		}
		p.Extra["request_id"] = id
	}
	problem.Write(c.Writer, p)
	c.Abort()
}

// WriteJSON answers v as application/json with status. Marshalling a port's
// own DTOs cannot fail; if it ever does, the client gets a logged 500.
func (k *Kit) WriteJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		k.Fail(c, err)
		return
	}
	c.Data(status, "application/json", append(b, '\n'))
}

// logFailure logs a failed request once: 503 at Warn (a dependency is down,
// retryable), any other status at Error.
func (k *Kit) logFailure(c *gin.Context, status int, err error) {
	level := slog.LevelError
	if status == http.StatusServiceUnavailable {
		level = slog.LevelWarn
	}
	k.log.LogAttrs(c.Request.Context(), level, "http request failed",
		slog.Int("status", status),
		slog.String("err", err.Error()),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("route", c.FullPath()),
		slog.String("request_id", RequestID(c)),
	)
}
