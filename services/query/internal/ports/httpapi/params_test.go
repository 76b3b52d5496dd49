package httpapi

import (
	"encoding/base64"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/services/query/internal/view"
)

func TestParseListParams(t *testing.T) {
	t.Parallel()
	cur := view.Cursor{Sort: view.SortNombre, Key: "acme", ID: "c-1"}
	tests := []struct {
		query  string
		want   view.Filter
		fields []string
	}{
		{"", view.Filter{Sort: view.SortFechaCreacion, Limit: 20}, nil},
		{"estado=aprobada&limit=100&sort=nombre&cursor=" + encodeCursor(cur),
			view.Filter{Estado: "APROBADA", Sort: view.SortNombre, Limit: 100, After: &cur}, nil},
		{"nombre=Ac%C3%A9&identificacion=900&email=a@b.co&limit=1",
			view.Filter{NombrePrefix: "Acé", Identificacion: "900", Email: "a@b.co", Sort: view.SortFechaCreacion, Limit: 1}, nil},
		{"limit=-1&estado=&sort=", view.Filter{}, []string{"estado", "limit", "sort"}},
		{"email=a%20@b", view.Filter{}, []string{"email"}},
		{"nombre=%FF", view.Filter{}, []string{"nombre"}},
		{"cursor=" + encodeCursor(cur), view.Filter{}, []string{"cursor"}}, // nombre cursor, default sort
		{"sort=bogus&cursor=" + encodeCursor(cur), view.Filter{}, []string{"sort"}},
		{"x=1&y=2&limit=2&limit=3", view.Filter{}, []string{"limit", "x", "y"}},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, fields := parseListParams(q)
		var names []string
		for _, f := range fields {
			names = append(names, f.Field)
		}
		if !reflect.DeepEqual(names, tt.fields) {
			t.Errorf("parseListParams(%q) fields = %v, want %v", tt.query, names, tt.fields)
		}
		if tt.fields == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseListParams(%q) = %+v, want %+v", tt.query, got, tt.want)
		}
	}
}

func TestParseGetParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query  string
		want   getParams
		fields []string
	}{
		{"", getParams{Wait: 2 * time.Second}, nil},
		{"min_version=7", getParams{MinVersion: 7, Wait: 2 * time.Second}, nil},
		{"min_version=7&wait=500ms", getParams{MinVersion: 7, Wait: 500 * time.Millisecond}, nil},
		{"min_version=7&wait=0s", getParams{MinVersion: 7}, nil},
		{"min_version=7&wait=10s", getParams{MinVersion: 7, Wait: 10 * time.Second}, nil},
		{"min_version=7&wait=10.001s", getParams{}, []string{"wait"}},
		{"min_version=9223372036854775808", getParams{}, []string{"min_version"}},
		{"min_version=-3&wait=2", getParams{}, []string{"min_version", "wait"}},
		{"wait=1s&x=", getParams{}, []string{"wait", "x"}},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, fields := parseGetParams(q, 2*time.Second, 10*time.Second)
		var names []string
		for _, f := range fields {
			names = append(names, f.Field)
		}
		if !reflect.DeepEqual(names, tt.fields) {
			t.Errorf("parseGetParams(%q) fields = %v, want %v", tt.query, names, tt.fields)
		}
		if tt.fields == nil && got != tt.want {
			t.Errorf("parseGetParams(%q) = %+v, want %+v", tt.query, got, tt.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []view.Cursor{
		{Sort: view.SortFechaCreacion, Key: "2025-03-01T10:00:00.123456789Z", ID: "c-1"},
		{Sort: view.SortNombre, Key: "ñandú & co", ID: "0196"},
		{Sort: view.SortNombre, Key: "", ID: "x"},
		// The longest keys of real names: 200 characters of 4 bytes, of
		// characters JSON escapes to twice their bytes, of HTML characters.
		{Sort: view.SortNombre, Key: strings.Repeat("\U0001F600", 200), ID: "0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11"},
		{Sort: view.SortNombre, Key: strings.Repeat("\u2028", 200), ID: "0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11"},
		{Sort: view.SortNombre, Key: strings.Repeat("<&>", 66), ID: "0b8e2f64-6c1e-4f57-9a53-1d5f9c0e7a11"},
		{Sort: view.SortNombre, Key: strings.Repeat("\u2028", maxCursorKeyLen/3) + "\"\\", ID: strings.Repeat("\u2028", maxIDLen/3) + "\"\\"},
	} {
		s := encodeCursor(c)
		if strings.ContainsAny(s, "+/=") {
			t.Errorf("cursor %q is not unpadded base64url", s)
		}
		got, err := decodeCursor(s)
		if err != nil || got != c {
			t.Errorf("decodeCursor(encodeCursor(%+v)) = %+v, %v", c, got, err)
		}
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"",
		"!!!",
		strings.Repeat("A", maxCursorLen+1),
		b64(`not json`),
		b64(`{"sort":"nombre","key":"a","id":"1"} {}`),
		b64(`{"sort":"nombre","key":"a","id":"1","extra":1}`),
		b64(`{"sort":"nombre","key":"a","id":""}`),
		b64(`{"sort":"id","key":"a","id":"1"}`),
		b64(`{"sort":"fecha_creacion","key":"yesterday","id":"1"}`),
		b64(`{"sort":"nombre","key":{"$gt":""},"id":"1"}`),
		b64(`{"sort":"nombre","key":"a","id":{"$gt":""}}`),
		b64(`null`),
		base64.StdEncoding.EncodeToString([]byte(`{"sort":"nombre","key":"a","id":"1"}`)) + "==",
		// Not the form encodeCursor makes.
		b64(`{"key":"a","sort":"nombre","id":"1"}`),
		b64(`{"sort":"nombre", "key":"a","id":"1"}`),
		b64(`{"sort":"nombre","key":"\u003c","id":"1"}`),
		b64(`{"sort":"nombre","key":"a","id":"1"}` + "\n"),
	} {
		if c, err := decodeCursor(s); err == nil {
			t.Errorf("decodeCursor(%q) = %+v, want an error", s, c)
		}
	}
}

func TestEtagMatches(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		header string
		want   bool
	}{
		{"", false}, {`"3"`, true}, {`W/"3"`, true}, {` "1" ,"3"`, true}, {"*", true}, {`"33"`, false}, {`3`, false},
		{`"a,*,b"`, false}, {`"a,"3",b"`, false}, {`"a,b", "3"`, true}, {`, ,`, false},
	} {
		if got := etagMatches(tt.header, `"3"`); got != tt.want {
			t.Errorf("etagMatches(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

// FuzzDecodeCursor: a cursor is refused, or has a known sort, an id of 1 to
// 128 bytes, and survives encodeCursor/decodeCursor unchanged. Seeds are in
// testdata/fuzz/FuzzDecodeCursor/.
func FuzzDecodeCursor(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if c != (view.Cursor{}) || err != errBadCursor {
				t.Fatalf("decodeCursor(%q) returned %+v with error %v", s, c, err)
			}
			return
		}
		if len(s) > maxCursorLen {
			t.Fatalf("decodeCursor accepted %d bytes", len(s))
		}
		if c.Sort != view.SortFechaCreacion && c.Sort != view.SortNombre {
			t.Fatalf("decodeCursor(%q) accepted sort %q", s, c.Sort)
		}
		if c.ID == "" || len(c.ID) > maxIDLen {
			t.Fatalf("decodeCursor(%q) accepted id %q", s, c.ID)
		}
		again, err := decodeCursor(encodeCursor(c))
		if err != nil || again != c {
			t.Fatalf("round trip of %+v = %+v, %v", c, again, err)
		}
	})
}

// FuzzParseListParams: a list query is refused with sorted errors that each
// name a parameter, or yields a filter within the limits whose canonical
// query parses to the same filter. Seeds are in
// testdata/fuzz/FuzzParseListParams/.
func FuzzParseListParams(f *testing.F) {
	known := []string{paramEstado, paramNombre, paramIdentificacion, paramEmail, paramSort, paramLimit, paramCursor}
	f.Fuzz(func(t *testing.T, raw string) {
		q, qerrs := parseQuery(raw)
		flt, fields := parseListParams(q)
		checkFieldErrors(t, raw, fields, q, known...)
		if len(fields) > 0 || len(qerrs) > 0 {
			return
		}
		if flt.Limit < 1 || flt.Limit > maxLimit {
			t.Fatalf("query %q: limit %d accepted", raw, flt.Limit)
		}
		if flt.Sort != view.SortFechaCreacion && flt.Sort != view.SortNombre {
			t.Fatalf("query %q: sort %q accepted", raw, flt.Sort)
		}
		if flt.Estado != "" && !contains(estados, flt.Estado) {
			t.Fatalf("query %q: estado %q accepted", raw, flt.Estado)
		}
		if flt.After != nil && flt.After.Sort != flt.Sort {
			t.Fatalf("query %q: cursor of sort %q accepted for sort %q", raw, flt.After.Sort, flt.Sort)
		}
		for k := range q {
			if !contains(known, k) {
				t.Fatalf("query %q: unknown parameter %q accepted", raw, k)
			}
			if len(q[k]) != 1 {
				t.Fatalf("query %q: repeated parameter %q accepted", raw, k)
			}
		}
		canon := url.Values{paramSort: {flt.Sort}, paramLimit: {strconv.Itoa(flt.Limit)}}
		for k, v := range map[string]string{paramEstado: flt.Estado, paramNombre: flt.NombrePrefix,
			paramIdentificacion: flt.Identificacion, paramEmail: flt.Email} {
			if v != "" {
				canon.Set(k, v)
			}
		}
		if flt.After != nil {
			canon.Set(paramCursor, encodeCursor(*flt.After))
		}
		again, fields := parseListParams(canon)
		if len(fields) > 0 || !reflect.DeepEqual(again, flt) {
			t.Fatalf("query %q: canonical %q parses to %+v, %v; want %+v", raw, canon.Encode(), again, fields, flt)
		}
	})
}
