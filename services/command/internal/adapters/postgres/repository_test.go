package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/integration"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// now is a clock at PostgreSQL's precision, so that stored and built snapshots compare equal.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

type fixture struct {
	pool *pgxpool.Pool
	repo *postgres.Repository
}

func newFixture(t *testing.T, opts ...postgres.RepositoryOption) fixture {
	t.Helper()
	pool := open(t, pgtest.NewDatabase(t))
	if err := postgres.Migrate(t.Context(), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	repo := postgres.NewRepository(pool, opts...)
	t.Cleanup(repo.Close) // before the pool closes
	return fixture{pool: pool, repo: repo}
}

func newCompania(t *testing.T, nombre, ident string) *compania.Compania {
	t.Helper()
	c, err := compania.New(uuid.NewString(), compania.Datos{Nombre: nombre, Email: "info@example.com", Identificacion: ident}, now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// counts returns the number of companies, events, outbox rows and idempotency records.
func (f fixture) counts(t *testing.T) [4]int {
	return [4]int{
		f.count(t, "SELECT count(*) FROM companias"),
		f.count(t, "SELECT count(*) FROM compania_eventos"),
		f.count(t, "SELECT count(*) FROM outbox"),
		f.count(t, "SELECT count(*) FROM idempotency_keys"),
	}
}

// load reads a company back through a no-op Update.
func (f fixture) load(t *testing.T, id string) compania.Snapshot {
	t.Helper()
	c, err := f.repo.Update(t.Context(), id, command.Meta{}, func(*compania.Compania) error { return nil })
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	return c.Snapshot()
}

type logged struct {
	id, name string
	version  int64
	data     []byte
	occurred time.Time
	outboxID int64
	topic    string
	key      []byte
	value    []byte
	headers  []companiaevent.Header
}

// eventLog returns the event log of a company joined with its outbox rows, in version order.
func (f fixture) eventLog(t *testing.T, id string) []logged {
	t.Helper()
	rows, err := f.pool.Query(t.Context(), `
        SELECT e.id::text, e.nombre, e.version, e.data::text, e.occurred_at,
               o.id, o.topic, o.key, o.value, o.headers
          FROM compania_eventos e JOIN outbox o ON o.event_id = e.id
         WHERE e.compania_id = $1 ORDER BY e.version`, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []logged
	for rows.Next() {
		var l logged
		var data string
		var headers []byte
		if err := rows.Scan(&l.id, &l.name, &l.version, &data, &l.occurred, &l.outboxID, &l.topic,
			&l.key, &l.value, &headers); err != nil {
			t.Fatal(err)
		}
		l.data = []byte(data)
		if l.headers, err = outbox.DecodeHeaders(headers); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLog checks that the event log and the outbox of c hold exactly the
// events of want, in order, with equal content.
func (f fixture) checkLog(t *testing.T, id, topic string, want []compania.Event, tp string) {
	t.Helper()
	got := f.eventLog(t, id)
	if n := f.count(t, "SELECT count(*) FROM compania_eventos WHERE compania_id = $1", id); n != len(got) {
		t.Fatalf("%d events but %d joined with the outbox", n, len(got))
	}
	if len(got) != len(want) {
		t.Fatalf("event log has %d events, want %d", len(got), len(want))
	}
	for i, l := range got {
		e := want[i]
		ev, err := companiaevent.Decode(l.headers, l.value)
		if err != nil {
			t.Fatalf("event %d: decode outbox row: %v", i, err)
		}
		wantEv, err := integration.Event(l.id, e, tp)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ev, wantEv) {
			t.Errorf("event %d: outbox decodes to\n%+v\nwant\n%+v", i, ev, wantEv)
		}
		if u, err := uuid.Parse(l.id); err != nil || u.Version() != 7 {
			t.Errorf("event %d: id %s is not a UUIDv7", i, l.id)
		}
		if l.name != e.EventName() || l.version != e.State().Version || !l.occurred.Equal(compania.OccurredAt(e)) {
			t.Errorf("event %d: log row (%s v%d at %v), want (%s v%d at %v)", i, l.name, l.version, l.occurred,
				e.EventName(), e.State().Version, compania.OccurredAt(e))
		}
		var fromLog companiaevent.Data
		if err := json.Unmarshal(l.data, &fromLog); err != nil || !reflect.DeepEqual(fromLog, ev.Data) {
			t.Errorf("event %d: log data %s (%v), want the outbox value %s", i, l.data, err, l.value)
		}
		if l.topic != topic || string(l.key) != id {
			t.Errorf("event %d: outbox topic %q key %q; want %q, %q", i, l.topic, l.key, topic, id)
		}
		if i > 0 && l.outboxID <= got[i-1].outboxID {
			t.Errorf("event %d: outbox id %d not after %d", i, l.outboxID, got[i-1].outboxID)
		}
	}
}

func TestIntegrationAdd(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)

	c := newCompania(t, "Acme S.A.S.", "900123456-7")
	if err := f.repo.Add(ctx, c, command.Meta{Traceparent: traceparent}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if len(c.Events()) != 1 {
		t.Fatalf("Add cleared the events: %d left, want 1", len(c.Events()))
	}
	if got := f.load(t, c.ID()); got != c.Snapshot() {
		t.Fatalf("stored\n%+v\nwant\n%+v", got, c.Snapshot())
	}
	f.checkLog(t, c.ID(), companiaevent.DefaultTopic, c.Events(), traceparent)
	if got, want := f.counts(t), [4]int{1, 1, 1, 0}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}

	t.Run("duplicate nombre and identificacion, any case", func(t *testing.T) {
		d := newCompania(t, "ACME s.a.s.", "900123456-7")
		if err := f.repo.Add(ctx, d, command.Meta{}); !errors.Is(err, compania.ErrDuplicate) {
			t.Fatalf("Add = %v, want ErrDuplicate", err)
		}
		d = newCompania(t, "Acme S.A.S.", "900123456-7")
		if err := f.repo.Add(ctx, d, command.Meta{}); !errors.Is(err, compania.ErrDuplicate) {
			t.Fatalf("Add = %v, want ErrDuplicate", err)
		}
		if got, want := f.counts(t), [4]int{1, 1, 1, 0}; got != want {
			t.Fatalf("counts = %v, want %v", got, want)
		}
	})
	t.Run("id in use", func(t *testing.T) {
		d, err := compania.New(c.ID(), compania.Datos{Nombre: "Otra", Email: "o@example.com", Identificacion: "1"}, now())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.repo.Add(ctx, d, command.Meta{}); !errors.Is(err, compania.ErrIDTaken) {
			t.Fatalf("Add = %v, want ErrIDTaken", err)
		}
		if got, want := f.counts(t), [4]int{1, 1, 1, 0}; got != want {
			t.Fatalf("counts = %v, want %v", got, want)
		}
	})
	t.Run("cancelled context stores nothing", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := f.repo.Add(cctx, newCompania(t, "Cancelada", "C-1"), command.Meta{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Add = %v, want context.Canceled", err)
		}
		if got, want := f.counts(t), [4]int{1, 1, 1, 0}; got != want {
			t.Fatalf("counts = %v, want %v", got, want)
		}
	})
	t.Run("custom topic and no traceparent", func(t *testing.T) {
		repo := postgres.NewRepository(f.pool, postgres.WithTopic("other-topic"))
		defer repo.Close()
		d := newCompania(t, "Topico", "T-1")
		if err := repo.Add(ctx, d, command.Meta{}); err != nil {
			t.Fatal(err)
		}
		f.checkLog(t, d.ID(), "other-topic", d.Events(), "")
	})
	if got := f.count(t, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"); got != 0 {
		t.Errorf("%d sessions idle in transaction", got)
	}
	// The commit notifications go out on a goroutine of their own, which
	// holds a connection while it sends; Close waits for it.
	f.repo.Close()
	if s := f.pool.Stat(); s.AcquiredConns() != 0 {
		t.Errorf("%d connections still acquired", s.AcquiredConns())
	}
}

func TestIntegrationIdempotency(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)

	if _, ok, err := f.repo.LookupIdempotency(ctx, "s", "k"); ok || err != nil {
		t.Fatalf("LookupIdempotency of an unknown key = %v, %v; want false, nil", ok, err)
	}
	c := newCompania(t, "Idem", "I-1")
	rec := command.IdempotencyRecord{Scope: "http:POST /v1/companias", Key: "k1", RequestHash: []byte{1, 2, 3}, Result: c.Snapshot()}
	if err := f.repo.Add(ctx, c, command.Meta{Idempotency: &rec}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	got, ok, err := f.repo.LookupIdempotency(ctx, rec.Scope, rec.Key)
	if err != nil || !ok || !reflect.DeepEqual(got, rec) {
		t.Fatalf("LookupIdempotency = %+v, %v, %v; want %+v", got, ok, err, rec)
	}
	if n := f.count(t, "SELECT count(*) FROM idempotency_keys WHERE compania_id = $1", c.ID()); n != 1 {
		t.Fatalf("idempotency record of %s: %d rows", c.ID(), n)
	}

	// The same key again (a concurrent request that lost): nothing of it is stored.
	d := newCompania(t, "Idem 2", "I-2")
	rec2 := rec
	rec2.Result = d.Snapshot()
	if err := f.repo.Add(ctx, d, command.Meta{Idempotency: &rec2}); !errors.Is(err, command.ErrIdempotencyKeyTaken) {
		t.Fatalf("Add with a taken key = %v, want ErrIdempotencyKeyTaken", err)
	}
	if got, want := f.counts(t), [4]int{1, 1, 1, 1}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	// Same key in another scope is another key; a nil hash is stored as empty.
	rec3 := command.IdempotencyRecord{Scope: "kafka", Key: "k1", Result: d.Snapshot()}
	if err := f.repo.Add(ctx, d, command.Meta{Idempotency: &rec3}); err != nil {
		t.Fatalf("Add in another scope: %v", err)
	}
	if got, ok, err := f.repo.LookupIdempotency(ctx, "kafka", "k1"); err != nil || !ok || got.Result != d.Snapshot() || len(got.RequestHash) != 0 {
		t.Fatalf("LookupIdempotency = %+v, %v, %v", got, ok, err)
	}

	// An Update may record a key too.
	rec4 := command.IdempotencyRecord{Scope: "s", Key: "upd", RequestHash: []byte("h")}
	upd, err := f.repo.Update(ctx, d.ID(), command.Meta{Idempotency: &rec4}, func(c *compania.Compania) error {
		return c.Rechazar("no cumple", now())
	})
	if err != nil {
		t.Fatal(err)
	}
	// It stores the company as saved, whatever Result says.
	if got, ok, err := f.repo.LookupIdempotency(ctx, "s", "upd"); err != nil || !ok || got.Result != upd.Snapshot() ||
		string(got.RequestHash) != "h" {
		t.Fatalf("LookupIdempotency after Update = %+v, %v, %v; want the saved %+v", got, ok, err, upd.Snapshot())
	}

	t.Run("prune", func(t *testing.T) {
		if _, err := f.pool.Exec(ctx, "UPDATE idempotency_keys SET created_at = now() - interval '2 hours' WHERE key = 'k1'"); err != nil {
			t.Fatal(err)
		}
		n, err := f.repo.PruneIdempotency(ctx, time.Hour)
		if err != nil || n != 2 {
			t.Fatalf("PruneIdempotency = %d, %v; want 2, nil", n, err)
		}
		if _, ok, _ := f.repo.LookupIdempotency(ctx, rec.Scope, rec.Key); ok {
			t.Fatal("pruned key still there")
		}
		if _, ok, _ := f.repo.LookupIdempotency(ctx, "s", "upd"); !ok {
			t.Fatal("recent key was pruned")
		}
		if n, err := f.repo.PruneIdempotency(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("second PruneIdempotency = %d, %v; want 0, nil", n, err)
		}
		if _, err := f.repo.PruneIdempotency(ctx, 0); err == nil {
			t.Fatal("PruneIdempotency(0) succeeded")
		}
	})
	t.Run("prune in batches", func(t *testing.T) {
		if _, err := f.pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, compania_id, result, created_at)
            SELECT 'bulk', g::text, '', $1, '{}', now() - interval '1 day' FROM generate_series(1, 2500) g`, c.ID()); err != nil {
			t.Fatal(err)
		}
		if n, err := f.repo.PruneIdempotency(ctx, time.Hour); err != nil || n != 2500 {
			t.Fatalf("PruneIdempotency = %d, %v; want 2500, nil", n, err)
		}
	})
	t.Run("corrupt record", func(t *testing.T) {
		if _, err := f.pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, compania_id, result)
            VALUES ('bad', 'k', '', $1, '{"estado": "NOPE"}')`, c.ID()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.repo.LookupIdempotency(ctx, "bad", "k"); err == nil {
			t.Fatal("LookupIdempotency of a corrupt record succeeded")
		}
	})
}

func TestIntegrationUpdate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	c := newCompania(t, "Beta", "B-1")
	if err := f.repo.Add(ctx, c, command.Meta{}); err != nil {
		t.Fatal(err)
	}
	other := newCompania(t, "Gamma", "G-1")
	if err := f.repo.Add(ctx, other, command.Meta{}); err != nil {
		t.Fatal(err)
	}
	events := c.Events()

	t.Run("not found", func(t *testing.T) {
		for _, id := range []string{uuid.NewString(), "not-a-uuid", "", "{" + uuid.NewString() + "}"} {
			called := false
			_, err := f.repo.Update(ctx, id, command.Meta{}, func(*compania.Compania) error { called = true; return nil })
			if !errors.Is(err, compania.ErrNotFound) || called {
				t.Errorf("Update(%q) = %v (fn called %v), want ErrNotFound", id, err, called)
			}
		}
	})
	t.Run("fn error rolls back", func(t *testing.T) {
		before := f.counts(t)
		boom := errors.New("boom")
		_, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error {
			if err := c.Aprobar(now()); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update = %v, want boom", err)
		}
		if got := f.counts(t); got != before {
			t.Fatalf("counts = %v, want %v", got, before)
		}
		if got := f.load(t, c.ID()); got != c.Snapshot() {
			t.Fatalf("company changed: %+v", got)
		}
		// A domain error keeps its identity.
		_, err = f.repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error { return c.Rechazar("", now()) })
		if !errors.Is(err, compania.ErrInvalid) {
			t.Fatalf("Update = %v, want ErrInvalid", err)
		}
	})
	t.Run("no events writes nothing", func(t *testing.T) {
		before := f.counts(t)
		nombre := "Beta"
		got, err := f.repo.Update(ctx, c.ID(), command.Meta{Idempotency: &command.IdempotencyRecord{Scope: "s", Key: "noop"}},
			func(c *compania.Compania) error { return c.Actualizar(compania.Cambios{Nombre: &nombre}, now()) })
		if err != nil {
			t.Fatal(err)
		}
		if got.Snapshot() != c.Snapshot() || len(got.Events()) != 0 {
			t.Fatalf("Update = %+v with %d events, want the loaded company", got.Snapshot(), len(got.Events()))
		}
		if after := f.counts(t); after != before {
			t.Fatalf("counts = %v, want %v", after, before)
		}
	})
	t.Run("saves state, events and outbox", func(t *testing.T) {
		nombre, email := "Beta Dos", "nuevo@example.com"
		got, err := f.repo.Update(ctx, c.ID(), command.Meta{Traceparent: traceparent}, func(c *compania.Compania) error {
			if err := c.Actualizar(compania.Cambios{Nombre: &nombre, Email: &email}, now()); err != nil {
				return err
			}
			return c.Rechazar("documentos incompletos", now())
		})
		if err != nil {
			t.Fatal(err)
		}
		s := got.Snapshot()
		if s.Version != 3 || s.Estado != compania.Rechazada || s.Nombre != nombre || len(got.Events()) != 2 {
			t.Fatalf("Update = %+v with %d events", s, len(got.Events()))
		}
		if stored := f.load(t, c.ID()); stored != s {
			t.Fatalf("stored\n%+v\nwant\n%+v", stored, s)
		}
		got2 := got.Events()
		// The first event was written by Add without a traceparent; compare it apart.
		f.checkLog(t, other.ID(), companiaevent.DefaultTopic, other.Events(), "")
		log := f.eventLog(t, c.ID())
		if len(log) != 3 {
			t.Fatalf("event log has %d events, want 3", len(log))
		}
		all := append(append([]compania.Event{}, events...), got2...)
		for i, l := range log {
			ev, err := companiaevent.Decode(l.headers, l.value)
			if err != nil {
				t.Fatal(err)
			}
			tp := traceparent
			if i == 0 {
				tp = ""
			}
			want, _ := integration.Event(l.id, all[i], tp)
			if !reflect.DeepEqual(ev, want) {
				t.Errorf("event %d = %+v, want %+v", i, ev, want)
			}
		}
	})
	t.Run("renaming onto another company is ErrDuplicate", func(t *testing.T) {
		nombre := "GAMMA"
		before := f.counts(t)
		_, err := f.repo.Update(ctx, other.ID(), command.Meta{}, func(c *compania.Compania) error {
			return c.Actualizar(compania.Cambios{Nombre: &nombre}, now())
		})
		if err != nil {
			t.Fatalf("renaming within the same company's case: %v", err)
		}
		before[1]++
		before[2]++
		d := newCompania(t, "Delta", "G-1")
		if err := f.repo.Add(ctx, d, command.Meta{}); err != nil {
			t.Fatal(err)
		}
		before[0]++
		before[1]++
		before[2]++
		nombre = "gamma"
		_, err = f.repo.Update(ctx, d.ID(), command.Meta{}, func(c *compania.Compania) error {
			return c.Actualizar(compania.Cambios{Nombre: &nombre}, now())
		})
		if !errors.Is(err, compania.ErrDuplicate) {
			t.Fatalf("Update = %v, want ErrDuplicate", err)
		}
		if got := f.counts(t); got != before {
			t.Fatalf("counts = %v, want %v", got, before)
		}
	})
}

func TestIntegrationUpdateLostVersionCheck(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	c := newCompania(t, "Epsilon", "E-1")
	if err := f.repo.Add(ctx, c, command.Meta{}); err != nil {
		t.Fatal(err)
	}
	approve := func(c *compania.Compania) error { return c.Aprobar(now()) }

	// Another writer (not this repository) already logged version 2.
	if _, err := f.pool.Exec(ctx, `INSERT INTO compania_eventos (id, compania_id, version, nombre, data, occurred_at)
        VALUES ($1, $2, 2, 'X', '{}', now())`, uuid.NewString(), c.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, approve); !errors.Is(err, compania.ErrConcurrentUpdate) {
		t.Fatalf("Update with version 2 already logged = %v, want ErrConcurrentUpdate", err)
	}

	// The UPDATE … WHERE version = old matches nothing (a trigger swallows it).
	if _, err := f.pool.Exec(ctx, `ALTER TABLE compania_eventos DISABLE TRIGGER compania_eventos_append_only;
        DELETE FROM compania_eventos WHERE version = 2; ALTER TABLE compania_eventos ENABLE TRIGGER compania_eventos_append_only;
        CREATE FUNCTION skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER skip BEFORE UPDATE ON companias FOR EACH ROW EXECUTE FUNCTION skip();`); err != nil {
		t.Fatal(err)
	}
	before := f.counts(t)
	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, approve); !errors.Is(err, compania.ErrConcurrentUpdate) {
		t.Fatalf("Update with a lost version check = %v, want ErrConcurrentUpdate", err)
	}
	if got := f.counts(t); got != before {
		t.Fatalf("counts = %v, want %v", got, before)
	}
}

// TestIntegrationConcurrentUpdates: the row lock serialises updaters of one
// company, so none fails and the versions run 1..n without a gap.
func TestIntegrationConcurrentUpdates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)
	c := newCompania(t, "Zeta", "Z-1")
	if err := f.repo.Add(ctx, c, command.Meta{}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				nombre := fmt.Sprintf("Zeta %d-%d", w, i)
				_, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error {
					return c.Actualizar(compania.Cambios{Nombre: &nombre}, now())
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Update: %v", err)
	}
	const n = 1 + workers*each
	if s := f.load(t, c.ID()); s.Version != n {
		t.Fatalf("version = %d, want %d", s.Version, n)
	}
	log := f.eventLog(t, c.ID())
	if len(log) != n {
		t.Fatalf("%d events, want %d", len(log), n)
	}
	for i, l := range log {
		ev, err := companiaevent.Decode(l.headers, l.value)
		if err != nil {
			t.Fatal(err)
		}
		if l.version != int64(i+1) || ev.Data.Compania.Version != l.version {
			t.Fatalf("event %d has version %d (outbox %d), want %d", i, l.version, ev.Data.Compania.Version, i+1)
		}
		if i > 0 && l.outboxID <= log[i-1].outboxID {
			t.Fatalf("outbox ids out of version order at %d", i)
		}
	}
}

func TestIntegrationNotify(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newFixture(t)

	wait, marker := listenOutbox(t, f)

	c := newCompania(t, "Eta", "H-1")
	if err := f.repo.Add(ctx, c, command.Meta{}); err != nil {
		t.Fatal(err)
	}
	wait("")
	marker("after add")

	if err := f.repo.Add(ctx, newCompania(t, "ETA", "h-1"), command.Meta{}); !errors.Is(err, compania.ErrDuplicate) {
		t.Fatalf("Add = %v, want ErrDuplicate", err)
	}
	marker("after failed add")

	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error {
		_ = c.Aprobar(now())
		return errors.New("rolled back")
	}); err == nil {
		t.Fatal("Update succeeded")
	}
	marker("after rolled back update")

	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(*compania.Compania) error { return nil }); err != nil {
		t.Fatal(err)
	}
	marker("after update without events")

	if _, err := f.repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error { return c.Aprobar(now()) }); err != nil {
		t.Fatal(err)
	}
	wait("")
	marker("after update")

	// Writes that commit while a notification waits for its interval share it,
	// and Close sends it at once.
	repo := postgres.NewRepository(f.pool, postgres.WithNotifyInterval(time.Hour))
	if err := repo.Add(ctx, newCompania(t, "Iota", "I-1"), command.Meta{}); err != nil {
		t.Fatal(err)
	}
	wait("") // the first one is sent at once; the next not before an hour
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if err := repo.Add(ctx, newCompania(t, fmt.Sprintf("Kappa %d", i), "K-1"), command.Meta{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	repo.Close()
	wait("")
	marker("after close")
	repo.Close() // idempotent
	if err := repo.Add(ctx, newCompania(t, "Lambda", "L-1"), command.Meta{}); err != nil {
		t.Fatalf("Add after Close: %v", err)
	}
	marker("after add on a closed repository")

	// Interval 0: back to back.
	repo = postgres.NewRepository(f.pool, postgres.WithNotifyInterval(0))
	defer repo.Close()
	for i := range 2 {
		if err := repo.Add(ctx, newCompania(t, fmt.Sprintf("Mu %d", i), "M-1"), command.Meta{}); err != nil {
			t.Fatal(err)
		}
		wait("")
	}
	marker("after interval 0")
}

func TestIntegrationRunInTx(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t, pgtest.NewDatabase(t))
	if _, err := pool.Exec(ctx, `CREATE TABLE t (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert := func(b *pgx.Batch) { b.Queue("INSERT INTO t VALUES (1)") }
	checkReleased := func() {
		t.Helper()
		if s := pool.Stat(); s.AcquiredConns() != 0 {
			t.Fatalf("%d connections still acquired", s.AcquiredConns())
		}
	}

	t.Run("commits", func(t *testing.T) {
		err := postgres.RunInTx(ctx, pool, insert, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO t VALUES (2)")
			return err
		})
		if err != nil || count() != 2 {
			t.Fatalf("RunInTx = %v with %d rows, want nil and 2", err, count())
		}
		if _, err := pool.Exec(ctx, "DELETE FROM t"); err != nil {
			t.Fatal(err)
		}
		checkReleased()
	})
	t.Run("failed commit is returned", func(t *testing.T) {
		// The deferred unique constraint is checked at COMMIT.
		err := postgres.RunInTx(ctx, pool, func(b *pgx.Batch) {
			insert(b)
			insert(b)
		}, nil)
		var pgErr interface{ SQLState() string }
		if !errors.As(err, &pgErr) || pgErr.SQLState() != "23505" {
			t.Fatalf("RunInTx = %v, want the commit's unique violation", err)
		}
		if count() != 0 {
			t.Fatal("rows committed")
		}
		checkReleased()
	})
	t.Run("commit turned into rollback is returned", func(t *testing.T) {
		err := postgres.RunInTx(ctx, pool, insert, func(tx pgx.Tx) error {
			_, _ = tx.Exec(ctx, "SELECT 1/0") // error ignored: the transaction is aborted
			return nil
		})
		if !errors.Is(err, pgx.ErrTxCommitRollback) {
			t.Fatalf("RunInTx = %v, want ErrTxCommitRollback", err)
		}
		if count() != 0 {
			t.Fatal("rows committed")
		}
		checkReleased()
	})
	t.Run("fn error rolls back", func(t *testing.T) {
		boom := errors.New("boom")
		err := postgres.RunInTx(ctx, pool, insert, func(pgx.Tx) error { return boom })
		if !errors.Is(err, boom) || count() != 0 {
			t.Fatalf("RunInTx = %v with %d rows, want boom and 0", err, count())
		}
		checkReleased()
	})
	t.Run("rollback error is joined", func(t *testing.T) {
		boom := errors.New("boom")
		err := postgres.RunInTx(ctx, pool, insert, func(tx pgx.Tx) error {
			if err := tx.Conn().Close(ctx); err != nil {
				t.Fatal(err)
			}
			return boom
		})
		if !errors.Is(err, boom) || !bytes.Contains([]byte(err.Error()), []byte("rollback:")) {
			t.Fatalf("RunInTx = %v, want boom joined with a rollback error", err)
		}
		if count() != 0 {
			t.Fatal("rows committed")
		}
		checkReleased()
	})
	t.Run("first batch error", func(t *testing.T) {
		called := false
		err := postgres.RunInTx(ctx, pool, func(b *pgx.Batch) { b.Queue("INSERT INTO nope VALUES (1)") },
			func(pgx.Tx) error { called = true; return nil })
		if err == nil || called {
			t.Fatalf("RunInTx = %v (fn called %v), want an error before fn", err, called)
		}
		checkReleased()
	})
	t.Run("panic rolls back", func(t *testing.T) {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			_ = postgres.RunInTx(ctx, pool, insert, func(pgx.Tx) error { panic("boom") })
		}()
		if count() != 0 {
			t.Fatal("rows committed")
		}
		checkReleased()
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		err := postgres.RunInTx(cctx, pool, insert, func(pgx.Tx) error { cancel(); return nil })
		if !errors.Is(err, context.Canceled) || count() != 0 {
			t.Fatalf("RunInTx = %v with %d rows, want context.Canceled and 0", err, count())
		}
		checkReleased()
	})
	t.Run("closed pool", func(t *testing.T) {
		p, err := pgxpool.New(ctx, pool.Config().ConnString())
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		if err := postgres.RunInTx(ctx, p, insert, nil); err == nil {
			t.Fatal("RunInTx on a closed pool succeeded")
		}
	})
}

// A notification that cannot be sent does not fail the committed write; it is logged.
func TestIntegrationNotifyFailureIsLogged(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// A role that may write the tables but not call pg_notify. It is created
	// before the database, so that its cleanup runs after the database is dropped.
	role := "t_nonotify_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), pgtest.AdminURL())
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP ROLE "+role); err != nil {
			t.Error(err)
		}
	})
	dsn := pgtest.NewDatabase(t)
	owner := open(t, dsn)
	if err := postgres.Migrate(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO `+role+`;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO `+role+`;
        REVOKE EXECUTE ON FUNCTION pg_catalog.pg_notify(text, text) FROM PUBLIC`); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	pool := open(t, u.String())

	var logs bytes.Buffer
	repo := postgres.NewRepository(pool, postgres.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	f := fixture{pool: owner, repo: repo}
	c := newCompania(t, "Theta", "TH-1")
	if err := repo.Add(ctx, c, command.Meta{}); err != nil {
		t.Fatalf("Add = %v, want nil: the write committed", err)
	}
	if _, err := repo.Update(ctx, c.ID(), command.Meta{}, func(c *compania.Compania) error { return c.Aprobar(now()) }); err != nil {
		t.Fatalf("Update = %v, want nil", err)
	}
	repo.Close() // waits for the notifications
	if got, want := f.counts(t), [4]int{1, 2, 2, 0}; got != want {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "outbox notification not sent") || !strings.Contains(logs.String(), "pg_notify") {
		t.Fatalf("log = %q, want the lost notification and its cause", logs.String())
	}
	if s := pool.Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired", s.AcquiredConns())
	}
}

func TestIntegrationUnreachableDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t, pgtest.NewDatabase(t))
	pool.Close()
	repo := postgres.NewRepository(pool)
	defer repo.Close()
	if err := repo.Add(ctx, newCompania(t, "Nu", "N-1"), command.Meta{}); err == nil {
		t.Error("Add on a closed pool succeeded")
	}
	if _, err := repo.Update(ctx, uuid.NewString(), command.Meta{}, func(*compania.Compania) error { return nil }); err == nil || errors.Is(err, compania.ErrNotFound) {
		t.Errorf("Update on a closed pool = %v, want a connection error", err)
	}
	if _, _, err := repo.LookupIdempotency(ctx, "s", "k"); err == nil {
		t.Error("LookupIdempotency on a closed pool succeeded")
	}
	if _, err := repo.PruneIdempotency(ctx, time.Hour); err == nil {
		t.Error("PruneIdempotency on a closed pool succeeded")
	}
	if err := postgres.Migrate(ctx, pool); err == nil {
		t.Error("Migrate on a closed pool succeeded")
	}
}

func TestConstructorsRefuseNil(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func(){
		"NewRepository": func() { postgres.NewRepository(nil) },
		"NewChecker":    func() { postgres.NewChecker(nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s(nil) did not panic", name)
				}
			}()
			f()
		}()
	}
}

// listenOutbox LISTENs on the outbox channel on a connection of its own.
// wait fails the test unless the next notification, within 10 s, has the
// payload want; marker sends a notification of its own and waits for it,
// so that any notification sent before it would have arrived first.
func listenOutbox(t *testing.T, f fixture) (wait, marker func(string)) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "LISTEN "+outbox.Channel); err != nil {
		t.Fatal(err)
	}
	wait = func(want string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			t.Fatalf("WaitForNotification: %v", err)
		}
		if n.Channel != outbox.Channel || n.Payload != want {
			t.Fatalf("notification %q %q, want %q %q", n.Channel, n.Payload, outbox.Channel, want)
		}
	}
	marker = func(name string) {
		t.Helper()
		if _, err := f.pool.Exec(ctx, "SELECT pg_notify($1, $2)", outbox.Channel, name); err != nil {
			t.Fatal(err)
		}
		wait(name)
	}
	return wait, marker
}
