package consumer_test

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/projection"
	"github.com/propalpes/companias/services/query/internal/view"
)

const topic = "eventos"

// ctxT bounds a test's calls to 3 minutes.
func ctxT(t testing.TB) context.Context {
	t.Helper()
	return runtest.Context(t, 3*time.Minute)
}

// eventually polls cond every 20ms until it holds or d passes.
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

// startKafka starts a broker with the events topic and its DLQ.
func startKafka(t testing.TB, partitions int) *kafkabroker.Broker {
	t.Helper()
	return kafkabroker.StartT(t, kafkabroker.Options{}, partitions, topic, topic+".dlq")
}

// mongoEnv is a FerretDB server (restartable on the same address and
// backend) and a store on it.
type mongoEnv struct {
	srv    *mongowire.Server
	opts   mongowire.Options
	client *mongo.Client
	store  *mongoview.Store
}

func startMongo(t testing.TB) *mongoEnv {
	t.Helper()
	return startMongoWith(t, mongowire.Options{}, mongoview.Options{})
}

// startMongoWith is startMongo with server options (the backend is always a
// fresh PostgreSQL database) and store options (Database "views").
func startMongoWith(t testing.TB, srvOpts mongowire.Options, storeOpts mongoview.Options) *mongoEnv {
	t.Helper()
	srvOpts.Handler, srvOpts.PostgreSQLURL = mongowire.HandlerPostgreSQL, pgtest.NewDatabase(t)
	e := &mongoEnv{opts: srvOpts}
	e.start(t)
	u, err := url.Parse(e.srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	e.opts.Addr = u.Host
	e.client, err = mongo.Connect(options.Client().ApplyURI(e.srv.URI()).
		SetTimeout(5 * time.Second).SetServerSelectionTimeout(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.client.Disconnect(context.Background()) })
	storeOpts.Database, storeOpts.OnCollectionCreated = "views", e.srv.EnsureIDIndex
	e.store, err = mongoview.Open(ctxT(t), e.client, storeOpts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *mongoEnv) start(t testing.TB) {
	t.Helper()
	srv, err := mongowire.Start(ctxT(t), e.opts)
	if err != nil {
		t.Fatalf("start FerretDB: %v", err)
	}
	e.srv = srv
	t.Cleanup(func() { _ = srv.Close() })
}

// producer writes events or raw messages to the events topic.
type producer struct {
	w *kafka.Writer
}

func newProducer(t testing.TB, addr string) *producer {
	t.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: &kafka.Transport{},
	}
	t.Cleanup(func() { _ = w.Close() })
	return &producer{w: w}
}

func (p *producer) events(t testing.TB, events ...companiaevent.Event) {
	t.Helper()
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		m, err := companiaevent.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = toKafka(m)
	}
	p.raw(t, msgs...)
}

func (p *producer) raw(t testing.TB, msgs ...kafka.Message) {
	t.Helper()
	if err := p.w.WriteMessages(ctxT(t), msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func toKafka(m companiaevent.Message) kafka.Message {
	h := make([]kafka.Header, len(m.Headers))
	for i, x := range m.Headers {
		h[i] = kafka.Header{Key: x.Key, Value: x.Value}
	}
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: h}
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func uuid(n int) string { return fmt.Sprintf("0000000%d-0000-4000-8000-%012d", n%3, n) }

// lifecycle returns the 3 or 4 schema-valid events of company n: created,
// renamed, then approved and updated again, or (every third company) rejected.
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
	c.Version, c.FechaActualizacion = 3, c.FechaActualizacion.Add(time.Minute)
	if n%3 == 0 {
		motivo := "documentos incompletos"
		c.Estado, c.MotivoRechazo = companiaevent.EstadoRechazada, &motivo
		return append(out, ev(companiaevent.CompaniaRechazada, c))
	}
	c.Estado = companiaevent.EstadoAprobada
	out = append(out, ev(companiaevent.CompaniaAprobada, c))
	c.Version, c.Email, c.FechaActualizacion = 4, fmt.Sprintf("ventas%d@empresa.co", n), c.FechaActualizacion.Add(time.Minute)
	return append(out, ev(companiaevent.CompaniaActualizada, c, "email"))
}

// fold is the expected view of each company after events.
func fold(events []companiaevent.Event) map[string]view.Compania {
	views := map[string]view.Compania{}
	for _, v := range projection.Collapse(events) {
		views[v.ID] = v
	}
	return views
}

// running is a consumer running in the background. stop cancels it and
// waits for Run to return nil (see runtest.Start); it also runs at cleanup.
type running struct {
	c    *consumer.Consumer
	stop func()
}

func startConsumer(t testing.TB, cfg consumer.Config, w consumer.Writer) *running {
	t.Helper()
	if cfg.Topic == "" {
		cfg.Topic = topic
	}
	if cfg.GroupID == "" {
		cfg.GroupID = "query"
	}
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second // kfake's minimum
	cfg.RebalanceTimeout = 5 * time.Second
	cfg.JoinGroupBackoff = 200 * time.Millisecond
	cfg.StatusInterval = 100 * time.Millisecond
	if cfg.RetryMax == 0 {
		cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	}
	c, err := consumer.New(cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	return &running{c: c, stop: runtest.Start(t, c.Run)}
}

// caughtUp reports whether the partitions hold total messages and the group
// committed every one up to its high watermark, according to the freshest of
// the given statuses.
func caughtUp(total int64, statuses ...[]view.PartitionStatus) bool {
	best := map[int]view.PartitionStatus{}
	for _, st := range statuses {
		for _, p := range st {
			b, ok := best[p.Partition]
			if !ok {
				best[p.Partition] = p
				continue
			}
			b.Committed, b.HighWatermark = max(b.Committed, p.Committed), max(b.HighWatermark, p.HighWatermark)
			best[p.Partition] = b
		}
	}
	var sum int64
	for _, p := range best {
		sum += p.HighWatermark
		if p.HighWatermark > 0 && p.Committed != p.HighWatermark {
			return false
		}
	}
	return sum == total
}

// groupCommitted returns the group's committed offsets of the events topic
// partitions, read from the broker (-1: none).
func groupCommitted(t testing.TB, addr, group string, partitions int) map[int]int64 {
	t.Helper()
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}}
	res, err := c.OffsetFetch(ctxT(t), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("offset fetch: %v", res.Error)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch of partition %d: %v", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// logBuffer is a goroutine-safe log sink whose lines can be counted.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns how many lines contain s.
func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// checkViews compares every expected view with the store.
func checkViews(t testing.TB, s *mongoview.Store, want map[string]view.Compania) {
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
