package rebuild_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/projection"
	"github.com/propalpes/companias/services/query/internal/rebuild"
	"github.com/propalpes/companias/services/query/internal/view"
)

const topic = "eventos"

// ctxT bounds a test's calls to 3 minutes.
func ctxT(t testing.TB) context.Context {
	t.Helper()
	return runtest.Context(t, 3*time.Minute)
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

type env struct {
	broker *kafkabroker.Broker
	client *mongo.Client
	store  *mongoview.Store
	writer *kafka.Writer
	ccfg   consumer.Config
}

func setup(t *testing.T, partitions int) *env {
	t.Helper()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, partitions, topic, topic+".dlq")
	srv, err := mongowire.Start(ctxT(t), mongowire.Options{PostgreSQLURL: pgtest.NewDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	store, err := mongoview.Open(ctxT(t), client, mongoview.Options{
		Database: "views", PointerTTL: 200 * time.Millisecond, OnCollectionCreated: srv.EnsureIDIndex,
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{}}
	t.Cleanup(func() { _ = w.Close() })
	return &env{broker: b, client: client, store: store, writer: w, ccfg: consumer.Config{
		Brokers: []string{b.Addr()}, Topic: topic, GroupID: "live",
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		StatusInterval: 100 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}}
}

func (e *env) produce(t testing.TB, events ...companiaevent.Event) {
	t.Helper()
	msgs := make([]kafka.Message, len(events))
	for i, ev := range events {
		m, err := companiaevent.Encode(ev)
		if err != nil {
			t.Error(err)
			return
		}
		h := make([]kafka.Header, len(m.Headers))
		for j, x := range m.Headers {
			h[j] = kafka.Header{Key: x.Key, Value: x.Value}
		}
		msgs[i] = kafka.Message{Key: m.Key, Value: m.Value, Headers: h}
	}
	if err := e.writer.WriteMessages(context.Background(), msgs...); err != nil {
		t.Errorf("produce: %v", err)
	}
}

// live starts the live projection consumer.
func (e *env) live(t *testing.T) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(e.ccfg, e.store)
	if err != nil {
		t.Fatal(err)
	}
	runtest.Start(t, c.Run)
	return c
}

func (e *env) rebuilder(t *testing.T, cfg rebuild.Config) *rebuild.Rebuilder {
	t.Helper()
	cfg.Consumer = e.ccfg
	r, err := rebuild.New(cfg, e.store)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func uuid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func lifecycle(n int) []companiaevent.Event {
	c := companiaevent.Compania{
		ID: uuid(n), Nombre: fmt.Sprintf("Empresa %d", n), Email: fmt.Sprintf("info%d@empresa.co", n),
		Identificacion: fmt.Sprintf("NIT-%d", n), Estado: companiaevent.EstadoPendiente,
		FechaCreacion: t0.Add(time.Duration(n) * time.Second), Version: 1,
	}
	c.FechaActualizacion = c.FechaCreacion
	ev := func(name companiaevent.Name, c companiaevent.Compania, campos ...string) companiaevent.Event {
		return companiaevent.Event{ID: fmt.Sprintf("ev-%d-%d", n, c.Version), Name: name,
			Time: c.FechaActualizacion, Data: companiaevent.Data{Compania: c, Campos: campos}}
	}
	out := []companiaevent.Event{ev(companiaevent.CompaniaCreada, c)}
	c.Version, c.Nombre, c.FechaActualizacion = 2, c.Nombre+" SAS", c.FechaActualizacion.Add(time.Minute)
	out = append(out, ev(companiaevent.CompaniaActualizada, c, "nombre"))
	c.Version, c.Estado, c.FechaActualizacion = 3, companiaevent.EstadoAprobada, c.FechaActualizacion.Add(time.Minute)
	return append(out, ev(companiaevent.CompaniaAprobada, c))
}

func fold(events []companiaevent.Event) map[string]view.Compania {
	out := map[string]view.Compania{}
	for _, v := range projection.Collapse(events) {
		out[v.ID] = v
	}
	return out
}

func caughtUp(c *consumer.Consumer, total int64) bool {
	var sum int64
	for _, st := range c.Status() {
		sum += st.HighWatermark
		if st.Committed != st.HighWatermark && st.HighWatermark > 0 {
			return false
		}
	}
	return sum == total
}

func checkViews(t *testing.T, s *mongoview.Store, want map[string]view.Compania) {
	t.Helper()
	for id, w := range want {
		got, err := s.Get(ctxT(t), id)
		if err != nil {
			t.Errorf("Get %s: %v", id, err)
			continue
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("view %s:\n got %+v\nwant %+v", id, got, w)
		}
	}
	est, err := s.Estadisticas(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if est.Total != int64(len(want)) {
		t.Errorf("store holds %d views, want %d", est.Total, len(want))
	}
}

func TestIntegrationRebuildWhileQueriesRun(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	var events []companiaevent.Event
	for n := range 15 {
		events = append(events, lifecycle(n)...)
	}
	e.produce(t, events...)
	live := e.live(t)
	eventually(t, time.Minute, "the live consumer to catch up", func() bool { return caughtUp(live, int64(len(events))) })

	// Drift in the active generation that only a rebuild repairs.
	ctx := ctxT(t)
	if _, err := e.client.Database("views").Collection(mongoview.CollectionName("1")).
		DeleteOne(ctx, bson.D{{Key: "_id", Value: uuid(3)}}); err != nil {
		t.Fatal(err)
	}

	r := e.rebuilder(t, rebuild.Config{SwitchGap: 1})
	if _, err := r.Start(ctx); !errors.Is(err, rebuild.ErrNotRunning) {
		t.Errorf("Start before Run: %v", err)
	}
	runtest.Start(t, r.Run)
	eventually(t, 10*time.Second, "Run to host rebuilds", func() bool {
		_, err := r.Start(ctx)
		return !errors.Is(err, rebuild.ErrNotRunning)
	})
	p := r.Progress()
	if p.State != rebuild.StateRunning && p.State != rebuild.StateSwitching && p.State != rebuild.StateDone || p.Generation != "2" {
		t.Fatalf("progress after Start: %+v", p)
	}

	// Only one rebuild at a time, here and on any other replica.
	if _, err := r.Start(ctx); apperr.KindOf(err) != apperr.Conflict {
		t.Errorf("second Start: %v, want a Conflict", err)
	}
	other := e.rebuilder(t, rebuild.Config{})
	go func() { _ = other.Run(t.Context()) }() // runs until the test ends
	eventually(t, 10*time.Second, "the other replica to refuse", func() bool {
		_, err := other.Start(ctx)
		return apperr.KindOf(err) == apperr.Conflict
	})

	// Queries keep working during the rebuild, and events keep coming.
	var queries, failures atomic.Int64
	var mu sync.Mutex
	var firstFailure string
	stopQueries := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stopQueries:
				return
			default:
			}
			for n := range 15 {
				if n == 3 {
					continue // deleted above; it reappears after the switch
				}
				v, err := e.store.Get(ctx, uuid(n))
				queries.Add(1)
				if err != nil || v.Version < 3 {
					failures.Add(1)
					mu.Lock()
					if firstFailure == "" {
						firstFailure = fmt.Sprintf("Get %d: version %d, err %v", n, v.Version, err)
					}
					mu.Unlock()
				}
			}
			if _, err := e.store.List(ctx, view.Filter{Limit: 5}); err != nil {
				failures.Add(1)
			}
		}
	})
	var during []companiaevent.Event
	for n := 100; n < 110; n++ {
		during = append(during, lifecycle(n)...)
	}
	wg.Go(func() {
		for _, ev := range during {
			e.produce(t, ev)
		}
	})

	eventually(t, 2*time.Minute, "the rebuild to finish", func() bool {
		s := r.Progress().State
		return s == rebuild.StateDone || s == rebuild.StateFailed
	})
	close(stopQueries)
	wg.Wait()
	p = r.Progress()
	t.Logf("rebuild: %+v; %d queries during it; %s", p, queries.Load(), rebuild.Bar(p, 20))
	if p.State != rebuild.StateDone || p.Error != "" || p.Total == 0 || p.Processed != p.Total || p.FinishedAt.Before(p.StartedAt) {
		t.Fatalf("final progress: %+v", p)
	}
	if failures.Load() != 0 {
		t.Errorf("%d of %d queries failed during the rebuild; first: %s", failures.Load(), queries.Load(), firstFailure)
	}
	if gen, err := e.store.ActiveGeneration(ctx); err != nil || gen != "2" {
		t.Errorf("active generation %q, %v", gen, err)
	}
	if gens, err := e.store.Generations(ctx); err != nil || !reflect.DeepEqual(gens, []string{"2"}) {
		t.Errorf("generations after the rebuild: %v, %v", gens, err)
	}
	if r.Status() != nil {
		t.Errorf("replay status after the rebuild: %v", r.Status())
	}

	// The live consumer writes to the new generation; nothing is missing.
	after := lifecycle(200)
	e.produce(t, after...)
	all := append(append(append([]companiaevent.Event{}, events...), during...), after...)
	eventually(t, time.Minute, "the live consumer to catch up", func() bool { return caughtUp(live, int64(len(all))) })
	checkViews(t, e.store, fold(all))

	// The lock is free again: a second rebuild works, from generation 2 to 3.
	if _, err := other.Start(ctx); err != nil {
		t.Fatalf("a later rebuild: %v", err)
	}
	eventually(t, 2*time.Minute, "the second rebuild", func() bool { return other.Progress().State == rebuild.StateDone })
	if gen, _ := e.store.ActiveGeneration(ctx); gen != "3" {
		t.Errorf("after the second rebuild: generation %q", gen)
	}
	checkViews(t, e.store, fold(all))
}

func TestIntegrationRebuildSynchronousAndFailure(t *testing.T) {
	t.Parallel()
	e := setup(t, 2)
	var events []companiaevent.Event
	for n := range 8 {
		events = append(events, lifecycle(n)...)
	}
	e.produce(t, events...)
	// A poison message in the log is counted, not dead-lettered again.
	if err := e.writer.WriteMessages(ctxT(t), kafka.Message{Key: []byte("x"), Value: []byte("{")}); err != nil {
		t.Fatal(err)
	}

	// A cancelled rebuild leaves the active generation alone and drops its own.
	r := e.rebuilder(t, rebuild.Config{})
	ctx, cancel := context.WithCancel(ctxT(t))
	var seen atomic.Bool
	_, err := r.Rebuild(ctx, func(p view.RebuildProgress) {
		if p.State == rebuild.StateRunning && !seen.Swap(true) {
			cancel()
		}
	})
	if err == nil || r.Progress().State != rebuild.StateFailed || r.Progress().Error == "" {
		t.Fatalf("cancelled rebuild: err %v, progress %+v", err, r.Progress())
	}
	if gen, _ := e.store.ActiveGeneration(ctxT(t)); gen != "1" {
		t.Errorf("active generation after a failed rebuild: %q", gen)
	}
	if gens, _ := e.store.Generations(ctxT(t)); !reflect.DeepEqual(gens, []string{"1"}) {
		t.Errorf("generations after a failed rebuild: %v", gens)
	}
	if _, err := e.store.RebuildLockHolder(ctxT(t)); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("lock after a failed rebuild: %v", err)
	}

	var barsMu sync.Mutex
	var bars []string
	p, err := r.Rebuild(ctxT(t), func(p view.RebuildProgress) {
		barsMu.Lock()
		bars = append(bars, rebuild.Bar(p, 10))
		barsMu.Unlock()
	})
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if p.State != rebuild.StateDone || p.Total != int64(len(events)+1) || p.Processed != p.Total {
		t.Errorf("progress: %+v", p)
	}
	barsMu.Lock()
	defer barsMu.Unlock()
	if len(bars) == 0 || !strings.HasPrefix(bars[len(bars)-1], "[##########] 100.0%") {
		t.Errorf("progress bars: %q", bars)
	}
	checkViews(t, e.store, fold(events))
}

func TestBar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    view.RebuildProgress
		want string
	}{
		{view.RebuildProgress{State: rebuild.StateRunning, Generation: "2", Processed: 5, Total: 10},
			"[#####.....]  50.0%  5/10  running gen 2"},
		{view.RebuildProgress{State: rebuild.StateRunning, Generation: "2"},
			"[..........]   0.0%  0/0  running gen 2"},
		{view.RebuildProgress{State: rebuild.StateDone, Generation: "3"},
			"[##########] 100.0%  0/0  done gen 3"},
		{view.RebuildProgress{State: rebuild.StateFailed, Generation: "3", Processed: 20, Total: 10, Error: "boom"},
			"[##########] 100.0%  20/10  failed gen 3: boom"},
	}
	for _, tt := range tests {
		if got := rebuild.Bar(tt.p, 10); got != tt.want {
			t.Errorf("Bar(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
