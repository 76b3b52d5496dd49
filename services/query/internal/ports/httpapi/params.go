package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/query/internal/view"
)

// List limits.
const (
	defaultLimit = 20
	maxLimit     = 100
	maxIDLen     = 128
	maxTextLen   = 200 // nombre prefix, identificacion
	maxEmailLen  = 254
	// maxCursorKeyLen bounds a nombre cursor key: a lower-cased nombre of
	// 200 characters of up to 4 bytes.
	maxCursorKeyLen = 4 * maxTextLen
	// maxCursorLen bounds an encoded cursor: the longest encodeCursor makes,
	// its key and id escaped at worst to twice their bytes (U+2028 and
	// U+2029, 3 bytes, escape to 6), in base64url.
	maxCursorLen = (64 + 2*(maxCursorKeyLen+maxIDLen) + 2) / 3 * 4
)

// Query parameters of GET /v1/companias.
const (
	paramEstado         = "estado"
	paramNombre         = "nombre"
	paramIdentificacion = "identificacion"
	paramEmail          = "email"
	paramSort           = "sort"
	paramLimit          = "limit"
	paramCursor         = "cursor"
	paramMinVersion     = "min_version"
	paramWait           = "wait"
)

var estados = companiaevent.Estados()

// parseListParams turns the query of GET /v1/companias into a filter. It
// reports every bad parameter, unknown and repeated ones included, sorted
// by field name. User input is copied into the filter as literal strings.
func parseListParams(q url.Values) (view.Filter, []apperr.FieldError) {
	f := view.Filter{Sort: view.SortFechaCreacion, Limit: defaultLimit}
	var errs fieldErrors
	errs.checkKeys(q, paramEstado, paramNombre, paramIdentificacion, paramEmail, paramSort, paramLimit, paramCursor)

	if v, ok := single(q, paramEstado); ok {
		up := strings.ToUpper(v)
		if contains(estados, up) {
			f.Estado = up
		} else {
			errs.add(paramEstado, "must be one of "+strings.Join(estados, ", "))
		}
	}
	if v, ok := single(q, paramNombre); ok {
		if msg := checkText(v, maxTextLen); msg != "" {
			errs.add(paramNombre, msg)
		} else {
			f.NombrePrefix = v
		}
	}
	if v, ok := single(q, paramIdentificacion); ok {
		if msg := checkText(v, maxTextLen); msg != "" {
			errs.add(paramIdentificacion, msg)
		} else {
			f.Identificacion = v
		}
	}
	if v, ok := single(q, paramEmail); ok {
		switch msg := checkText(v, maxEmailLen); {
		case msg != "":
			errs.add(paramEmail, msg)
		case !strings.Contains(v, "@") || strings.ContainsFunc(v, unicode.IsSpace):
			errs.add(paramEmail, "must be an email address")
		default:
			f.Email = v
		}
	}
	sortOK := true
	if v, ok := single(q, paramSort); ok {
		if v == view.SortFechaCreacion || v == view.SortNombre {
			f.Sort = v
		} else {
			sortOK = false
			errs.add(paramSort, "must be fecha_creacion or nombre")
		}
	}
	if v, ok := single(q, paramLimit); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			errs.add(paramLimit, fmt.Sprintf("must be an integer from 1 to %d", maxLimit))
		} else {
			f.Limit = n
		}
	}
	if v, ok := single(q, paramCursor); ok {
		cur, err := decodeCursor(v)
		switch {
		case err != nil:
			errs.add(paramCursor, err.Error())
		case sortOK && cur.Sort != f.Sort:
			errs.add(paramCursor, fmt.Sprintf("belongs to sort %s, not %s; restart from the first page", cur.Sort, f.Sort))
		default:
			f.After = &cur
		}
	}
	errs.checkRepeated(q)
	return f, errs.sorted()
}

// parseQuery parses a raw query string. Pairs with a broken %-encoding are
// reported (as the field "query") instead of silently dropped, as
// url.URL.Query would.
func parseQuery(raw string) (url.Values, []apperr.FieldError) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return q, []apperr.FieldError{{Field: "query", Message: "is not valid URL query encoding"}}
	}
	return q, nil
}

// getParams are the query parameters of GET /v1/companias/{id}.
type getParams struct {
	MinVersion int64         // 0: no read-your-writes wait
	Wait       time.Duration // how long to wait for MinVersion
}

// parseGetParams validates min_version (an integer ≥ 1) and wait (a Go
// duration from 0 to maxWait, only together with min_version).
func parseGetParams(q url.Values, defaultWait, maxWait time.Duration) (getParams, []apperr.FieldError) {
	p := getParams{Wait: defaultWait}
	var errs fieldErrors
	errs.checkKeys(q, paramMinVersion, paramWait)
	errs.checkRepeated(q)
	mv, hasMV := single(q, paramMinVersion)
	if hasMV {
		n, err := strconv.ParseInt(mv, 10, 64)
		if err != nil || n < 1 {
			errs.add(paramMinVersion, "must be an integer ≥ 1")
		} else {
			p.MinVersion = n
		}
	}
	if w, ok := single(q, paramWait); ok {
		d, err := time.ParseDuration(w)
		switch {
		case !hasMV:
			errs.add(paramWait, "is only allowed together with min_version")
		case err != nil:
			errs.add(paramWait, "must be a duration such as 500ms or 2s")
		case d < 0 || d > maxWait:
			errs.add(paramWait, fmt.Sprintf("must be from 0s to %s", maxWait))
		default:
			p.Wait = d
		}
	}
	return p, errs.sorted()
}

// checkID validates a path id: 1..128 bytes of printable UTF-8.
func checkID(id string) []apperr.FieldError {
	if msg := checkText(id, maxIDLen); msg != "" {
		return []apperr.FieldError{{Field: "id", Message: msg}}
	}
	return nil
}

// checkText returns why s is not acceptable as a free-text parameter, or "".
func checkText(s string, maxLen int) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxLen:
		return fmt.Sprintf("must be at most %d bytes", maxLen)
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "must not contain control characters"
	}
	return ""
}

// cursorJSON is the wire form of a view.Cursor, before base64url.
type cursorJSON struct {
	Sort string `json:"sort"`
	Key  string `json:"key"`
	ID   string `json:"id"`
}

// encodeCursor renders c as an opaque token: base64url (no padding) of its
// JSON, without HTML escaping (which would make it up to six times longer).
func encodeCursor(c view.Cursor) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(cursorJSON(c)) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// errBadCursor is the message of every undecodable cursor; the client only
// needs to know to start over.
var errBadCursor = errors.New("is not a cursor returned by this API")

// decodeCursor parses a token made by encodeCursor and checks that its key
// fits its sort order. Only encodeCursor's own form is accepted, so that
// every accepted cursor is one the API could have made, within maxCursorLen.
func decodeCursor(s string) (view.Cursor, error) {
	if s == "" || len(s) > maxCursorLen {
		return view.Cursor{}, errBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return view.Cursor{}, errBadCursor
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var cj cursorJSON
	if err := dec.Decode(&cj); err != nil || dec.More() { // More: trailing data
		return view.Cursor{}, errBadCursor
	}
	if checkText(cj.ID, maxIDLen) != "" {
		return view.Cursor{}, errBadCursor
	}
	switch cj.Sort {
	case view.SortFechaCreacion:
		if _, err := time.Parse(time.RFC3339Nano, cj.Key); err != nil {
			return view.Cursor{}, errBadCursor
		}
	case view.SortNombre:
		if !utf8.ValidString(cj.Key) || len(cj.Key) > maxCursorKeyLen {
			return view.Cursor{}, errBadCursor
		}
	default:
		return view.Cursor{}, errBadCursor
	}
	if encodeCursor(view.Cursor(cj)) != s {
		return view.Cursor{}, errBadCursor
	}
	return view.Cursor(cj), nil
}

// fieldErrors accumulates the problems of one request's parameters.
type fieldErrors []apperr.FieldError

func (e *fieldErrors) add(field, msg string) {
	*e = append(*e, apperr.FieldError{Field: field, Message: msg})
}

// checkKeys reports each parameter that is not in allowed.
func (e *fieldErrors) checkKeys(q url.Values, allowed ...string) {
	for k := range q {
		switch {
		case contains(allowed, k):
		case k == "":
			e.add("query", "has a parameter without a name")
		case len(allowed) == 0:
			e.add(k, "is not a known parameter; this route takes none")
		default:
			e.add(k, "is not a known parameter; allowed: "+strings.Join(allowed, ", "))
		}
	}
}

// checkRepeated reports each named parameter given more than once.
func (e *fieldErrors) checkRepeated(q url.Values) {
	for k, v := range q {
		if len(v) > 1 && k != "" {
			e.add(k, "must be given at most once")
		}
	}
}

// sorted returns the errors ordered by field then message (maps have no order).
func (e fieldErrors) sorted() []apperr.FieldError {
	if len(e) == 0 {
		return nil
	}
	sort.Slice(e, func(i, j int) bool {
		if e[i].Field != e[j].Field {
			return e[i].Field < e[j].Field
		}
		return e[i].Message < e[j].Message
	})
	return e
}

// single returns the first value of key and whether it is present.
func single(q url.Values, key string) (string, bool) {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
