package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
	"github.com/propalpes/companias/services/query/internal/view"
)

//go:embed openapi.json
var openAPIDoc []byte

func (a *API) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", openAPIDoc)
}

func (a *API) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 when the view store answers a ping and the consumer has
// joined its group, else 503 with the failing checks.
func (a *API) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.opts.ReadyTimeout)
	defer cancel()
	checks := map[string]string{"mongo": "ok", "consumer": "joined"}
	ready := true
	if err := a.deps.Store.Ping(ctx); err != nil {
		if c.Request.Context().Err() != nil {
			a.kit.Fail(c, c.Request.Context().Err())
			return
		}
		a.log.WarnContext(ctx, "readiness: view store unreachable",
			"request_id", httpkit.RequestID(c), "err", err)
		checks["mongo"] = "unreachable"
		ready = false
	}
	if !a.deps.Projection.Joined() {
		checks["consumer"] = "not joined"
		ready = false
	}
	if !ready {
		p := problem.New(http.StatusServiceUnavailable, "not_ready", "the service is not ready to serve reads")
		p.Extra = map[string]any{"checks": checks}
		a.kit.WriteProblem(c, p)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
}

// getCompania serves GET /v1/companias/{id}[?min_version=N[&wait=D]].
func (a *API) getCompania(c *gin.Context) {
	id := c.Param("id")
	var (
		q      url.Values // most reads have no query: they build no url.Values
		fields []apperr.FieldError
	)
	if raw := c.Request.URL.RawQuery; raw != "" {
		q, fields = parseQuery(raw)
	}
	fields = append(fields, checkID(id)...)
	p, perrs := parseGetParams(q, a.opts.DefaultWait, a.opts.MaxWait)
	if fields = append(fields, perrs...); len(fields) > 0 {
		a.badRequest(c, fields)
		return
	}
	var (
		v   view.Compania
		err error
	)
	if p.MinVersion > 0 {
		var reached bool
		v, reached, err = a.waitForVersion(c.Request.Context(), id, p.MinVersion, p.Wait)
		if errors.Is(err, errTooManyWaits) {
			a.tooManyWaits(c)
			return
		}
		if err == nil && !reached {
			a.versionNotReached(c, id, p.MinVersion, v)
			return
		}
	} else {
		v, err = a.deps.Views.Get(c.Request.Context(), id)
	}
	if err != nil {
		a.kit.Fail(c, err)
		return
	}
	etag := `"` + strconv.FormatInt(v.Version, 10) + `"`
	c.Header("ETag", etag)
	c.Header("Cache-Control", "no-cache")
	if etagMatches(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.JSON(http.StatusOK, toCompaniaDTO(v))
}

// versionNotReached answers 503 with Retry-After when a read-your-writes
// wait ends before the view reaches the requested version.
func (a *API) versionNotReached(c *gin.Context, id string, want int64, have view.Compania) {
	var detail string
	current := any(nil)
	if have.Version > 0 {
		detail = fmt.Sprintf("the view of compania %s is at version %d, not yet %d; retry later", id, have.Version, want)
		current = have.Version
	} else {
		detail = fmt.Sprintf("there is no view of compania %s yet (waiting for version %d); retry later", id, want)
	}
	p := problem.New(http.StatusServiceUnavailable, "version_not_reached", detail)
	p.Extra = map[string]any{"min_version": want, "current_version": current}
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(a.opts.RetryAfter.Seconds()))))
	a.kit.WriteProblem(c, p)
}

// tooManyWaits answers 503 with Retry-After when Options.MaxWaits
// read-your-writes waits are already running.
func (a *API) tooManyWaits(c *gin.Context) {
	p := problem.New(http.StatusServiceUnavailable, "too_many_waits",
		"too many requests are waiting for a version on this replica; retry later, or read without min_version")
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(a.opts.RetryAfter.Seconds()))))
	a.kit.WriteProblem(c, p)
}

// etagMatches implements the weak comparison of If-None-Match (RFC 9110
// §13.1.2): "*", or a listed entity tag, weak or strong, with etag's opaque
// tag. A comma inside a quoted tag does not separate the list.
func etagMatches(header, etag string) bool {
	for more := header != ""; more; {
		var elem string
		elem, header, more = nextListElement(header)
		elem = strings.TrimSpace(elem)
		if elem == "*" || strings.TrimPrefix(elem, "W/") == etag {
			return true
		}
	}
	return false
}

// nextListElement splits s at its first comma outside a quoted string;
// more is false when there is none.
func nextListElement(s string) (elem, rest string, more bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				return s[:i], s[i+1:], true
			}
		}
	}
	return s, "", false
}

// listCompanias serves GET /v1/companias.
func (a *API) listCompanias(c *gin.Context) {
	q, fields := parseQuery(c.Request.URL.RawQuery)
	f, perrs := parseListParams(q)
	if fields = append(fields, perrs...); len(fields) > 0 {
		a.badRequest(c, fields)
		return
	}
	page, err := a.deps.Views.List(c.Request.Context(), f)
	if err != nil {
		a.kit.Fail(c, err)
		return
	}
	out := listDTO{Items: make([]companiaDTO, 0, len(page.Items))}
	for _, v := range page.Items {
		out.Items = append(out.Items, toCompaniaDTO(v))
	}
	if page.Next != nil {
		next := *page.Next
		next.Sort = f.Sort
		s := encodeCursor(next)
		out.NextCursor = &s
	}
	c.JSON(http.StatusOK, out)
}

// estadisticas serves GET /v1/estadisticas.
func (a *API) estadisticas(c *gin.Context) {
	if c.Request.URL.RawQuery != "" {
		q, fields := parseQuery(c.Request.URL.RawQuery)
		var errs fieldErrors
		errs.checkKeys(q)
		if fields = append(fields, errs.sorted()...); len(fields) > 0 {
			a.badRequest(c, fields)
			return
		}
	}
	e, err := a.deps.Views.Estadisticas(c.Request.Context())
	if err != nil {
		a.kit.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toEstadisticasDTO(e))
}

// proyecciones serves GET /v1/proyecciones.
func (a *API) proyecciones(c *gin.Context) {
	c.JSON(http.StatusOK, toProyeccionesDTO(a.deps.Projection.Status(), a.deps.Projection.Joined(), a.deps.Rebuild.Progress()))
}

// startRebuild serves POST /v1/admin/rebuild: 202 with the progress, 409 if
// a rebuild is already running.
func (a *API) startRebuild(c *gin.Context) {
	p, err := a.deps.Rebuild.Start(c.Request.Context())
	if err != nil {
		if apperr.KindOf(err) == apperr.Conflict {
			a.writeProblemWithProgress(c, problem.FromError(err), a.deps.Rebuild.Progress())
			return
		}
		a.kit.Fail(c, err)
		return
	}
	c.Header("Location", "/v1/admin/rebuild")
	c.JSON(http.StatusAccepted, toRebuildDTO(p))
}

func (a *API) writeProblemWithProgress(c *gin.Context, p problem.Problem, rb view.RebuildProgress) {
	p.Extra = map[string]any{"rebuild": toRebuildDTO(rb)}
	a.kit.WriteProblem(c, p)
}

// rebuildProgress serves GET /v1/admin/rebuild.
func (a *API) rebuildProgress(c *gin.Context) {
	c.JSON(http.StatusOK, toRebuildDTO(a.deps.Rebuild.Progress()))
}

// legacyHealth serves the prototype's GET /health.
func (a *API) legacyHealth(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "up"})
}

// legacyGet serves the prototype's GET /ingestion/compania-query/{id}.
func (a *API) legacyGet(c *gin.Context) {
	id := c.Param("id")
	if fields := checkID(id); len(fields) > 0 {
		a.badRequest(c, fields)
		return
	}
	v, err := a.deps.Views.Get(c.Request.Context(), id)
	if err != nil {
		a.kit.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toLegacyDTO(v))
}

// legacyList serves the prototype's GET /ingestion/compania-query: the
// newest companies (up to 100) as a JSON array of the six-field body.
func (a *API) legacyList(c *gin.Context) {
	page, err := a.deps.Views.List(c.Request.Context(), view.Filter{Sort: view.SortFechaCreacion, Limit: maxLimit})
	if err != nil {
		a.kit.Fail(c, err)
		return
	}
	out := make([]legacyDTO, 0, len(page.Items))
	for _, v := range page.Items {
		out = append(out, toLegacyDTO(v))
	}
	c.JSON(http.StatusOK, out)
}
