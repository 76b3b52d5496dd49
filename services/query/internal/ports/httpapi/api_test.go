package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
	"github.com/propalpes/companias/services/query/internal/view"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)

func ptr[T any](v T) *T { return &v }

func compania(id, nombre string, created time.Time, version int64) view.Compania {
	return view.Compania{
		ID:                 id,
		Nombre:             nombre,
		Email:              strings.ToLower(nombre) + "@example.co",
		Identificacion:     "NIT-" + id,
		Estado:             "PENDIENTE",
		FechaCreacion:      created,
		FechaActualizacion: created.Add(time.Hour),
		Version:            version,
		EventTime:          created.Add(time.Hour),
		Historial:          []view.CambioEstado{{Estado: "PENDIENTE", Fecha: created, Version: 1}},
	}
}

func rechazada() view.Compania {
	c := compania("c-1", "Acme", t0, 2)
	c.Estado = "RECHAZADA"
	c.MotivoRechazo = ptr("documentos incompletos")
	c.Historial = append(c.Historial, view.CambioEstado{Estado: "RECHAZADA", Fecha: t0.Add(time.Hour), Version: 2, Motivo: ptr("documentos incompletos")})
	return c
}

func TestNewRequiresDependencies(t *testing.T) {
	t.Parallel()
	_, err := httpapi.New(httpapi.Deps{}, httpapi.Options{})
	if err == nil {
		t.Fatal("New(empty Deps) = nil error, want one")
	}
	for _, w := range []string{"Views", "Store", "Projection", "Rebuild", "Logger"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("New error %q does not name %s", err, w)
		}
	}
}

func TestGetCompania(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(rechazada()))
	rec := e.do(t, http.MethodGet, "/v1/companias/c-1")
	got := decodeJSON[map[string]any](t, rec, http.StatusOK)
	want := map[string]any{
		"id":                  "c-1",
		"nombre":              "Acme",
		"email":               "acme@example.co",
		"identificacion":      "NIT-c-1",
		"estado":              "RECHAZADA",
		"motivo_rechazo":      "documentos incompletos",
		"fecha_creacion":      "2025-03-01T10:00:00.123456789Z",
		"fecha_actualizacion": "2025-03-01T11:00:00.123456789Z",
		"version":             float64(2),
		"event_time":          "2025-03-01T11:00:00.123456789Z",
		"historial": []any{
			map[string]any{"estado": "PENDIENTE", "fecha": "2025-03-01T10:00:00.123456789Z", "version": float64(1), "motivo": nil},
			map[string]any{"estado": "RECHAZADA", "fecha": "2025-03-01T11:00:00.123456789Z", "version": float64(2), "motivo": "documentos incompletos"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body =\n%v\nwant\n%v", got, want)
	}
	if et := rec.Header().Get("ETag"); et != `"2"` {
		t.Errorf(`ETag = %q, want "2"`, et)
	}
}

func TestGetCompaniaConditional(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(rechazada()))
	tests := []struct {
		inm  string
		want int
	}{
		{`"2"`, http.StatusNotModified},
		{`W/"2"`, http.StatusNotModified},
		{`"1", "2"`, http.StatusNotModified},
		{`*`, http.StatusNotModified},
		{`"1"`, http.StatusOK},
		{`2`, http.StatusOK},
	}
	for _, tt := range tests {
		rec := e.do(t, http.MethodGet, "/v1/companias/c-1", "If-None-Match", tt.inm)
		if rec.Code != tt.want {
			t.Errorf("If-None-Match %s: status = %d, want %d", tt.inm, rec.Code, tt.want)
		}
		if rec.Code == http.StatusNotModified && (rec.Body.Len() != 0 || rec.Header().Get("ETag") != `"2"`) {
			t.Errorf("If-None-Match %s: 304 with body %q, ETag %q; want empty body and ETag", tt.inm, rec.Body, rec.Header().Get("ETag"))
		}
	}
}

func TestGetCompaniaErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 129)
	tests := []struct {
		name       string
		target     string
		storeErr   error
		status     int
		wantFields []string
		wantCode   string
	}{
		{name: "unknown id", target: "/v1/companias/nope", status: 404, wantCode: "compania_not_found"},
		{name: "id too long", target: "/v1/companias/" + long, status: 400, wantFields: []string{"id"}},
		{name: "unknown parameter", target: "/v1/companias/c-1?foo=1", status: 400, wantFields: []string{"foo"}},
		{name: "bad min_version and wait", target: "/v1/companias/c-1?min_version=0&wait=soon", status: 400, wantFields: []string{"min_version", "wait"}},
		{name: "min_version not a number", target: "/v1/companias/c-1?min_version=abc", status: 400, wantFields: []string{"min_version"}},
		{name: "wait too long", target: "/v1/companias/c-1?min_version=1&wait=11s", status: 400, wantFields: []string{"wait"}},
		{name: "negative wait", target: "/v1/companias/c-1?min_version=1&wait=-1s", status: 400, wantFields: []string{"wait"}},
		{name: "wait without min_version", target: "/v1/companias/c-1?wait=1s", status: 400, wantFields: []string{"wait"}},
		{name: "repeated min_version", target: "/v1/companias/c-1?min_version=1&min_version=2", status: 400, wantFields: []string{"min_version"}},
		{name: "store failure", target: "/v1/companias/c-1", storeErr: errors.New("socket closed"), status: 500, wantCode: "internal"},
		{name: "store unavailable", target: "/v1/companias/c-1", storeErr: apperr.New(apperr.Unavailable, "store_unavailable", "store down"), status: 503, wantCode: "store_unavailable"},
		{name: "store timeout", target: "/v1/companias/c-1", storeErr: fmt.Errorf("find: %w", context.DeadlineExceeded), status: 503, wantCode: "timeout"},
		{name: "store failure while waiting", target: "/v1/companias/c-1?min_version=5", storeErr: errors.New("socket closed"), status: 500, wantCode: "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			views := newFakeViews(rechazada())
			views.err = tt.storeErr
			e := newEnv(t, views)
			p := wantProblem(t, e.do(t, http.MethodGet, tt.target), tt.status)
			if tt.wantFields != nil && !reflect.DeepEqual(p.fields(), tt.wantFields) {
				t.Errorf("error fields = %v, want %v (%+v)", p.fields(), tt.wantFields, p.Errors)
			}
			if tt.wantCode != "" && p.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", p.Code, tt.wantCode)
			}
			if tt.status == 500 && strings.Contains(p.Detail, "socket") {
				t.Errorf("500 detail %q leaks the cause", p.Detail)
			}
		})
	}
}

func TestGetCompaniaMinVersion(t *testing.T) {
	t.Parallel()

	t.Run("already reached", func(t *testing.T) {
		t.Parallel()
		views := newFakeViews(rechazada())
		e := newEnv(t, views)
		rec := e.do(t, http.MethodGet, "/v1/companias/c-1?min_version=2&wait=0s")
		if got := decodeJSON[map[string]any](t, rec, 200); got["version"] != float64(2) {
			t.Errorf("version = %v, want 2", got["version"])
		}
		if views.calls != 1 {
			t.Errorf("store Gets = %d, want 1", views.calls)
		}
	})

	t.Run("waits until the view advances", func(t *testing.T) {
		t.Parallel()
		views := newFakeViews()
		// The view appears at the 3rd poll and gains a version at each poll after.
		views.onGet = func(calls int, items map[string]view.Compania) {
			if calls >= 3 {
				items["c-9"] = compania("c-9", "Nueva", t0, int64(calls-2))
			}
		}
		e := newEnv(t, views, func(_ *httpapi.Deps, o *httpapi.Options) { o.DefaultWait = 10 * time.Second })
		rec := e.do(t, http.MethodGet, "/v1/companias/c-9?min_version=4")
		got := decodeJSON[map[string]any](t, rec, http.StatusOK)
		if got["version"] != float64(4) || rec.Header().Get("ETag") != `"4"` {
			t.Errorf("version = %v, ETag %q; want 4", got["version"], rec.Header().Get("ETag"))
		}
		if views.calls != 6 {
			t.Errorf("store Gets = %d, want 6", views.calls)
		}
	})

	t.Run("change notification wakes the wait", func(t *testing.T) {
		t.Parallel()
		views := newFakeViews(compania("c-2", "Beta", t0, 1))
		views.onGet = func(calls int, items map[string]view.Compania) {
			items["c-2"] = compania("c-2", "Beta", t0, int64(calls))
		}
		// The polling backoff alone would take an hour: only the notifier can
		// finish this wait in time.
		e := newEnv(t, views, func(d *httpapi.Deps, o *httpapi.Options) {
			d.Changes = fakeChanges{}
			o.PollMin, o.PollMax = time.Hour, time.Hour
		})
		rec := e.do(t, http.MethodGet, "/v1/companias/c-2?min_version=3&wait=10s")
		// The shared watch may have read on past 3 before this request
		// looked: any version from 3 on answers it.
		if got := decodeJSON[map[string]any](t, rec, http.StatusOK); got["version"].(float64) < 3 {
			t.Errorf("version = %v, want at least 3", got["version"])
		}
	})

	t.Run("timeout with an older view", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newFakeViews(rechazada()))
		rec := e.do(t, http.MethodGet, "/v1/companias/c-1?min_version=3&wait=20ms")
		p := wantProblem(t, rec, http.StatusServiceUnavailable)
		if ra := rec.Header().Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After = %q, want 1", ra)
		}
		if p.Code != "version_not_reached" || p.CurrentVersion == nil || *p.CurrentVersion != 2 || p.MinVersion == nil || *p.MinVersion != 3 {
			t.Errorf("problem = %+v, want version_not_reached with current_version 2, min_version 3", p)
		}
		if !strings.Contains(p.Detail, "version 2") {
			t.Errorf("detail %q does not say which version the view has", p.Detail)
		}
		if rec.Header().Get("ETag") != "" {
			t.Errorf("503 carries ETag %q", rec.Header().Get("ETag"))
		}
	})

	t.Run("timeout with no view yet", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newFakeViews(), func(_ *httpapi.Deps, o *httpapi.Options) { o.RetryAfter = 1500 * time.Millisecond })
		rec := e.do(t, http.MethodGet, "/v1/companias/ghost?min_version=1&wait=0s")
		p := wantProblem(t, rec, http.StatusServiceUnavailable)
		if ra := rec.Header().Get("Retry-After"); ra != "2" {
			t.Errorf("Retry-After = %q, want 2 (1.5s rounded up)", ra)
		}
		if p.CurrentVersion != nil || !strings.Contains(p.Detail, "no view") {
			t.Errorf("problem = %+v, want current_version null and a detail saying there is no view yet", p)
		}
		if !strings.Contains(rec.Body.String(), `"current_version":null`) {
			t.Errorf("body %s lacks current_version: null", rec.Body)
		}
	})

	t.Run("client gives up", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, newFakeViews(), func(_ *httpapi.Deps, o *httpapi.Options) { o.PollMin, o.PollMax = time.Hour, time.Hour })
		ctx, cancel := context.WithCancel(t.Context())
		views := e.views
		views.onGet = func(int, map[string]view.Compania) { cancel() } // the client leaves during the first poll
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/companias/x?min_version=1&wait=10s", nil)
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code != 499 {
			t.Errorf("status = %d, want 499 (client closed request)", rec.Code)
		}
		if n := len(e.logs.Records(t, "msg", "http request failed")); n != 0 {
			t.Errorf("a cancelled request logged %d errors, want 0", n)
		}
	})
}

// listPage is the body of GET /v1/companias.
type listPage struct {
	Items []struct {
		ID     string `json:"id"`
		Nombre string `json:"nombre"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func manyCompanias(n int) []view.Compania {
	var out []view.Compania
	for i := range n {
		// Ties on fecha_creacion (every 3) and on nombre (every 4) exercise
		// the id tie-breaker.
		nombre := fmt.Sprintf("Empresa %02d", i/4)
		if i%2 == 0 {
			nombre = strings.ToUpper(nombre)
		}
		out = append(out, compania(fmt.Sprintf("id-%03d", i), nombre, t0.Add(time.Duration(i/3)*time.Minute), 1))
	}
	return out
}

func TestListCompaniasPaginates(t *testing.T) {
	t.Parallel()
	all := manyCompanias(47)
	for _, sortBy := range []string{"", view.SortFechaCreacion, view.SortNombre} {
		t.Run("sort="+sortBy, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, newFakeViews(all...))
			var got []string
			q := url.Values{"limit": {"10"}}
			if sortBy != "" {
				q.Set("sort", sortBy)
			}
			pages := 0
			for {
				rec := e.do(t, http.MethodGet, "/v1/companias?"+q.Encode())
				page := decodeJSON[listPage](t, rec, http.StatusOK)
				pages++
				for _, it := range page.Items {
					got = append(got, it.ID)
				}
				if page.NextCursor == nil {
					break
				}
				if pages > 10 {
					t.Fatal("pagination does not end")
				}
				q.Set("cursor", *page.NextCursor)
			}
			if pages != 5 {
				t.Errorf("pages = %d, want 5", pages)
			}
			want := make([]view.Compania, len(all))
			copy(want, all)
			sort.Slice(want, func(i, j int) bool {
				a, b := want[i], want[j]
				if sortBy == view.SortNombre {
					if la, lb := strings.ToLower(a.Nombre), strings.ToLower(b.Nombre); la != lb {
						return la < lb
					}
					return a.ID < b.ID
				}
				if !a.FechaCreacion.Equal(b.FechaCreacion) {
					return a.FechaCreacion.After(b.FechaCreacion)
				}
				return a.ID > b.ID
			})
			var wantIDs []string
			for _, c := range want {
				wantIDs = append(wantIDs, c.ID)
			}
			if !reflect.DeepEqual(got, wantIDs) {
				t.Errorf("ids across pages =\n%v\nwant\n%v", got, wantIDs)
			}
		})
	}
}

func TestListCompaniasFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(rechazada(), compania("c-2", "Beta", t0, 1)))
	rec := e.do(t, http.MethodGet, "/v1/companias?estado=rechazada&nombre=ac&identificacion=NIT-c-1&email=ACME@example.co")
	page := decodeJSON[listPage](t, rec, http.StatusOK)
	if len(page.Items) != 1 || page.Items[0].ID != "c-1" || page.NextCursor != nil {
		t.Errorf("page = %+v, want just c-1 and no cursor", page)
	}
	want := view.Filter{Estado: "RECHAZADA", NombrePrefix: "ac", Identificacion: "NIT-c-1", Email: "ACME@example.co", Sort: view.SortFechaCreacion, Limit: 20}
	if got := e.views.lastFilter(t); !reflect.DeepEqual(got, want) {
		t.Errorf("filter = %+v, want %+v", got, want)
	}
	if !strings.Contains(rec.Body.String(), `"next_cursor":null`) {
		t.Errorf("body %s lacks next_cursor: null", rec.Body)
	}

	rec = e.do(t, http.MethodGet, "/v1/companias?estado=APROBADA")
	if page := decodeJSON[listPage](t, rec, http.StatusOK); page.Items == nil || len(page.Items) != 0 {
		t.Errorf("empty result items = %#v, want []", page.Items)
	}
	if !strings.Contains(rec.Body.String(), `"items":[]`) {
		t.Errorf("empty body %s, want items: []", rec.Body)
	}
}

func TestListCompaniasRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(manyCompanias(5)...))
	page := decodeJSON[listPage](t, e.do(t, http.MethodGet, "/v1/companias?limit=2"), http.StatusOK)
	if page.NextCursor == nil {
		t.Fatal("no next_cursor on a partial list")
	}
	fechaCursor := *page.NextCursor

	tests := []struct {
		name   string
		query  string
		fields []string
	}{
		{"every bad parameter listed", "estado=ACTIVA&sort=id&limit=0&nombre=&email=nobody&cursor=!!!", []string{"cursor", "email", "estado", "limit", "nombre", "sort"}},
		{"limit too big", "limit=101", []string{"limit"}},
		{"broken encoding", "nombre=%zz&limit=0", []string{"query", "limit"}},
		{"limit not a number", "limit=ten", []string{"limit"}},
		{"unknown parameter", "page=2&estado=PENDIENTE", []string{"page"}},
		{"repeated parameter", "estado=PENDIENTE&estado=APROBADA", []string{"estado"}},
		{"garbage cursor", "cursor=bm90IGpzb24", []string{"cursor"}},
		{"cursor of another sort", "sort=nombre&cursor=" + fechaCursor, []string{"cursor"}},
		{"control characters", "nombre=a%00b", []string{"nombre"}},
		{"identificacion too long", "identificacion=" + strings.Repeat("9", 201), []string{"identificacion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := wantProblem(t, e.do(t, http.MethodGet, "/v1/companias?"+tt.query), http.StatusBadRequest)
			if !reflect.DeepEqual(p.fields(), tt.fields) {
				t.Errorf("error fields = %v, want %v (%+v)", p.fields(), tt.fields, p.Errors)
			}
			for _, fe := range p.Errors {
				if fe.Detail == "" {
					t.Errorf("parameter %s has no detail", fe.Parameter)
				}
			}
		})
	}
}

func TestListCompaniasStoreError(t *testing.T) {
	t.Parallel()
	views := newFakeViews()
	views.err = errors.New("connection reset")
	e := newEnv(t, views)
	wantProblem(t, e.do(t, http.MethodGet, "/v1/companias"), http.StatusInternalServerError)
	wantProblem(t, e.do(t, http.MethodGet, "/ingestion/compania-query"), http.StatusInternalServerError)
	wantProblem(t, e.do(t, http.MethodGet, "/ingestion/compania-query/c-1"), http.StatusInternalServerError)
	if n := len(e.logs.Records(t, "msg", "http request failed")); n != 3 {
		t.Errorf("logged %d errors for 3 failed requests, want 3 (once each)", n)
	}
}

// TestListCompaniasOperatorInjection sends a Mongo operator document in
// every parameter: each request must be refused (400) or match literally
// (200 with no items), never match everything.
func TestListCompaniasOperatorInjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(manyCompanias(30)...))
	payloads := []string{`{"$gt": ""}`, `{"$ne": null}`, `{"$regex": ".*"}`, `.*`, `^`}
	params := []string{"estado", "nombre", "identificacion", "email", "sort", "limit", "cursor"}
	for _, payload := range payloads {
		for _, param := range params {
			for _, key := range []string{param, param + "[$gt]", param + "[$ne]"} {
				q := url.Values{key: {payload}}
				rec := e.do(t, http.MethodGet, "/v1/companias?"+q.Encode())
				switch rec.Code {
				case http.StatusBadRequest:
				case http.StatusOK:
					page := decodeJSON[listPage](t, rec, http.StatusOK)
					if len(page.Items) != 0 {
						t.Errorf("%s=%s matched %d companias, want none", key, payload, len(page.Items))
					}
				default:
					t.Errorf("%s=%s: status %d, want 200 or 400", key, payload, rec.Code)
				}
			}
		}
		all := url.Values{}
		for _, p := range params {
			all.Set(p, payload)
		}
		if rec := e.do(t, http.MethodGet, "/v1/companias?"+all.Encode()); rec.Code != http.StatusBadRequest {
			t.Errorf("payload %s in every parameter: status %d, want 400", payload, rec.Code)
		}
	}
	// What reached the store is the literal text.
	for _, f := range e.views.filters {
		for _, s := range []string{f.NombrePrefix, f.Identificacion, f.Email} {
			if s != "" && !contains(payloads, s) {
				t.Errorf("store received %q, not one of the literal payloads", s)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEstadisticas(t *testing.T) {
	t.Parallel()
	views := newFakeViews()
	views.stats = view.Estadisticas{Total: 5, PorEstado: map[string]int64{"PENDIENTE": 3, "APROBADA": 2}}
	e := newEnv(t, views)
	got := decodeJSON[map[string]any](t, e.do(t, http.MethodGet, "/v1/estadisticas"), http.StatusOK)
	want := map[string]any{"total": float64(5), "por_estado": map[string]any{"PENDIENTE": float64(3), "APROBADA": float64(2), "RECHAZADA": float64(0)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body = %v, want %v", got, want)
	}
	p := wantProblem(t, e.do(t, http.MethodGet, "/v1/estadisticas?x=1"), http.StatusBadRequest)
	if !reflect.DeepEqual(p.fields(), []string{"x"}) {
		t.Errorf("fields = %v, want [x]", p.fields())
	}
	views.err = errors.New("down")
	wantProblem(t, e.do(t, http.MethodGet, "/v1/estadisticas"), http.StatusInternalServerError)
}

func TestLegacyRoutes(t *testing.T) {
	t.Parallel()
	cs := manyCompanias(130)
	cs = append(cs, rechazada())
	e := newEnv(t, newFakeViews(cs...))

	got := decodeJSON[map[string]any](t, e.do(t, http.MethodGet, "/health"), http.StatusOK)
	if !reflect.DeepEqual(got, map[string]any{"status": "up"}) {
		t.Errorf("/health = %v", got)
	}

	rec := e.do(t, http.MethodGet, "/ingestion/compania-query/c-1")
	one := decodeJSON[map[string]any](t, rec, http.StatusOK)
	want := map[string]any{
		"email":               "acme@example.co",
		"fecha_actualizacion": "2025-03-01T11:00:00Z",
		"fecha_creacion":      "2025-03-01T10:00:00Z",
		"id":                  "c-1",
		"identificacion":      "NIT-c-1",
		"nombre":              "Acme",
	}
	if !reflect.DeepEqual(one, want) {
		t.Errorf("legacy get = %v, want %v", one, want)
	}
	if wantOrder := `{"email":"acme@example.co","fecha_actualizacion":"2025-03-01T11:00:00Z","fecha_creacion":"2025-03-01T10:00:00Z","id":"c-1","identificacion":"NIT-c-1","nombre":"Acme"}`; rec.Body.String() != wantOrder {
		t.Errorf("legacy body = %s, want keys in sorted order %s", rec.Body, wantOrder)
	}

	wantProblem(t, e.do(t, http.MethodGet, "/ingestion/compania-query/ghost"), http.StatusNotFound)
	wantProblem(t, e.do(t, http.MethodGet, "/ingestion/compania-query/"+strings.Repeat("z", 200)), http.StatusBadRequest)

	list := decodeJSON[[]map[string]any](t, e.do(t, http.MethodGet, "/ingestion/compania-query"), http.StatusOK)
	if len(list) != 100 {
		t.Fatalf("legacy list has %d items, want 100", len(list))
	}
	for i, it := range list {
		if len(it) != 6 {
			t.Errorf("item %d has %d fields, want 6: %v", i, len(it), it)
		}
		if i > 0 && it["fecha_creacion"].(string) > list[i-1]["fecha_creacion"].(string) {
			t.Errorf("item %d is newer than item %d: not newest first", i, i-1)
		}
	}
	if list[0]["id"] != "id-129" {
		t.Errorf("first item = %v, want the newest (id-129)", list[0]["id"])
	}

	empty := newEnv(t, newFakeViews())
	if rec := empty.do(t, http.MethodGet, "/ingestion/compania-query"); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("empty legacy list = %d %s, want 200 []", rec.Code, rec.Body)
	}
}

func TestProyecciones(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews(), func(d *httpapi.Deps, _ *httpapi.Options) {
		d.Projection = fakeProjection{joined: true, status: []view.PartitionStatus{
			{Partition: 0, Committed: 10, HighWatermark: 12, Lag: 2, LastEventTime: t0, State: view.StateRunning},
			{Partition: 1, Committed: -1, HighWatermark: 0, Lag: 0, State: view.StateIdle},
		}}
	})
	got := decodeJSON[map[string]any](t, e.do(t, http.MethodGet, "/v1/proyecciones"), http.StatusOK)
	want := map[string]any{
		"joined":    true,
		"total_lag": float64(2),
		"partitions": []any{
			map[string]any{"partition": float64(0), "committed": float64(10), "high_watermark": float64(12), "lag": float64(2), "last_event_time": "2025-03-01T10:00:00.123456789Z", "state": "running"},
			map[string]any{"partition": float64(1), "committed": float64(-1), "high_watermark": float64(0), "lag": float64(0), "last_event_time": nil, "state": "idle"},
		},
		"rebuild": map[string]any{"state": "idle", "generation": "", "processed": float64(0), "total": float64(0), "percent": float64(0), "started_at": nil, "finished_at": nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body =\n%v\nwant\n%v", got, want)
	}
}

func TestRebuildAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews())
	idle := decodeJSON[map[string]any](t, e.do(t, http.MethodGet, "/v1/admin/rebuild"), http.StatusOK)
	if idle["state"] != "idle" {
		t.Errorf("initial state = %v, want idle", idle["state"])
	}

	rec := e.do(t, http.MethodPost, "/v1/admin/rebuild")
	started := decodeJSON[map[string]any](t, rec, http.StatusAccepted)
	if started["state"] != "running" || started["generation"] != "g2" || started["started_at"] != "2025-01-02T03:04:05Z" {
		t.Errorf("202 body = %v, want running generation g2", started)
	}
	if rec.Header().Get("Location") != "/v1/admin/rebuild" {
		t.Errorf("Location = %q", rec.Header().Get("Location"))
	}

	p := wantProblem(t, e.do(t, http.MethodPost, "/v1/admin/rebuild"), http.StatusConflict)
	if p.Code != "rebuild_running" || p.Rebuild["state"] != "running" {
		t.Errorf("409 problem = %+v, want rebuild_running with the progress", p)
	}

	e.rebuild.mu.Lock()
	e.rebuild.progress = view.RebuildProgress{State: "running", Processed: 1, Total: 3}
	e.rebuild.mu.Unlock()
	got := decodeJSON[map[string]any](t, e.do(t, http.MethodGet, "/v1/admin/rebuild"), http.StatusOK)
	if got["percent"] != 33.3 {
		t.Errorf("percent = %v, want 33.3", got["percent"])
	}

	failing := newEnv(t, newFakeViews())
	failing.rebuild.err = errors.New("mongo down")
	wantProblem(t, failing.do(t, http.MethodPost, "/v1/admin/rebuild"), http.StatusInternalServerError)
}

func TestProbes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ping   error
		joined bool
		status int
		checks map[string]string
	}{
		{"ready", nil, true, 200, map[string]string{"mongo": "ok", "consumer": "joined"}},
		{"mongo down", errors.New("no reachable servers"), true, 503, map[string]string{"mongo": "unreachable", "consumer": "joined"}},
		{"not joined", nil, false, 503, map[string]string{"mongo": "ok", "consumer": "not joined"}},
		{"both", errors.New("x"), false, 503, map[string]string{"mongo": "unreachable", "consumer": "not joined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, newFakeViews(), func(d *httpapi.Deps, _ *httpapi.Options) {
				d.Store = fakePinger{err: tt.ping}
				d.Projection = fakeProjection{joined: tt.joined}
			})
			if rec := e.do(t, http.MethodGet, "/healthz"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ok"`) {
				t.Errorf("/healthz = %d %s, want 200 ok", rec.Code, rec.Body)
			}
			rec := e.do(t, http.MethodGet, "/readyz")
			var checks map[string]string
			if tt.status == 200 {
				checks = decodeJSON[struct {
					Checks map[string]string `json:"checks"`
				}](t, rec, 200).Checks
			} else {
				checks = wantProblem(t, rec, tt.status).Checks
			}
			if !reflect.DeepEqual(checks, tt.checks) {
				t.Errorf("checks = %v, want %v", checks, tt.checks)
			}
		})
	}
}

func TestRoutingProblems(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews())
	p := wantProblem(t, e.do(t, http.MethodGet, "/v2/nothing"), http.StatusNotFound)
	if p.Code != "route_not_found" || p.Instance != "/v2/nothing" {
		t.Errorf("404 problem = %+v", p)
	}
	rec := e.do(t, http.MethodDelete, "/v1/companias/c-1")
	wantProblem(t, rec, http.StatusMethodNotAllowed)
	if rec.Header().Get("Allow") != "GET" {
		t.Errorf("Allow = %q, want GET", rec.Header().Get("Allow"))
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews())
	srv := httptest.NewServer(e.api)
	t.Cleanup(srv.Close)

	res, _ := httpGet(t, srv.URL+"/healthz", httpapi.HeaderRequestID, "abc-123")
	if got := res.Header.Get(httpapi.HeaderRequestID); got != "abc-123" {
		t.Errorf("echoed request id = %q, want abc-123", got)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("a", 129), "quote\"d"} {
		res, _ := httpGet(t, srv.URL+"/healthz", httpapi.HeaderRequestID, bad)
		got := res.Header.Get(httpapi.HeaderRequestID)
		if got == bad || len(got) != 32 {
			t.Errorf("request id for incoming %q = %q, want a fresh 32-hex id", bad, got)
		}
	}
	res, body := httpGet(t, srv.URL+"/v1/companias/ghost", httpapi.HeaderRequestID, "trace-7")
	if res.StatusCode != 404 || !strings.Contains(string(body), `"request_id":"trace-7"`) {
		t.Errorf("404 = %d %s, want request_id trace-7 in the problem", res.StatusCode, body)
	}
	logs := e.logs.Records(t, "msg", "http request")
	if len(logs) == 0 {
		t.Fatal("no access log at debug level")
	}
	last := logs[len(logs)-1]
	if last["request_id"] != "trace-7" || last["status"] != float64(404) || last["route"] != "/v1/companias/:id" || last["level"] != "DEBUG" {
		t.Errorf("access log = %v", last)
	}
}

func TestRecoveryAndErrorLoggedOnce(t *testing.T) {
	t.Parallel()
	views := newFakeViews()
	views.panicky = true
	e := newEnv(t, views)
	p := wantProblem(t, e.do(t, http.MethodGet, "/v1/companias/c-1"), http.StatusInternalServerError)
	if p.Code != "internal" || strings.Contains(p.Detail, "boom") {
		t.Errorf("panic problem = %+v, want a generic internal error", p)
	}
	panics := e.logs.Records(t, "msg", "http handler panic")
	if len(panics) != 1 || panics[0]["panic"] != "boom" || panics[0]["stack"] == "" {
		t.Errorf("panic logs = %v, want one with the value and stack", panics)
	}

	views2 := newFakeViews()
	views2.err = errors.New("disk on fire")
	e2 := newEnv(t, views2)
	wantProblem(t, e2.do(t, http.MethodGet, "/v1/companias/c-1"), http.StatusInternalServerError)
	errs := e2.logs.Records(t, "msg", "http request failed")
	if len(errs) != 1 || errs[0]["err"] != "disk on fire" || errs[0]["level"] != "ERROR" {
		t.Errorf("error logs = %v, want exactly one with the cause", errs)
	}
	// Client errors (404, 400) are answered, not logged as failures.
	e3 := newEnv(t, newFakeViews())
	wantProblem(t, e3.do(t, http.MethodGet, "/v1/companias/x"), http.StatusNotFound)
	wantProblem(t, e3.do(t, http.MethodGet, "/v1/companias?limit=0"), http.StatusBadRequest)
	if n := len(e3.logs.Records(t, "msg", "http request failed")); n != 0 {
		t.Errorf("client errors logged %d failures, want 0", n)
	}
}

// TestOpenAPIMatchesRoutes checks that /openapi.json documents exactly the
// (method, path) pairs registered in the router.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newFakeViews())
	rec := e.do(t, http.MethodGet, "/openapi.json")
	doc := decodeJSON[struct {
		OpenAPI string                                `json:"openapi"`
		Info    struct{ Title string }                `json:"info"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}](t, rec, http.StatusOK)
	// One style for both services' documents (the command API's test checks its own).
	if doc.OpenAPI != "3.1.1" || doc.Info.Title != "PropAlpes Companias — query API" {
		t.Errorf("openapi, info.title = %q, %q; want 3.1.1, \"PropAlpes Companias — query API\"", doc.OpenAPI, doc.Info.Title)
	}
	documented := map[httpapi.Route]bool{}
	opIDs := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			documented[httpapi.Route{Method: strings.ToUpper(method), Path: path}] = true
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if op.OperationID == "" || opIDs[op.OperationID] || len(op.Responses) == 0 {
				t.Errorf("%s %s: operationId %q (must be unique) with %d responses", method, path, op.OperationID, len(op.Responses))
			}
			opIDs[op.OperationID] = true
		}
	}
	registered := map[httpapi.Route]bool{}
	for _, r := range e.api.Routes() {
		registered[r] = true
	}
	if len(registered) == 0 {
		t.Fatal("no routes registered")
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s %s is not in /openapi.json", r.Method, r.Path)
		}
	}
	for r := range documented {
		if !registered[r] {
			t.Errorf("/openapi.json documents %s %s, which is not registered", r.Method, r.Path)
		}
	}
	// Every $ref resolves.
	var whole map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &whole); err != nil {
		t.Fatal(err)
	}
	for _, ref := range collectRefs(whole, nil) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var node any = whole
		for _, p := range parts {
			m, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node = m[p]
		}
		if node == nil {
			t.Errorf("$ref %s does not resolve", ref)
		}
	}
}

func collectRefs(v any, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		for k, vv := range x {
			if s, ok := vv.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = collectRefs(vv, out)
		}
	case []any:
		for _, vv := range x {
			out = collectRefs(vv, out)
		}
	}
	return out
}
