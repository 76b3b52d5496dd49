package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// Accepted request media types.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
)

// Codes of the problems the decoders produce.
const (
	codeMalformed    = "malformed_request"
	codeUnsupported  = "unsupported_media_type"
	codeTooLarge     = "request_too_large"
	codeInvalidInput = "validation"
)

// checkMediaType answers 415 unless the Content-Type is one of accepted with
// no charset other than UTF-8 (the only encoding JSON allows, RFC 8259).
func checkMediaType(r *http.Request, accepted ...string) error {
	ct := r.Header.Get("Content-Type")
	want := strings.Join(accepted, " or ")
	unsupported := func(detail string) error {
		e := &httpkit.Error{Status: http.StatusUnsupportedMediaType, Code: codeUnsupported, Detail: detail}
		if r.Method == http.MethodPatch {
			e.Header = http.Header{"Accept-Patch": {strings.Join(accepted, ", ")}}
		}
		return e
	}
	if ct == "" {
		return unsupported("a Content-Type header is required: " + want)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(accepted, mt) {
		return unsupported(fmt.Sprintf("Content-Type %q is not supported; use %s", ct, want))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return unsupported(fmt.Sprintf("charset %q is not supported; JSON must be UTF-8", cs))
	}
	return nil
}

// readBody reads the whole request body, at most MaxBodyBytes (413 beyond).
func readBody(c *gin.Context) ([]byte, error) {
	r := c.Request
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge()
	case err != nil:
		if ctxErr := r.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("read request body: %w", ctxErr)
		}
		return nil, httpkit.BadRequest(codeMalformed, "the request body could not be read")
	}
	return b, nil
}

func tooLarge() error {
	return &httpkit.Error{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge,
		Detail: fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes)}
}

// object is a decoded JSON object whose member values are still raw. Keys
// are matched exactly (encoding/json would match them case-insensitively).
type object map[string]json.RawMessage

// decodeObject parses body as exactly one JSON object: UTF-8, no duplicate
// member names, nothing but white space after it. Every failure is a 400.
func decodeObject(body []byte) (object, error) {
	if !utf8.Valid(body) {
		return nil, httpkit.BadRequest(codeMalformed, "the request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, httpkit.BadRequest(codeMalformed, "the request body is empty; a JSON object is required")
	}
	if err != nil {
		return nil, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, httpkit.BadRequest(codeMalformed, "the request body must be a JSON object")
	}
	obj := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		name, ok := tok.(string)
		if !ok { // unreachable: the decoder only yields strings as object keys
			return nil, httpkit.BadRequest(codeMalformed, "the request body is not valid JSON")
		}
		if _, dup := obj[name]; dup {
			return nil, httpkit.BadRequest(codeMalformed, fmt.Sprintf("duplicate member %q in the JSON object", name))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err)
		}
		obj[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, httpkit.BadRequest(codeMalformed, "unexpected data after the JSON object")
	}
	return obj, nil
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return httpkit.BadRequest(codeMalformed, fmt.Sprintf("the request body is not valid JSON: %v (at byte %d)", se, se.Offset))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return httpkit.BadRequest(codeMalformed, "the request body is not valid JSON: unexpected end of input")
	}
	return httpkit.BadRequest(codeMalformed, "the request body is not valid JSON: "+err.Error())
}

// shape collects the unknown and mistyped members of one request object so
// that a single 400 lists them all.
type shape struct {
	prefix string // JSON Pointer of the object, "" for the body itself, e.g. "/compania"
	errs   []apperr.FieldError
}

// known reports every member of obj not in names.
func (s *shape) known(obj object, names ...string) {
	var unknown []string
	for k := range obj {
		if !slices.Contains(names, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		s.errs = append(s.errs, apperr.FieldError{Field: s.prefix + problem.Pointer(k), Message: "unknown field"})
	}
}

// str reads a string member: absent and null give ("", false).
func (s *shape) str(obj object, name string) (string, bool) {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return "", false
	}
	var v string
	if raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		s.errs = append(s.errs, apperr.FieldError{Field: s.prefix + problem.Pointer(name), Message: "must be a string"})
		return "", false
	}
	return v, true
}

func (s *shape) err() error {
	if len(s.errs) == 0 {
		return nil
	}
	parts := make([]string, len(s.errs))
	for i, f := range s.errs {
		parts[i] = fmt.Sprintf("%s: %s", f.Field, f.Message)
	}
	return &httpkit.Error{Status: http.StatusBadRequest, Code: codeMalformed,
		Detail: "the request body does not have the expected shape: " + strings.Join(parts, "; "),
		Errors: problem.BodyViolations(s.errs)}
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// crearRequest is the body of POST /v1/companias. Its JSON form (with id
// omitted when empty) is the canonical request that the idempotency hash covers.
type crearRequest struct {
	ID             string `json:"id,omitempty"`
	Nombre         string `json:"nombre"`
	Email          string `json:"email"`
	Identificacion string `json:"identificacion"`
}

func (r crearRequest) datos() compania.Datos {
	return compania.Datos{Nombre: r.Nombre, Email: r.Email, Identificacion: r.Identificacion}
}

// decodeCrear parses {"id"?, "nombre", "email", "identificacion"}. A missing
// or null member is left empty for the domain to report as required.
func decodeCrear(body []byte) (crearRequest, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return crearRequest{}, err
	}
	var s shape
	s.known(obj, "id", "nombre", "email", "identificacion")
	var r crearRequest
	r.ID, _ = s.str(obj, "id")
	r.Nombre, _ = s.str(obj, "nombre")
	r.Email, _ = s.str(obj, "email")
	r.Identificacion, _ = s.str(obj, "identificacion")
	if err := s.err(); err != nil {
		return crearRequest{}, err
	}
	return r, nil
}

// legacyRequest is the body of the prototype's POST
// /ingestion/compania-comando; its JSON form is the canonical request.
type legacyRequest struct {
	Compania legacyCompania `json:"compania"`
}

type legacyCompania struct {
	Nombre         string `json:"nombre"`
	Email          string `json:"email"`
	Identificacion string `json:"identificacion"`
}

// decodeLegacy parses {"compania": {"nombre", "email", "identificacion"}}.
// A missing or null "compania" is a 422 naming it.
func decodeLegacy(body []byte) (legacyRequest, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return legacyRequest{}, err
	}
	var s shape
	s.known(obj, "compania")
	raw, ok := obj["compania"]
	if !ok || isNull(raw) {
		if err := s.err(); err != nil {
			return legacyRequest{}, err
		}
		return legacyRequest{}, apperr.Validation(codeInvalidInput, "the request has invalid fields",
			[]apperr.FieldError{{Field: "compania", Message: "compania is required"}})
	}
	if raw[0] != '{' {
		s.errs = append(s.errs, apperr.FieldError{Field: "compania", Message: "must be a JSON object"})
		return legacyRequest{}, s.err()
	}
	inner, err := decodeObject(raw)
	if err != nil {
		return legacyRequest{}, err
	}
	s.prefix = "/compania"
	s.known(inner, "nombre", "email", "identificacion")
	var r legacyRequest
	r.Compania.Nombre, _ = s.str(inner, "nombre")
	r.Compania.Email, _ = s.str(inner, "email")
	r.Compania.Identificacion, _ = s.str(inner, "identificacion")
	if err := s.err(); err != nil {
		return legacyRequest{}, err
	}
	return r, nil
}

// actualizarRequest is the body of PATCH /v1/companias/{id}: a JSON merge
// patch (RFC 7396) of nombre and/or email. A nil field is left unchanged.
type actualizarRequest struct {
	Nombre *string
	Email  *string
}

// decodeActualizar parses {"nombre"?, "email"?}. null would mean "remove
// the member" in a merge patch; both members are required, so it is a 422.
func decodeActualizar(body []byte) (actualizarRequest, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return actualizarRequest{}, err
	}
	var s shape
	s.known(obj, "nombre", "email")
	var r actualizarRequest
	var nulls []apperr.FieldError
	for _, f := range []struct {
		name string
		dst  **string
	}{{"nombre", &r.Nombre}, {"email", &r.Email}} {
		if raw, ok := obj[f.name]; ok && isNull(raw) {
			nulls = append(nulls, apperr.FieldError{Field: f.name, Message: "cannot be removed (null)"})
			continue
		}
		if v, ok := s.str(obj, f.name); ok {
			*f.dst = &v
		}
	}
	if err := s.err(); err != nil {
		return actualizarRequest{}, err
	}
	if err := apperr.Validation(codeInvalidInput, "the request has invalid fields", nulls); err != nil {
		return actualizarRequest{}, err
	}
	return r, nil
}

// rechazarRequest is the body of POST /v1/companias/{id}/rechazar.
type rechazarRequest struct {
	Motivo string
}

// decodeRechazar parses {"motivo"}; a missing or null motivo is left empty
// for the domain to report as required.
func decodeRechazar(body []byte) (rechazarRequest, error) {
	obj, err := decodeObject(body)
	if err != nil {
		return rechazarRequest{}, err
	}
	var s shape
	s.known(obj, "motivo")
	var r rechazarRequest
	r.Motivo, _ = s.str(obj, "motivo")
	if err := s.err(); err != nil {
		return rechazarRequest{}, err
	}
	return r, nil
}

// decodeEmpty accepts the optional body of POST …/aprobar: nothing, or a
// JSON object without members.
func decodeEmpty(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	obj, err := decodeObject(body)
	if err != nil {
		return err
	}
	var s shape
	s.known(obj)
	return s.err()
}

// requestHash identifies a canonical request for idempotency: the SHA-256 of
// its JSON re-encoding, so white space and member order do not matter.
func requestHash(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("hash request: %w", err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}
