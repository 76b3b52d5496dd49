package kafkaintake

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
	"github.com/segmentio/kafka-go"
)

// This file holds the fakes of the pure unit tests: an in-memory
// single-topic "log" with a committed offset per partition, a dead-letter
// writer and a Creator with scripted failures.

// fakeLog is a topic with committed group offsets, consumed by a fake group
// member (run) that, like groupconsumer, starts at the committed offsets,
// hands the messages one at a time to the handler and commits one only when
// the handler returned nil while the run's context was live.
type fakeLog struct {
	mu        sync.Mutex
	topic     string
	parts     map[int][]kafka.Message
	committed map[int]int64
	commits   []kafka.Message // every successful commit, in order
	notify    chan struct{}
}

func newFakeLog(topic string) *fakeLog {
	return &fakeLog{topic: topic, parts: map[int][]kafka.Message{}, committed: map[int]int64{},
		notify: make(chan struct{}, 1)}
}

func (l *fakeLog) produce(partition int, key, value string, headers ...kafka.Header) kafka.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := kafka.Message{Topic: l.topic, Partition: partition, Offset: int64(len(l.parts[partition])),
		Key: []byte(key), Value: []byte(value), Headers: headers}
	l.parts[partition] = append(l.parts[partition], m)
	l.wake()
	return m
}

func (l *fakeLog) wake() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *fakeLog) committedOffset(p int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committed[p]
}

func (l *fakeLog) commitCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.commits)
}

// next returns the first message after pos, if any.
func (l *fakeLog) next(pos map[int]int64) (kafka.Message, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p := range 8 {
		if msgs := l.parts[p]; pos[p] < int64(len(msgs)) {
			return msgs[pos[p]], true
		}
	}
	return kafka.Message{}, false
}

// run is a fake group member: see fakeLog.
func (l *fakeLog) run(ctx context.Context, h groupconsumer.Handler, dl groupconsumer.DeadLetterer) error {
	l.mu.Lock()
	pos := maps.Clone(l.committed)
	l.mu.Unlock()
	for {
		m, ok := l.next(pos)
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-l.notify:
				continue
			}
		}
		if err := h.HandleBatch(ctx, []kafka.Message{m}, dl); err != nil || ctx.Err() != nil {
			return nil
		}
		pos[m.Partition] = m.Offset + 1
		l.mu.Lock()
		l.committed[m.Partition] = m.Offset + 1
		l.commits = append(l.commits, m)
		l.mu.Unlock()
	}
}

// fakeDLQ records dead letters; writeErrs fail the next writes.
type fakeDLQ struct {
	mu        sync.Mutex
	msgs      []kafka.Message
	writeErrs []error
	failAll   error // when set, every write fails with it
}

func (w *fakeDLQ) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAll != nil {
		return w.failAll
	}
	if len(w.writeErrs) > 0 {
		err := w.writeErrs[0]
		w.writeErrs = w.writeErrs[1:]
		return err
	}
	w.msgs = append(w.msgs, msgs...)
	return nil
}

// fakeDeadLetterer writes the copies of letters to a fakeDLQ once (the
// retries are groupconsumer's) and calls the consumer's OnDeadLetter hook.
type fakeDeadLetterer struct {
	c *Consumer
	w *fakeDLQ
}

func (d fakeDeadLetterer) DeadLetter(ctx context.Context, letters ...groupconsumer.Letter) error {
	var msgs []kafka.Message
	for _, l := range letters {
		msgs = append(msgs, d.c.group.Copy(l, time.Now()))
	}
	if err := d.w.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	for _, l := range letters {
		d.c.deadLettered(l.Reason)
	}
	return nil
}

func (w *fakeDLQ) snapshot() []kafka.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]kafka.Message(nil), w.msgs...)
}

// fakeCreator is an idempotent in-memory use case: it records commands,
// replays a known (scope, key), refuses a known key with another hash and
// a duplicate nombre+identificacion, validates like the domain, and fails
// with the scripted errors first.
type fakeCreator struct {
	mu      sync.Mutex
	errs    []error
	failAll error // when set, every call fails with it
	calls   []command.CrearCompania
	keys    map[string][]byte
	pairs   map[string]bool
	// onHandle, when set, runs at the start of every call (outside the lock).
	onHandle func(command.CrearCompania)
	created  int
}

func newFakeCreator(errs ...error) *fakeCreator {
	return &fakeCreator{errs: errs, keys: map[string][]byte{}, pairs: map[string]bool{}}
}

func (f *fakeCreator) Handle(ctx context.Context, cmd command.CrearCompania) (command.Result, error) {
	if f.onHandle != nil {
		f.onHandle(cmd)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, cmd)
	if f.failAll != nil {
		return command.Result{}, f.failAll
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return command.Result{}, err
	}
	k := cmd.Idempotency.Scope + "\x00" + cmd.Idempotency.Key
	if h, ok := f.keys[k]; ok {
		if string(h) != string(cmd.Idempotency.RequestHash) {
			return command.Result{}, command.ErrIdempotencyMismatch
		}
		return command.Result{Replayed: true}, nil
	}
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.created+1)
	c, err := compania.New(id, cmd.Datos, time.Now())
	if err != nil {
		return command.Result{}, err
	}
	pair := cmd.Datos.Nombre + "\x00" + cmd.Datos.Identificacion
	if f.pairs[pair] {
		return command.Result{}, fmt.Errorf("crear compania: %w", compania.ErrDuplicate)
	}
	f.pairs[pair] = true
	f.keys[k] = cmd.Idempotency.RequestHash
	f.created++
	return command.Result{Compania: c.Snapshot()}, nil
}

func (f *fakeCreator) counts() (calls, created int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls), f.created
}

// logRecords captures slog records.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// messages returns the records with the given message, as attribute maps.
func (h *logRecords) messages(msg string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		m := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

// fakeConsumer builds a Consumer on the fakes with fast backoff.
func fakeConsumer(t *testing.T, l *fakeLog, w *fakeDLQ, cr Creator) (*Consumer, *logRecords) {
	t.Helper()
	logs := &logRecords{}
	c, err := New(Config{Brokers: []string{"fake:9092"}, GroupID: "g", Topic: l.topic,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, cr, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	c.run = func(ctx context.Context, h groupconsumer.Handler) error {
		return l.run(ctx, h, fakeDeadLetterer{c, w})
	}
	return c, logs
}

// start runs c until the test ends or stop is called; stop returns Run's error.
func start(t *testing.T, c *Consumer) (stop func() error) {
	t.Helper()
	return runtest.StartErr(t, c.Run)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
