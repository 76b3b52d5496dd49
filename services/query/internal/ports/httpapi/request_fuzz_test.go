package httpapi

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// Fuzz targets of what GET /v1/companias/{id} reads: the path id, its query
// (min_version, wait), and If-None-Match. Seeds are in
// testdata/fuzz/<FuzzName>/.

// FuzzParseGetParams decodes a path id and a raw query as getCompania does.
// The id is refused (one "id" error) exactly when it is empty, longer than
// 128 bytes, not UTF-8 or holds a control character. Accepted parameters
// hold only min_version (≥ 1) and wait (0 to MaxWait, only with
// min_version), each once, and their canonical query decodes to the same
// parameters; refused ones are listed once each, sorted.
func FuzzParseGetParams(f *testing.F) {
	f.Fuzz(func(t *testing.T, id, rawQuery string) {
		idErrs := checkID(id)
		badID := id == "" || len(id) > maxIDLen || !utf8.ValidString(id) || strings.ContainsFunc(id, unicode.IsControl)
		if badID != (len(idErrs) > 0) || len(idErrs) > 1 || (badID && (idErrs[0].Field != "id" || idErrs[0].Message == "")) {
			t.Fatalf("id %q: errors %+v", id, idErrs)
		}

		q, qerrs := parseQuery(rawQuery)
		p, errs := parseGetParams(q, DefaultWait, DefaultMaxWait)
		checkFieldErrors(t, rawQuery, errs, q, paramMinVersion, paramWait)
		if len(qerrs) > 0 || len(errs) > 0 {
			return
		}
		for k, vs := range q {
			if (k != paramMinVersion && k != paramWait) || len(vs) != 1 {
				t.Fatalf("query %q: parameter %q=%q accepted", rawQuery, k, vs)
			}
		}
		_, hasWait := q[paramWait]
		switch {
		case p.Wait < 0 || p.Wait > DefaultMaxWait:
			t.Fatalf("query %q: wait %s accepted", rawQuery, p.Wait)
		case q.Has(paramMinVersion) != (p.MinVersion > 0) || p.MinVersion < 0:
			t.Fatalf("query %q: min_version %d accepted", rawQuery, p.MinVersion)
		case hasWait && p.MinVersion == 0:
			t.Fatalf("query %q: wait without min_version accepted", rawQuery)
		case !hasWait && p.Wait != DefaultWait:
			t.Fatalf("query %q: wait %s without a wait parameter", rawQuery, p.Wait)
		}
		canon := url.Values{}
		if p.MinVersion > 0 {
			canon.Set(paramMinVersion, strconv.FormatInt(p.MinVersion, 10))
			canon.Set(paramWait, p.Wait.String())
		}
		again, errs := parseGetParams(canon, DefaultWait, DefaultMaxWait)
		if len(errs) > 0 || again != p {
			t.Fatalf("query %q: canonical %q parses to %+v, %v; want %+v", rawQuery, canon.Encode(), again, errs, p)
		}
	})
}

// checkFieldErrors checks the errors of a parameter parser: each names a
// known parameter, a parameter of q or "query", says something, and the
// list is sorted by field and message.
func checkFieldErrors(t *testing.T, raw string, errs []apperr.FieldError, q url.Values, known ...string) {
	t.Helper()
	for _, e := range errs {
		if e.Message == "" || (e.Field != "query" && !slices.Contains(known, e.Field) && !q.Has(e.Field)) {
			t.Fatalf("query %q: field error %+v", raw, e)
		}
	}
	if !slices.IsSortedFunc(errs, func(a, b apperr.FieldError) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	}) {
		t.Fatalf("query %q: field errors not sorted: %+v", raw, errs)
	}
}

// FuzzIfNoneMatch checks the If-None-Match comparison: it matches the ETag
// of a version exactly as RFC 9110's weak comparison does for every
// well-formed header ("*" or a list of entity tags). (The request id is
// httpkit's, fuzzed there.)
func FuzzIfNoneMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, ifNoneMatch string, version int64) {
		if version < 1 {
			return
		}
		etag := `"` + strconv.FormatInt(version, 10) + `"`
		got := etagMatches(ifNoneMatch, etag)
		if tags, star, ok := parseEntityTags(ifNoneMatch); ok {
			want := star || slices.Contains(tags, strconv.FormatInt(version, 10))
			if got != want {
				t.Fatalf("If-None-Match %q against %s: %v, want %v", ifNoneMatch, etag, got, want)
			}
		}
		if !etagMatches(ifNoneMatch+", W/"+etag, etag) && ifNoneMatch != "" {
			if _, _, ok := parseEntityTags(ifNoneMatch); ok {
				t.Fatalf("If-None-Match %q, W/%s does not match %s", ifNoneMatch, etag, etag)
			}
		}
	})
}

// parseEntityTags is a reference parser of `"*" / #entity-tag` (RFC 9110
// §13.1.2, §8.8.3, §5.6.1): the opaque tags (weak or not), whether the
// header is "*", and whether it is well-formed (at least one element).
func parseEntityTags(v string) (opaque []string, star, ok bool) {
	ows := func(s string) string { return strings.TrimLeft(s, " \t") }
	s := ows(v)
	if s == "*" || strings.TrimRight(s, " \t") == "*" {
		return nil, true, true
	}
	for {
		s = ows(s)
		if strings.HasPrefix(s, ",") { // empty list elements are allowed
			s = s[1:]
			continue
		}
		if s == "" {
			return opaque, false, len(opaque) > 0
		}
		s = strings.TrimPrefix(s, "W/")
		if !strings.HasPrefix(s, `"`) {
			return nil, false, false
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return nil, false, false
		}
		tag := s[1 : 1+end]
		for i := 0; i < len(tag); i++ {
			if ch := tag[i]; !(ch == 0x21 || ch >= 0x23 && ch <= 0x7e || ch >= 0x80) {
				return nil, false, false
			}
		}
		opaque = append(opaque, tag)
		s = ows(s[2+end:])
		if s != "" && s[0] != ',' {
			return nil, false, false
		}
	}
}
