package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/contracts/companiajson"
	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// Header names of the company routes.
const (
	headerIdempotencyKey     = "Idempotency-Key"
	headerIdempotentReplayed = "Idempotent-Replayed"
	headerIfMatch            = "If-Match"
	maxIdempotencyKeyLen     = 255
)

// companiaBody is the JSON form of a company in the writer's answers.
func companiaBody(s compania.Snapshot) companiajson.Compania {
	r := companiajson.Compania{
		ID:                 s.ID,
		Nombre:             s.Nombre,
		Email:              s.Email,
		Identificacion:     s.Identificacion,
		Estado:             s.Estado.String(),
		FechaCreacion:      companiajson.Time(s.FechaCreacion),
		FechaActualizacion: companiajson.Time(s.FechaActualizacion),
		Version:            s.Version,
	}
	if s.Estado == compania.Rechazada {
		m := s.MotivoRechazo
		r.MotivoRechazo = &m
	}
	return r
}

type legacyResponse struct {
	ID string `json:"id"`
}

func location(id string) string { return "/v1/companias/" + id }

// etag is the strong entity tag of a company version.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// readCreate reads what both creating routes check before decoding: a JSON
// Content-Type, an optional Idempotency-Key and the body (MaxBodyBytes at
// most), in that order; the first refusal is the answer.
func readCreate(c *gin.Context) (key string, body []byte, err error) {
	if err := checkMediaType(c.Request, mediaJSON); err != nil {
		return "", nil, err
	}
	if key, err = idempotencyKey(c.Request.Header); err != nil {
		return "", nil, err
	}
	if body, err = readBody(c); err != nil {
		return "", nil, err
	}
	return key, body, nil
}

// crear handles POST /v1/companias → 201 with the company, Location and ETag.
// With an Idempotency-Key, a retry of the same request by the same caller
// replays the first answer (Idempotent-Replayed: true) and another request
// is a 422; keys are per caller (see API.idempotency).
func (h *API) crear(c *gin.Context) {
	key, body, err := readCreate(c)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	req, err := decodeCrear(body)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	cmd := command.CrearCompania{ID: req.ID, Datos: req.datos(), Traceparent: httpkit.Traceparent(c)}
	if cmd.Idempotency, err = h.idempotency(c, ScopeCrear, key, req); err != nil {
		h.kit.Fail(c, err)
		return
	}
	res, err := h.app.Commands.CrearCompania.Handle(c.Request.Context(), cmd)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	c.Header("Location", location(res.Compania.ID))
	h.writeCompania(c, http.StatusCreated, res)
}

// legacyCrear handles the prototype's POST /ingestion/compania-comando: the same
// use case as crear, run synchronously, answered 202 {"id"} as the prototype
// did (it promised asynchronous processing).
func (h *API) legacyCrear(c *gin.Context) {
	key, body, err := readCreate(c)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	req, err := decodeLegacy(body)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	d := req.Compania
	cmd := command.CrearCompania{
		Datos:       compania.Datos{Nombre: d.Nombre, Email: d.Email, Identificacion: d.Identificacion},
		Traceparent: httpkit.Traceparent(c),
	}
	if cmd.Idempotency, err = h.idempotency(c, ScopeLegacy, key, req); err != nil {
		h.kit.Fail(c, err)
		return
	}
	res, err := h.app.Commands.CrearCompania.Handle(c.Request.Context(), cmd)
	if err != nil {
		// The fields live under "compania" in this route's body.
		h.kit.Fail(c, prefixFields(err, "/compania"))
		return
	}
	c.Header("Location", location(res.Compania.ID))
	if res.Replayed {
		c.Header(headerIdempotentReplayed, "true")
	}
	h.kit.WriteJSON(c, http.StatusAccepted, legacyResponse{ID: res.Compania.ID})
}

// actualizar handles PATCH /v1/companias/{id} (a JSON merge patch of nombre
// and/or email) → 200 with the company and its ETag.
func (h *API) actualizar(c *gin.Context) {
	t, body, err := readChange(c, mediaJSON, mediaMergePatch)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	req, err := decodeActualizar(body)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	res, err := h.app.Commands.ActualizarCompania.Handle(c.Request.Context(), command.ActualizarCompania{
		ID:              t.id,
		Cambios:         compania.Cambios{Nombre: req.Nombre, Email: req.Email},
		ExpectedVersion: t.expected,
		Traceparent:     httpkit.Traceparent(c),
	})
	h.respond(c, res, err)
}

// aprobar handles POST /v1/companias/{id}/aprobar (no body, or {}) → 200.
func (h *API) aprobar(c *gin.Context) {
	t, body, err := readChange(c)
	if err == nil && len(body) > 0 {
		err = checkMediaType(c.Request, mediaJSON)
		if err == nil {
			err = decodeEmpty(body)
		}
	}
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	res, err := h.app.Commands.AprobarCompania.Handle(c.Request.Context(), command.AprobarCompania{
		ID:              t.id,
		ExpectedVersion: t.expected,
		Traceparent:     httpkit.Traceparent(c),
	})
	h.respond(c, res, err)
}

// rechazar handles POST /v1/companias/{id}/rechazar {"motivo"} → 200.
func (h *API) rechazar(c *gin.Context) {
	t, body, err := readChange(c, mediaJSON)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	req, err := decodeRechazar(body)
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	res, err := h.app.Commands.RechazarCompania.Handle(c.Request.Context(), command.RechazarCompania{
		ID:              t.id,
		Motivo:          req.Motivo,
		ExpectedVersion: t.expected,
		Traceparent:     httpkit.Traceparent(c),
	})
	h.respond(c, res, err)
}

// target is the company a change addresses: the id of the path and the
// version of If-Match (0 for any).
type target struct {
	id       string
	expected int64
}

// readChange reads what every change of an existing company shares, in one
// order so that every route answers the same status for the same fault: the
// path id (404), the media type when medias is not empty (415), If-Match
// (400) and the body (413).
func readChange(c *gin.Context, medias ...string) (target, []byte, error) {
	id, err := pathID(c)
	if err != nil {
		return target{}, nil, err
	}
	if len(medias) > 0 {
		if err := checkMediaType(c.Request, medias...); err != nil {
			return target{}, nil, err
		}
	}
	expected, err := expectedVersion(c.Request.Header)
	if err != nil {
		return target{}, nil, err
	}
	body, err := readBody(c)
	if err != nil {
		return target{}, nil, err
	}
	return target{id: id, expected: expected}, body, nil
}

// respond answers a change's outcome: 200 with the company, or the problem
// of its error.
func (h *API) respond(c *gin.Context, res command.Result, err error) {
	if err != nil {
		h.kit.Fail(c, err)
		return
	}
	h.writeCompania(c, http.StatusOK, res)
}

// writeCompania answers the company with its ETag; a replayed idempotent
// answer is marked with Idempotent-Replayed.
func (h *API) writeCompania(c *gin.Context, status int, res command.Result) {
	c.Header("ETag", etag(res.Compania.Version))
	if res.Replayed {
		c.Header(headerIdempotentReplayed, "true")
	}
	h.kit.WriteJSON(c, status, companiaBody(res.Compania))
}

// pathID returns the {id} path segment in canonical (lower-case) form.
//
// A segment that is not a UUID answers 404, not 400: the path names a
// resource, and no company can live at a non-UUID path, so "this resource does
// not exist" is the accurate answer (RFC 9110 §15.5.5). It is also the answer
// for an unknown UUID, so clients handle one case, and the body is never
// involved: the request itself is well-formed.
func pathID(c *gin.Context) (string, error) {
	id := c.Param("id")
	if !compania.ValidID(id) {
		return "", fmt.Errorf("path id %q is not a UUID: %w", id, compania.ErrNotFound)
	}
	return strings.ToLower(id), nil
}

// prefixFields returns err with its field names turned into JSON Pointers
// under prefix (itself a pointer), for routes whose fields are nested in the
// body.
func prefixFields(err error, prefix string) error {
	e, ok := apperr.As(err)
	if !ok || len(e.Fields) == 0 {
		return err
	}
	cp := *e
	cp.Fields = make([]apperr.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		cp.Fields[i] = apperr.FieldError{Field: prefix + problem.Pointer(f.Field), Message: f.Message}
	}
	return &cp
}

// expectedVersion turns If-Match into the command's ExpectedVersion: 0 (any)
// when absent or "*", else the version of the one strong numeric entity tag.
//
// If-Match uses strong comparison (RFC 9110 §13.1.1), so weak or non-numeric
// tags can never match one of our ETags: a header made only of those is a 412
// at once (compania.ErrVersionMismatch). A malformed header, "*" mixed with tags, or
// several different versions (the command checks a single one) is a 400.
func expectedVersion(h http.Header) (int64, error) {
	vals := h.Values(headerIfMatch)
	if len(vals) == 0 {
		return 0, nil
	}
	tags, star, ok := parseIfMatch(strings.Join(vals, ","))
	if !ok {
		return 0, httpkit.BadRequest("invalid_if_match", `If-Match must be "*" or a list of entity tags such as "3"`)
	}
	if star {
		if len(tags) > 0 {
			return 0, httpkit.BadRequest("invalid_if_match", `If-Match "*" cannot be combined with entity tags`)
		}
		return 0, nil
	}
	var version int64
	for _, t := range tags {
		v, ok := parseVersion(t.opaque)
		if t.weak || !ok || v == version {
			continue
		}
		if version != 0 {
			return 0, httpkit.BadRequest("invalid_if_match", "If-Match may name only one version")
		}
		version = v
	}
	if version == 0 {
		return 0, compania.ErrVersionMismatch
	}
	return version, nil
}

type entityTag struct {
	weak   bool
	opaque string
}

// parseIfMatch parses `"*" / #entity-tag` (RFC 9110 §13.1.1, §8.8.3); empty
// list elements are ignored, but at least one element is required.
func parseIfMatch(v string) (tags []entityTag, star, ok bool) {
	i, elements := 0, 0
	for {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		if i == len(v) {
			break
		}
		if v[i] == '*' {
			star = true
			i++
		} else {
			weak := strings.HasPrefix(v[i:], "W/")
			if weak {
				i += 2
			}
			if i >= len(v) || v[i] != '"' {
				return nil, false, false
			}
			i++
			j := i
			for j < len(v) && v[j] != '"' {
				if ch := v[j]; !(ch == 0x21 || ch >= 0x23 && ch <= 0x7e || ch >= 0x80) {
					return nil, false, false
				}
				j++
			}
			if j == len(v) {
				return nil, false, false
			}
			tags = append(tags, entityTag{weak: weak, opaque: v[i:j]})
			i = j + 1
		}
		elements++
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i < len(v) && v[i] != ',' {
			return nil, false, false
		}
	}
	return tags, star, elements > 0
}

// parseVersion accepts the canonical decimal form of a positive int64, the
// only form our ETags have.
func parseVersion(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || strconv.FormatInt(v, 10) != s {
		return 0, false
	}
	return v, true
}
