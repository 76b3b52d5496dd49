package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// names hands out unique company data (nombre and identificacion are
// unique case-insensitively in the writer's schema).
type names struct {
	run string
	n   atomic.Int64
}

func (g *names) next() (nombre, email, ident string) {
	i := g.n.Add(1)
	return fmt.Sprintf("Bench %s %d", g.run, i), fmt.Sprintf("b%d@bench.example", i), fmt.Sprintf("B%s-%d", g.run, i)
}

// httpClient keeps enough idle connections for the highest concurrency.
func httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
	}}
}

// createResult is what POST /v1/companias answers that the bench needs.
type createResult struct {
	ID string `json:"id"`
}

// postCompania creates one company and returns its id.
func postCompania(ctx context.Context, c *http.Client, base string, g *names) (string, error) {
	nombre, email, ident := g.next()
	body, _ := json.Marshal(map[string]string{"nombre": nombre, "email": email, "identificacion": ident})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/companias", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /v1/companias: %w %d: %s", errStatus, res.StatusCode, b)
	}
	var cr createResult
	if err := json.Unmarshal(b, &cr); err != nil || cr.ID == "" {
		if loc := res.Header.Get("Location"); loc != "" {
			return loc[strings.LastIndex(loc, "/")+1:], nil
		}
		return "", fmt.Errorf("POST /v1/companias: no id in %s", b)
	}
	return cr.ID, nil
}

// outboxSample is one outbox row the writer stored (rebuilt from the record
// its relay published, which deleted the row), reused as the payload of the
// raw inserts so that both write the same bytes.
type outboxSample struct {
	key, value []byte
	headers    []byte
	topic      string
	name       string
}

// loadSample waits (up to a minute) for the first record the writer
// published on topic, read from k, and returns it as the outbox row it was,
// with the name of its event from the event log.
func loadSample(ctx context.Context, pool *pgxpool.Pool, k kafkaSide, topic string) (outboxSample, error) {
	s := outboxSample{topic: topic}
	deadline := time.Now().Add(time.Minute)
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msgs, err := topicMessages(rctx, k, topic, topic, 1)
		cancel()
		if err == nil && len(msgs) == 1 {
			m := msgs[0]
			s.key, s.value = m.Key, m.Value
			hs, err := outboxHeaders(m.Headers)
			if err != nil {
				return s, err
			}
			s.headers = []byte(hs)
			var ceID string
			for _, h := range m.Headers {
				if h.Key == "ce_id" {
					ceID = string(h.Value)
				}
			}
			if err := pool.QueryRow(ctx, `SELECT nombre FROM compania_eventos WHERE id = $1`, ceID).Scan(&s.name); err != nil {
				return s, fmt.Errorf("read the sample's event: %w", err)
			}
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("no record published on %s within a minute (%v)", topic, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return s, err
		}
	}
}

// Statements of the raw ceiling: the rows the writer's Repository.Add
// stores for a new company without an Idempotency-Key.
const (
	rawInsertCompania = `INSERT INTO companias
    (id, nombre, email, identificacion, estado, motivo_rechazo, fecha_creacion, fecha_actualizacion, version)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	rawInsertEvento = `INSERT INTO compania_eventos (id, compania_id, version, nombre, data, occurred_at)
    VALUES ($1, $2, $3, $4, $5, $6)`
	rawInsertOutbox = `INSERT INTO outbox (event_id, topic, key, value, headers)
    VALUES ($1, $2, $3, $4, $5)`
)

// rawCreate writes a company, its event-log row and its outbox row in one
// round trip: the three INSERTs in one pipeline, which PostgreSQL runs as
// one implicit transaction (committed at its end, rolled back if one
// fails), as the writer's Repository.Add does.
func rawCreate(ctx context.Context, pool *pgxpool.Pool, s outboxSample, g *names) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	evID, err := uuid.NewV7()
	if err != nil {
		return err
	}
	nombre, email, ident := g.next()
	now := time.Now().UTC().Truncate(time.Microsecond)
	b := &pgx.Batch{}
	b.Queue(rawInsertCompania, id.String(), nombre, email, ident, "PENDIENTE", nil, now, now, int64(1))
	b.Queue(rawInsertEvento, evID.String(), id.String(), int64(1), s.name, s.value, now)
	b.Queue(rawInsertOutbox, evID.String(), s.topic, []byte(id.String()), s.value, s.headers)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("raw insert: %w", err)
	}
	return nil
}

// openRawPool opens a pool sized like the writer's default
// (max(8, 4×GOMAXPROCS)).
func openRawPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	return pgxpool.NewWithConfig(ctx, cfg)
}

// createFigure is figure 1 at one concurrency.
type createFigure struct {
	conc        int
	writer, raw []run
	floor       []run // GET /healthz on the writer: the HTTP hop alone
}

// getOK is one GET of url that must answer 200.
func getOK(hc *http.Client, url string) func(ctx context.Context) error {
	return func(ctx context.Context) error { return get200(ctx, hc, url, "GET "+url) }
}

// get200 GETs url with hc and reads the whole body; an answer other than
// 200 is an errStatus error that what (the request, for people) names.
func get200(ctx context.Context, hc *http.Client, url, what string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %w %d", what, errStatus, res.StatusCode)
	}
	return nil
}

// floorDur is the length of an HTTP-floor run: a third of a measured run,
// at least a second.
func floorDur(d time.Duration) time.Duration { return max(d/3, time.Second) }

// pairedRun is one run of a closed-loop figure at concurrency c: the
// service's op (with the CPU of servicePid and the machine), then the raw
// op on the same machine state, then the HTTP floor, a GET of floorURL.
func pairedRun(ctx context.Context, b *bench, c, servicePid int, op, rawOp func(context.Context) error, hc *http.Client, floorURL string) (svc, raw, floor run, err error) {
	if svc, err = withCPU(servicePid, func() (run, error) { return closedLoop(ctx, c, b.dur, op) }); err != nil {
		return svc, raw, floor, fmt.Errorf("service c=%d: %w", c, err)
	}
	if raw, err = withCPU(0, func() (run, error) { return closedLoop(ctx, c, b.dur, rawOp) }); err != nil {
		return svc, raw, floor, fmt.Errorf("raw c=%d: %w", c, err)
	}
	if floor, err = closedLoop(ctx, c, floorDur(b.dur), getOK(hc, floorURL)); err != nil {
		return svc, raw, floor, fmt.Errorf("GET %s c=%d: %w", floorURL, c, err)
	}
	return svc, raw, floor, nil
}

// benchCreate measures figure 1 on the writer at writerURL; line names it
// in the log ("" for the plaintext line).
func benchCreate(ctx context.Context, b *bench, line, writerURL string, writerPid int, raw *pgxpool.Pool, sample outboxSample) ([]createFigure, error) {
	hc := httpClient()
	post := func(ctx context.Context) error { _, err := postCompania(ctx, hc, writerURL, b.names); return err }
	ins := func(ctx context.Context) error { return rawCreate(ctx, raw, sample, b.names) }
	// Warm-up: connections, caches, JIT of the query plans.
	if _, err := closedLoop(ctx, 8, time.Second, post); err != nil {
		return nil, err
	}
	if _, err := closedLoop(ctx, 8, time.Second, ins); err != nil {
		return nil, err
	}
	var out []createFigure
	for _, c := range b.concs {
		f := createFigure{conc: c}
		for i := range b.runs {
			w, r, fl, err := pairedRun(ctx, b, c, writerPid, post, ins, hc, writerURL+"/healthz")
			if err != nil {
				return nil, fmt.Errorf("create: %w", err)
			}
			f.writer, f.raw, f.floor = append(f.writer, w), append(f.raw, r), append(f.floor, fl)
			b.logf("create%s c=%d run %d: writer %.0f/s p50 %.2fms p99 %.2fms | raw %.0f/s p50 %.2fms p99 %.2fms",
				line, c, i+1, w.rate(), ms(w.p50), ms(w.p99), r.rate(), ms(r.p50), ms(r.p99))
		}
		out = append(out, f)
	}
	return out, nil
}
