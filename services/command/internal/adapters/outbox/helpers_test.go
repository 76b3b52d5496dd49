package outbox_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/services/command/internal/adapters/integration"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

const partitions = 6

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// newPool returns a pool on a fresh, migrated database, and its DSN.
func newPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	pool, err := postgres.Open(ctx, dsn, postgres.WithMaxConns(12))
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return pool, dsn
}

// startBroker starts an in-process Kafka broker on addr ("" for a free
// port) persisting to dataDir ("" for none), closed at cleanup.
func startBroker(t testing.TB, addr, dataDir string) *kafkabroker.Broker {
	return kafkabroker.StartT(t, kafkabroker.Options{Addr: addr, DataDir: dataDir}, 0)
}

// newTopic creates a topic with 6 partitions.
func newTopic(t testing.TB, brokerAddr string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	topic := "eventos-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := topics.Ensure(ctx, kafkakit.Config{Brokers: []string{brokerAddr}}, topics.Topic{Name: topic, Partitions: partitions}); err != nil {
		t.Fatalf("ensure topic: %v", err)
	}
	return topic
}

func newWriter(t testing.TB, brokerAddr string) *outbox.Writer {
	t.Helper()
	w, err := outbox.NewWriter(outbox.WriterConfig{Kafka: kafkakit.Config{Brokers: []string{brokerAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// company builds the events of one company: CompaniaCreada then n-1
// CompaniaActualizada, encoded as Kafka records.
func company(t testing.TB, n int) []companiaevent.Message {
	t.Helper()
	now := time.Now().UTC()
	c, err := compania.New(uuid.NewString(), compania.Datos{
		Nombre: "ACME SAS", Email: "info@acme.co", Identificacion: "900123456-7",
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= n; i++ {
		nombre := fmt.Sprintf("ACME %d SAS", i)
		if err := c.Actualizar(compania.Cambios{Nombre: &nombre}, now.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	var out []companiaevent.Message
	for _, e := range c.Events() {
		id, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		m, err := integration.Message(id.String(), e, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// commit inserts msgs as outbox rows of topic in one transaction that
// notifies the outbox channel, as the command repository does.
func commit(ctx context.Context, pool *pgxpool.Pool, topic string, msgs ...companiaevent.Message) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, m := range msgs {
		h, err := outbox.EncodeHeaders(m.Headers)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, topic, key, value, headers) VALUES ($1, $2, $3, $4, $5)`,
			header(m.Headers, companiaevent.HeaderID), topic, m.Key, m.Value, h); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, outbox.Channel); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func mustCommit(t testing.TB, pool *pgxpool.Pool, topic string, msgs ...companiaevent.Message) {
	t.Helper()
	if err := commit(context.Background(), pool, topic, msgs...); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func header(hs []companiaevent.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func kheader(hs []kafka.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func unpublished(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatalf("count unpublished: %v", err)
	}
	return n
}

// runRelay runs r until the test ends; stop cancels it and checks that Run
// returned nil.
func runRelay(t testing.TB, r *outbox.Relay) (stop func()) {
	t.Helper()
	return runtest.Start(t, r.Run)
}

// consumer reads every partition of a topic from the beginning.
type consumer struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func consume(t testing.TB, brokerAddr, topic string) *consumer {
	t.Helper()
	return consumeParts(t, brokerAddr, topic, partitions)
}

// consumeParts reads the n partitions of a topic from the beginning.
func consumeParts(t testing.TB, brokerAddr, topic string, n int) *consumer {
	t.Helper()
	c := &consumer{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := range n {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   []string{brokerAddr},
			Topic:     topic,
			Partition: p,
			MaxWait:   50 * time.Millisecond,
			Logger:    nil,
		})
		wg.Go(func() {
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				c.mu.Lock()
				c.msgs = append(c.msgs, m)
				c.mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

func (c *consumer) all() []kafka.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]kafka.Message(nil), c.msgs...)
}

// ids returns how many times each ce_id was received.
func (c *consumer) ids() map[string]int {
	out := map[string]int{}
	for _, m := range c.all() {
		out[kheader(m.Headers, companiaevent.HeaderID)]++
	}
	return out
}

// hasAll reports whether every message of want was received at least once.
func (c *consumer) hasAll(want []companiaevent.Message) bool {
	got := c.ids()
	for _, m := range want {
		if got[header(m.Headers, companiaevent.HeaderID)] == 0 {
			return false
		}
	}
	return true
}

// checkCompanyOrder checks, per company (key), that all its records are on
// one partition and that, keeping the first copy of each ce_id, versions
// run 1, 2, 3… in partition order. With exact, no duplicate is allowed.
func checkCompanyOrder(t testing.TB, msgs []kafka.Message, exact bool) {
	t.Helper()
	byPart := map[int][]kafka.Message{}
	for _, m := range msgs {
		byPart[m.Partition] = append(byPart[m.Partition], m)
	}
	partOf := map[string]int{}
	next := map[string]int64{}
	seen := map[string]bool{}
	for p, ms := range byPart {
		// Readers deliver each partition in offset order; sort defensively.
		sortByOffset(ms)
		for _, m := range ms {
			e, err := companiaevent.Decode(toContract(m.Headers), m.Value)
			if err != nil {
				t.Fatalf("decode p%d@%d: %v", p, m.Offset, err)
			}
			key := string(m.Key)
			if key != e.Data.Compania.ID {
				t.Errorf("key %q, want the company id %q", key, e.Data.Compania.ID)
			}
			if q, ok := partOf[key]; ok && q != p {
				t.Errorf("company %s on partitions %d and %d", key, q, p)
			}
			partOf[key] = p
			if seen[e.ID] {
				if exact {
					t.Errorf("duplicate ce_id %s", e.ID)
				}
				continue
			}
			seen[e.ID] = true
			if want := next[key] + 1; e.Data.Compania.Version != want {
				t.Errorf("company %s: version %d after %d (p%d@%d)", key, e.Data.Compania.Version, next[key], p, m.Offset)
			}
			next[key] = e.Data.Compania.Version
		}
	}
}

func sortByOffset(ms []kafka.Message) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Offset < ms[j-1].Offset; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func toContract(hs []kafka.Header) []companiaevent.Header {
	out := make([]companiaevent.Header, len(hs))
	for i, h := range hs {
		out[i] = companiaevent.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// schemas compiles the contract's JSON Schemas, one per event name.
func schemas(t testing.TB) map[companiaevent.Name]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for id, b := range companiaevent.Schemas() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("schema %s: %v", id, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("schema %s: %v", id, err)
		}
	}
	out := map[companiaevent.Name]*jsonschema.Schema{}
	for _, n := range companiaevent.Names() {
		s, err := c.Compile(companiaevent.SchemaID(n))
		if err != nil {
			t.Fatalf("compile %s: %v", n, err)
		}
		out[n] = s
	}
	return out
}

// fakePublisher is a Publisher whose behaviour each test sets.
type fakePublisher struct {
	mu    sync.Mutex
	calls [][]kafka.Message
	fn    func(ctx context.Context, call int, msgs []kafka.Message) error
}

func (f *fakePublisher) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	call := len(f.calls)
	f.calls = append(f.calls, append([]kafka.Message(nil), msgs...))
	fn := f.fn
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx, call, msgs)
}

func (f *fakePublisher) Calls() [][]kafka.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]kafka.Message(nil), f.calls...)
}

// countingPublisher counts the failures of a real Publisher.
type countingPublisher struct {
	outbox.Publisher
	mu       sync.Mutex
	failures int
}

func (c *countingPublisher) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	err := c.Publisher.WriteMessages(ctx, msgs...)
	if err != nil {
		c.mu.Lock()
		c.failures++
		c.mu.Unlock()
	}
	return err
}

func (c *countingPublisher) Failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}

// logRecorder is a slog.Handler that keeps the messages of the records.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

var errBrokerDown = errors.New("broker down (fake)")
