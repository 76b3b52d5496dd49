package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Size of the consistency workload.
const (
	consistencyCompanias = 1000
	consistencyClients   = 16
	// consistencyReaders bounds the concurrent reads of the views: each
	// holds a PostgreSQL connection of FerretDB, and the server's
	// max_connections (100) is shared by every test on the machine.
	consistencyReaders = 8
)

// TestEndToEndConsistency drives the writer's HTTP API with concurrent
// clients (creates, updates, approvals, rejections, duplicates, idempotent
// retries and refused transitions), then checks that the reader converges on
// exactly what PostgreSQL holds: every view field by field, the statistics,
// and that the number of successful state changes equals SUM(version).
func TestEndToEndConsistency(t *testing.T) {
	in := startInfra(t)
	writer := in.startWriter(t)
	reader := in.startReader(t)
	ctx := t.Context()

	var (
		changes atomic.Int64 // successful state changes answered by the writer
		mu      sync.Mutex
		final   = make(map[string]int64, consistencyCompanias) // id → last version answered
		byIndex = make([]string, consistencyCompanias)         // i → id
		errs    []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}

	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range consistencyClients {
		wg.Go(func() {
			for i := range work {
				id, version, ok := driveCompania(ctx, writer.base, i, &changes, fail)
				if ok {
					mu.Lock()
					final[id] = version
					byIndex[i] = id
					mu.Unlock()
				}
			}
		})
	}
	for i := range consistencyCompanias {
		work <- i
	}
	close(work)
	wg.Wait()

	// Contention: concurrent PATCHes of one company each change it once,
	// with distinct versions (no lost update), or are refused with 409.
	contended := make(chan int)
	for range consistencyClients {
		wg.Go(func() {
			for i := range contended {
				id := byIndex[i]
				mu.Lock()
				before := final[id]
				mu.Unlock()
				if id == "" {
					continue
				}
				last, n := raceUpdates(ctx, writer.base, id, i, before, fail)
				changes.Add(n)
				mu.Lock()
				final[id] = last
				mu.Unlock()
			}
		})
	}
	for i := 5; i < consistencyCompanias; i += 20 {
		contended <- i
	}
	close(contended)
	wg.Wait()
	writeTime := time.Since(start)
	if len(errs) > 0 {
		sort.Strings(errs)
		t.Fatalf("%d unexpected writer answers, the first ones:\n%s", len(errs), joinFirst(errs, 20))
	}

	// PostgreSQL is the truth: it holds exactly the companies answered 201,
	// at the versions last answered, and one version per state change.
	rows := in.pgCompanias(t)
	if len(rows) != consistencyCompanias || len(final) != consistencyCompanias {
		t.Fatalf("PostgreSQL holds %d companies and the writer answered %d creations; want %d",
			len(rows), len(final), consistencyCompanias)
	}
	var sum int64
	for id, v := range final {
		row, ok := rows[id]
		switch {
		case !ok:
			t.Errorf("company %s answered 201 is not in PostgreSQL", id)
		case row.Version != v:
			t.Errorf("company %s: PostgreSQL version %d, the last answer said %d", id, row.Version, v)
		}
	}
	if err := in.db.QueryRow(ctx, `SELECT COALESCE(SUM(version), 0) FROM companias`).Scan(&sum); err != nil {
		t.Fatalf("sum versions: %v", err)
	}
	if sum != changes.Load() {
		t.Errorf("SUM(version) = %d, successful state changes answered = %d", sum, changes.Load())
	}

	// Every view reaches its final version and equals the row.
	start = time.Now()
	deadline := start.Add(2 * time.Minute)
	ids := make(chan string)
	var mismatches []string
	for range consistencyReaders {
		wg.Go(func() {
			for id := range ids {
				want := rows[id]
				got, err := readView(ctx, reader, id, want.Version, deadline)
				if err != nil {
					fail("%v", err)
					continue
				}
				d := want.diff(got)
				if h := historialProblem(want, got); h != "" {
					d += "; " + h
				}
				if d != "" {
					mu.Lock()
					mismatches = append(mismatches, fmt.Sprintf("%s: %s", id, d))
					mu.Unlock()
				}
			}
		})
	}
	for id := range rows {
		ids <- id
	}
	close(ids)
	wg.Wait()
	readTime := time.Since(start)
	if len(errs) > 0 {
		sort.Strings(errs)
		t.Fatalf("%d views did not converge, the first ones:\n%s", len(errs), joinFirst(errs, 20))
	}
	if len(mismatches) > 0 {
		sort.Strings(mismatches)
		t.Errorf("%d views differ from PostgreSQL, the first ones:\n%s", len(mismatches), joinFirst(mismatches, 20))
	}

	// The statistics equal PostgreSQL's counts per estado.
	want := estadisticas{PorEstado: map[string]int64{"PENDIENTE": 0, "APROBADA": 0, "RECHAZADA": 0}}
	for _, r := range rows {
		want.Total++
		want.PorEstado[r.Estado]++
	}
	var got estadisticas
	pollUntil(t, 30*time.Second, func() (bool, string) {
		got = estadisticas{}
		status, _, err := doInto(ctx, http.MethodGet, reader.base+"/v1/estadisticas", nil, nil, &got)
		if err != nil || status != http.StatusOK {
			return false, fmt.Sprintf("GET /v1/estadisticas: status %d, error %v", status, err)
		}
		return sameStats(want, got), fmt.Sprintf("estadisticas %+v, PostgreSQL %+v", got, want)
	})

	// The projection reports no lag once everything is applied.
	pollUntil(t, 30*time.Second, func() (bool, string) {
		var p struct {
			Joined   bool  `json:"joined"`
			TotalLag int64 `json:"total_lag"`
		}
		status, _, err := doInto(ctx, http.MethodGet, reader.base+"/v1/proyecciones", nil, nil, &p)
		return err == nil && status == http.StatusOK && p.Joined && p.TotalLag == 0,
			fmt.Sprintf("GET /v1/proyecciones: status %d, error %v, %+v", status, err, p)
	})
	t.Logf("%d companies, %d state changes: writes took %s, views converged in %s; estadisticas %+v",
		len(rows), changes.Load(), writeTime.Round(time.Millisecond), readTime.Round(time.Millisecond), got)
}

// driveCompania runs the scenario of company i against the writer at base:
// it creates it, and depending on i retries the creation with the same or a
// different Idempotency-Key body, sends a duplicate, updates it, approves
// or rejects it, and tries refused commands (stale If-Match, a transition
// from a final estado). Every successful state change increments changes.
// It returns the company id and the last version answered.
func driveCompania(ctx context.Context, base string, i int, changes *atomic.Int64, fail func(string, ...any)) (string, int64, bool) {
	body := map[string]string{
		"nombre":         fmt.Sprintf("E2E Compania %04d", i),
		"email":          fmt.Sprintf("c%04d@e2e.example.com", i),
		"identificacion": fmt.Sprintf("E2E-%04d", i),
	}
	var hdr map[string]string
	if i%10 == 0 {
		hdr = map[string]string{"Idempotency-Key": fmt.Sprintf("crear-%d", i)}
	}
	var c compania
	status, _, err := doInto(ctx, http.MethodPost, base+"/v1/companias", body, hdr, &c)
	if err != nil || status != http.StatusCreated {
		fail("company %d: POST: status %d, error %v", i, status, err)
		return "", 0, false
	}
	changes.Add(1)
	version := c.Version
	expect := func(what string, wantStatus int, method, path string, body any, hdr map[string]string) bool {
		var r compania
		status, h, err := doInto(ctx, method, base+path, body, hdr, &r)
		if err != nil || status != wantStatus {
			fail("company %d: %s: status %d (want %d), error %v", i, what, status, wantStatus, err)
			return false
		}
		if status == http.StatusOK {
			if r.Version != version+1 {
				fail("company %d: %s: version %d, want %d", i, what, r.Version, version+1)
				return false
			}
			version = r.Version
			changes.Add(1)
		}
		if h.Get("Idempotent-Replayed") == "true" && (r.ID != c.ID || r.Version != c.Version) {
			fail("company %d: %s: replayed %s v%d, want %s v%d", i, what, r.ID, r.Version, c.ID, c.Version)
		}
		return true
	}

	if i%10 == 0 { // an idempotent retry replays the first answer
		var r compania
		status, h, err := doInto(ctx, http.MethodPost, base+"/v1/companias", body, hdr, &r)
		if err != nil || status != http.StatusCreated || h.Get("Idempotent-Replayed") != "true" || r.ID != c.ID || r.Version != 1 {
			fail("company %d: idempotent retry: status %d, replayed %q, id %s v%d, error %v",
				i, status, h.Get("Idempotent-Replayed"), r.ID, r.Version, err)
		}
	}
	if i%50 == 0 { // the same key with another body is refused
		other := map[string]string{"nombre": body["nombre"] + " otra", "email": body["email"], "identificacion": body["identificacion"]}
		expect("idempotency key reused with another body", http.StatusUnprocessableEntity, http.MethodPost, "/v1/companias", other, hdr)
	}
	if i%25 == 3 { // a duplicate (nombre, identificacion) is a conflict
		dup := map[string]string{"nombre": body["nombre"], "email": "otro" + body["email"], "identificacion": body["identificacion"]}
		expect("duplicate", http.StatusConflict, http.MethodPost, "/v1/companias", dup, nil)
	}
	path := "/v1/companias/" + c.ID
	if i%3 == 0 {
		expect("PATCH nombre", http.StatusOK, http.MethodPatch, path, map[string]string{"nombre": body["nombre"] + " (actualizada)"}, nil)
	}
	if i%6 == 0 {
		expect("PATCH email", http.StatusOK, http.MethodPatch, path, map[string]string{"email": fmt.Sprintf("nuevo%04d@e2e.example.com", i)}, nil)
	}
	switch i % 5 {
	case 1:
		if i%40 == 1 { // a stale If-Match is refused, the current one accepted
			expect("aprobar with a stale If-Match", http.StatusPreconditionFailed, http.MethodPost, path+"/aprobar", nil, map[string]string{"If-Match": `"99"`})
			expect("aprobar with If-Match", http.StatusOK, http.MethodPost, path+"/aprobar", nil, map[string]string{"If-Match": fmt.Sprintf(`"%d"`, version)})
		} else {
			expect("aprobar", http.StatusOK, http.MethodPost, path+"/aprobar", nil, nil)
		}
		if i%20 == 1 {
			expect("rechazar an APROBADA company", http.StatusConflict, http.MethodPost, path+"/rechazar", map[string]string{"motivo": "tarde"}, nil)
		}
		if i%30 == 1 { // an APROBADA company can still be updated
			expect("PATCH an APROBADA company", http.StatusOK, http.MethodPatch, path, map[string]string{"nombre": body["nombre"] + " (aprobada)"}, nil)
		}
	case 2:
		expect("rechazar", http.StatusOK, http.MethodPost, path+"/rechazar", map[string]string{"motivo": fmt.Sprintf("Documentación incompleta %d", i)}, nil)
		if i%20 == 2 {
			expect("PATCH a RECHAZADA company", http.StatusConflict, http.MethodPatch, path, map[string]string{"nombre": "no"}, nil)
		}
	}
	return c.ID, version, true
}

// contenders is how many PATCHes of one company raceUpdates sends at once.
const contenders = 4

// raceUpdates sends contenders concurrent PATCHes of company id (company i,
// at version before), each with another nombre. Each must answer 200 with a
// version of its own, or 409; it returns the highest version answered and
// the number of 200 answers.
func raceUpdates(ctx context.Context, base, id string, i int, before int64, fail func(string, ...any)) (int64, int64) {
	versions := make([]int64, contenders)
	var wg sync.WaitGroup
	for g := range contenders {
		wg.Go(func() {
			var r compania
			body := map[string]string{"nombre": fmt.Sprintf("E2E Compania %04d carrera %d", i, g)}
			status, _, err := doInto(ctx, http.MethodPatch, base+"/v1/companias/"+id, body, nil, &r)
			switch {
			case err != nil:
				fail("company %d: concurrent PATCH: %v", i, err)
			case status == http.StatusOK:
				versions[g] = r.Version
			case status != http.StatusConflict:
				fail("company %d: concurrent PATCH: status %d, want 200 or 409", i, status)
			}
		})
	}
	wg.Wait()
	last, n := before, int64(0)
	seen := make(map[int64]bool)
	for _, v := range versions {
		if v == 0 {
			continue
		}
		if seen[v] || v <= before {
			fail("company %d: concurrent PATCHes answered versions %v from version %d: a lost update", i, versions, before)
		}
		seen[v] = true
		n++
		last = max(last, v)
	}
	if last != before+n {
		fail("company %d: %d concurrent PATCHes succeeded from version %d but the last version is %d", i, n, before, last)
	}
	return last, n
}

// pollUntil calls check until it reports true, failing t with check's last
// description when timeout passes first.
func pollUntil(t *testing.T, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, desc := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %s", timeout, desc)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test cancelled while waiting: %s", desc)
		case <-tick.C:
		}
	}
}

func sameStats(a, b estadisticas) bool {
	if a.Total != b.Total || len(a.PorEstado) != len(b.PorEstado) {
		return false
	}
	for k, v := range a.PorEstado {
		if b.PorEstado[k] != v {
			return false
		}
	}
	return true
}

func joinFirst(s []string, n int) string {
	out := ""
	for i, v := range s {
		if i == n {
			out += fmt.Sprintf("… and %d more\n", len(s)-n)
			break
		}
		out += v + "\n"
	}
	return out
}
