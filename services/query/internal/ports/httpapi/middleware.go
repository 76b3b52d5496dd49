package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
)

// HeaderRequestID carries the request id, in and out.
const HeaderRequestID = "X-Request-Id"

// requestIDKey is the gin context key of the request id.
const requestIDKey = "request_id"

// statusClientClosedRequest is logged when the client went away before the
// answer (nginx's convention); nothing can be sent to it.
const statusClientClosedRequest = 499

// requestID adopts a well-formed incoming X-Request-Id or makes a new one,
// echoes it in the response and stores it for logs and problem bodies.
func (a *API) requestID(c *gin.Context) {
	id := c.GetHeader(HeaderRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Set(requestIDKey, id)
	c.Header(HeaderRequestID, id)
	c.Next()
}

// validRequestID accepts 1..128 characters of [A-Za-z0-9._:-], so that a
// client cannot inject anything odd into logs or headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
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

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// observeRequest reports each served request to Deps.ObserveRequest,
// labelled with the route template, never the raw path.
func (a *API) observeRequest(c *gin.Context) {
	start := time.Now()
	c.Next()
	a.deps.ObserveRequest(c.FullPath(), c.Request.Method, c.Writer.Status(), time.Since(start))
}

// accessLog logs every request at debug level once it is answered.
func (a *API) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	ctx := c.Request.Context()
	if !a.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	a.log.LogAttrs(ctx, slog.LevelDebug, "http request",
		slog.String("request_id", c.GetString(requestIDKey)),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.String("route", c.FullPath()),
		slog.Int("status", c.Writer.Status()),
		slog.Int("bytes", max(c.Writer.Size(), 0)),
		slog.Duration("duration", time.Since(start)),
		slog.String("client_ip", c.ClientIP()),
		slog.String("subject", c.GetString(subjectKey)),
	)
}

// recover turns a panic into a logged error and a 500 problem. The
// http.ErrAbortHandler sentinel is re-raised, as net/http expects.
func (a *API) recover(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if r == http.ErrAbortHandler {
			panic(r)
		}
		a.log.ErrorContext(c.Request.Context(), "http handler panic",
			slog.String("request_id", c.GetString(requestIDKey)),
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Any("panic", r),
			slog.String("stack", string(debug.Stack())),
		)
		if c.Writer.Written() {
			c.Abort()
			return
		}
		a.writeProblem(c, problem.New(http.StatusInternalServerError, "internal", "an unexpected error occurred"))
	}()
	c.Next()
}

func (a *API) noRoute(c *gin.Context) {
	a.writeProblem(c, problem.New(http.StatusNotFound, "route_not_found",
		fmt.Sprintf("no route %s %s; see /openapi.json", c.Request.Method, c.Request.URL.Path)))
}

func (a *API) noMethod(c *gin.Context) {
	a.writeProblem(c, problem.New(http.StatusMethodNotAllowed, "method_not_allowed",
		fmt.Sprintf("%s is not allowed on %s; allowed: %s", c.Request.Method, c.Request.URL.Path, c.Writer.Header().Get("Allow"))))
}

// writeProblem sends p, adding the request path as instance and the request
// id as an extension member.
func (a *API) writeProblem(c *gin.Context, p problem.Problem) {
	if p.Instance == "" {
		p.Instance = c.Request.URL.Path
	}
	if id := c.GetString(requestIDKey); id != "" {
		if p.Extra == nil {
			p.Extra = map[string]any{}
		}
		p.Extra["request_id"] = id
	}
	problem.Write(c.Writer, p)
	c.Abort()
}

// fail maps err to a response and logs it: this is the one place where
// errors of the read side become statuses, and where they are logged.
// A request cancelled by its client is neither an error nor answered; a
// timeout of a dependency is a 503; other non-application errors are 500s
// with a generic body.
func (a *API) fail(c *gin.Context, err error) {
	ctx := c.Request.Context()
	attrs := []slog.Attr{
		slog.String("request_id", c.GetString(requestIDKey)),
		slog.String("method", c.Request.Method),
		slog.String("path", c.Request.URL.Path),
		slog.Any("error", err),
	}
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		a.log.LogAttrs(ctx, slog.LevelDebug, "http request cancelled by client", attrs...)
		c.AbortWithStatus(statusClientClosedRequest)
		return
	case errors.Is(err, context.DeadlineExceeded) && apperr.KindOf(err) == apperr.Internal:
		a.log.LogAttrs(ctx, slog.LevelWarn, "http request failed", attrs...)
		a.writeProblem(c, problem.New(http.StatusServiceUnavailable, "timeout", "a dependency did not answer in time; retry later"))
		return
	}
	p := problem.FromError(err)
	switch {
	case p.Status == http.StatusServiceUnavailable: // a dependency is down: retryable
		a.log.LogAttrs(ctx, slog.LevelWarn, "http request failed", attrs...)
	case p.Status >= 500:
		a.log.LogAttrs(ctx, slog.LevelError, "http request failed", attrs...)
	}
	a.writeProblem(c, p)
}

// badRequest answers 400 listing every invalid input field.
func (a *API) badRequest(c *gin.Context, fields []apperr.FieldError) {
	p := problem.New(http.StatusBadRequest, "invalid_parameters", "the request has invalid parameters")
	p.Errors = problem.ParameterViolations(fields)
	a.writeProblem(c, p)
}
