package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
	"github.com/propalpes/companias/services/query/internal/view"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // silence gin's debug route listing
	os.Exit(m.Run())
}

// fakeViews is an in-memory view store with literal (never operator)
// filtering, both sort orders and cursor pagination.
type fakeViews struct {
	mu    sync.Mutex
	items map[string]view.Compania
	stats view.Estadisticas
	err   error // returned by every method when set
	// onGet, when set, runs before each Get (under the lock) and may
	// change the stored views; calls counts the Gets.
	onGet   func(calls int, items map[string]view.Compania)
	calls   int
	panicky bool
	filters []view.Filter // every filter List received
}

func newFakeViews(cs ...view.Compania) *fakeViews {
	f := &fakeViews{items: map[string]view.Compania{}}
	for _, c := range cs {
		f.items[c.ID] = c
	}
	return f
}

func (f *fakeViews) Get(_ context.Context, id string) (view.Compania, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicky {
		panic("boom")
	}
	f.calls++
	if f.onGet != nil {
		f.onGet(f.calls, f.items)
	}
	if f.err != nil {
		return view.Compania{}, f.err
	}
	c, ok := f.items[id]
	if !ok {
		return view.Compania{}, view.ErrNotFound
	}
	return c, nil
}

func (f *fakeViews) List(_ context.Context, flt view.Filter) (view.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, flt)
	if f.err != nil {
		return view.Page{}, f.err
	}
	var all []view.Compania
	for _, c := range f.items {
		if flt.Estado != "" && c.Estado != flt.Estado ||
			flt.NombrePrefix != "" && !strings.HasPrefix(strings.ToLower(c.Nombre), strings.ToLower(flt.NombrePrefix)) ||
			flt.Identificacion != "" && c.Identificacion != flt.Identificacion ||
			flt.Email != "" && !strings.EqualFold(c.Email, flt.Email) {
			continue
		}
		all = append(all, c)
	}
	less := func(a, b view.Compania) bool { // position order of the sort
		if flt.Sort == view.SortNombre {
			ka, kb := strings.ToLower(a.Nombre), strings.ToLower(b.Nombre)
			if ka != kb {
				return ka < kb
			}
			return a.ID < b.ID
		}
		if !a.FechaCreacion.Equal(b.FechaCreacion) {
			return a.FechaCreacion.After(b.FechaCreacion)
		}
		return a.ID > b.ID
	}
	sort.Slice(all, func(i, j int) bool { return less(all[i], all[j]) })
	if flt.After != nil {
		var pivot view.Compania
		pivot.ID = flt.After.ID
		if flt.Sort == view.SortNombre {
			pivot.Nombre = flt.After.Key
		} else {
			t, err := time.Parse(time.RFC3339Nano, flt.After.Key)
			if err != nil {
				return view.Page{}, err
			}
			pivot.FechaCreacion = t
		}
		i := sort.Search(len(all), func(i int) bool { return less(pivot, all[i]) })
		all = all[i:]
	}
	var page view.Page
	if len(all) > flt.Limit {
		all = all[:flt.Limit]
		last := all[len(all)-1]
		key := last.FechaCreacion.UTC().Format(time.RFC3339Nano)
		if flt.Sort == view.SortNombre {
			key = strings.ToLower(last.Nombre)
		}
		page.Next = &view.Cursor{Sort: flt.Sort, Key: key, ID: last.ID}
	}
	page.Items = all
	return page, nil
}

func (f *fakeViews) Estadisticas(context.Context) (view.Estadisticas, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return view.Estadisticas{}, f.err
	}
	return f.stats, nil
}

func (f *fakeViews) lastFilter(t *testing.T) view.Filter {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.filters) == 0 {
		t.Fatal("List was not called")
	}
	return f.filters[len(f.filters)-1]
}

type fakePinger struct{ err error }

func (p fakePinger) Ping(context.Context) error { return p.err }

type fakeProjection struct {
	status []view.PartitionStatus
	joined bool
}

func (p fakeProjection) Status() []view.PartitionStatus { return p.status }
func (p fakeProjection) Joined() bool                   { return p.joined }

type fakeRebuild struct {
	mu       sync.Mutex
	progress view.RebuildProgress
	err      error
	starts   int
}

func (r *fakeRebuild) Start(context.Context) (view.RebuildProgress, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return view.RebuildProgress{}, r.err
	}
	if r.progress.State == "running" {
		return view.RebuildProgress{}, apperr.New(apperr.Conflict, "rebuild_running", "a rebuild is already running")
	}
	r.starts++
	r.progress = view.RebuildProgress{State: "running", Generation: "g2", Total: 10, StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	return r.progress, nil
}

func (r *fakeRebuild) Progress() view.RebuildProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.progress
}

// fakeChanges hands out a channel that is already closed: every wait
// wakes up at once, as if the projection applied a batch.
type fakeChanges struct{}

func (fakeChanges) Changed() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// env is one API over fakes, with its log captured.
type env struct {
	api     *httpapi.API
	views   *fakeViews
	rebuild *fakeRebuild
	logs    *httpkittest.LogSink
}

type envOption func(*httpapi.Deps, *httpapi.Options)

func newEnv(t *testing.T, views *fakeViews, opts ...envOption) *env {
	t.Helper()
	e := &env{views: views, rebuild: &fakeRebuild{}, logs: &httpkittest.LogSink{}}
	deps := httpapi.Deps{
		Views:      views,
		Store:      fakePinger{},
		Projection: fakeProjection{joined: true},
		Rebuild:    e.rebuild,
		Logger:     slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	o := httpapi.Options{PollMin: time.Millisecond, PollMax: 5 * time.Millisecond}
	for _, opt := range opts {
		opt(&deps, &o)
	}
	api, err := httpapi.New(deps, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.api = api
	return e
}

// do sends a request through the API and returns the recorded response.
func (e *env) do(t *testing.T, method, target string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec
}

// problemBody is the decoded problem document of a response.
type problemBody struct {
	Type           string              `json:"type"`
	Title          string              `json:"title"`
	Status         int                 `json:"status"`
	Detail         string              `json:"detail"`
	Instance       string              `json:"instance"`
	Code           string              `json:"code"`
	RequestID      string              `json:"request_id"`
	Errors         []problem.Violation `json:"errors"`
	MinVersion     *int64              `json:"min_version"`
	CurrentVersion *int64              `json:"current_version"`
	Checks         map[string]string   `json:"checks"`
	Rebuild        map[string]any      `json:"rebuild"`
}

// wantProblem checks status and media type and decodes the problem body.
func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int) problemBody {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body, err)
	}
	if p.Status != status || p.Title == "" || !strings.HasPrefix(p.Type, "https://") {
		t.Errorf("problem = %+v, want status %d with a title and type URI", p, status)
	}
	if p.RequestID == "" || p.RequestID != rec.Header().Get(httpapi.HeaderRequestID) {
		t.Errorf("problem request_id = %q, header %q; want equal and non-empty", p.RequestID, rec.Header().Get(httpapi.HeaderRequestID))
	}
	return p
}

// fields lists the parameter names of a problem's errors, in order; an
// entry with a pointer instead is listed as "pointer:<pointer>".
func (p problemBody) fields() []string {
	var out []string
	for _, e := range p.Errors {
		if e.Pointer != "" || e.Parameter == "" {
			out = append(out, "pointer:"+e.Pointer)
			continue
		}
		out = append(out, e.Parameter)
	}
	return out
}

func decodeJSON[T any](t *testing.T, rec *httptest.ResponseRecorder, status int) T {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return v
}

// httpGet is a GET against a real server (for the few tests that need the wire).
func httpGet(t *testing.T, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}
