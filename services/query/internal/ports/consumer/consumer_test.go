package consumer_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/metrics"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/view"
)

func TestIntegrationConsumerConvergesWithDuplicatesAndReplays(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 3)
	m := startMongo(t)
	p := newProducer(t, b.Addr())

	var all []companiaevent.Event
	for n := range 12 {
		all = append(all, lifecycle(n)...)
	}
	p.events(t, all...)
	// Producer retries and relay restarts: duplicates, a replayed suffix,
	// and older events after newer ones within a partition.
	var again []companiaevent.Event
	for n := range 12 {
		ev := lifecycle(n)
		again = append(again, ev[0], ev[len(ev)-1], ev[1])
	}
	p.events(t, again...)
	total := int64(len(all) + len(again))

	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}, BatchSize: 7}, m.store)
	eventually(t, time.Minute, "the group to commit every message", func() bool { return caughtUp(total, r.c.Status()) })
	checkViews(t, m.store, fold(all))

	if !r.c.Joined() {
		t.Errorf("Joined() = false while running")
	}
	c := r.c.Counters()
	if c.Applied != total || c.DeadLettered != 0 || c.SkippedUnknown != 0 || c.Batches == 0 {
		t.Errorf("counters: %+v, want %d applied", c, total)
	}
	for _, st := range r.c.Status() {
		if st.State != view.StateRunning || st.Lag != 0 || (st.HighWatermark > 0) == st.LastEventTime.IsZero() {
			t.Errorf("status of partition %d: %+v", st.Partition, st)
		}
	}

	// Changed wakes up on the next batch; ChangedID only for the ids it wrote.
	changed := r.c.Changed()
	extra := lifecycle(40)[:1]
	mine, releaseMine := r.c.ChangedID(extra[0].Subject())
	defer releaseMine()
	other, releaseOther := r.c.ChangedID("not-in-the-batch")
	defer releaseOther()
	p.events(t, extra...)
	select {
	case <-changed:
	case <-time.After(time.Minute):
		t.Fatal("Changed did not fire")
	}
	select {
	case <-mine:
	case <-time.After(time.Minute):
		t.Fatal("ChangedID did not fire for the id the batch wrote")
	}
	select {
	case <-other:
		t.Error("ChangedID fired for an id the batch did not write")
	default:
	}
	r.stop()
	if r.c.Joined() {
		t.Errorf("Joined() = true after Run returned")
	}

	// A new member of the same group resumes after the committed offsets: it
	// applies only what came later.
	later := lifecycle(41)
	p.events(t, later...)
	r2 := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}}, m.store)
	total += int64(len(extra) + len(later))
	eventually(t, time.Minute, "the second consumer to catch up", func() bool { return caughtUp(total, r2.c.Status()) })
	if got := r2.c.Counters().Applied; got != int64(len(later)) {
		t.Errorf("resumed consumer applied %d events, want %d (only the new ones)", got, len(later))
	}
	checkViews(t, m.store, fold(append(append(all, extra...), later...)))
}

func TestIntegrationConsumerPoisonGoesToDLQ(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 1)
	m := startMongo(t)
	p := newProducer(t, b.Addr())

	good := lifecycle(1)
	enc := func(e companiaevent.Event) kafka.Message {
		msg, err := companiaevent.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		return toKafka(msg)
	}
	setHeader := func(m kafka.Message, key, value string) kafka.Message {
		h := []kafka.Header{}
		for _, x := range m.Headers {
			if x.Key != key {
				h = append(h, x)
			}
		}
		if value != "" {
			h = append(h, kafka.Header{Key: key, Value: []byte(value)})
		}
		m.Headers = h
		return m
	}
	malformed := enc(good[0])
	malformed.Value = []byte(`{"compania": `)
	// A dead letter replayed by hand still carries its old dlq_* headers:
	// the new copy must carry one set, the consumer's own.
	malformed = setHeader(malformed, deadletter.HeaderReason, deadletter.ReasonConflict)
	malformed = setHeader(malformed, "dlq_replayed_from", topic+".dlq/0/9")
	noType := setHeader(enc(good[0]), companiaevent.HeaderType, "")
	v2 := setHeader(enc(good[0]), companiaevent.HeaderType, "co.propalpes.companias.CompaniaCreada.v2")
	// Personal data that breaks the schema: neither value may reach the
	// logs or the dead letter's dlq_error.
	const badEmail, badIdentificacion = "not-an-email", "NIT 900.123.456"
	badSchema := good[1]
	badSchema.Data.Compania.Email, badSchema.Data.Compania.Identificacion = badEmail, badIdentificacion
	unknown := setHeader(enc(good[0]), companiaevent.HeaderType, "co.propalpes.companias.CompaniaFusionada.v1")

	msgs := []kafka.Message{enc(good[0]), malformed, noType, v2, enc(badSchema), unknown, enc(good[1]), enc(good[2])}
	p.raw(t, msgs...)
	wantDLQ := []struct {
		offset int64
		reason string
	}{
		{1, deadletter.ReasonMalformed},
		{2, deadletter.ReasonMalformed},
		{3, deadletter.ReasonUnsupportedVersion},
		{4, deadletter.ReasonInvalid},
	}

	var hookMu sync.Mutex
	var hookReasons []string
	var hookTimes []time.Time
	var logs logBuffer
	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}, GroupID: "poison",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnDeadLetter: func(reason string) {
			hookMu.Lock()
			defer hookMu.Unlock()
			hookReasons = append(hookReasons, reason)
		},
		OnApplied: func(times []time.Time) {
			hookMu.Lock()
			defer hookMu.Unlock()
			hookTimes = append(hookTimes, times...)
		},
	}, m.store)
	eventually(t, time.Minute, "the partition to move past the poison", func() bool {
		return caughtUp(int64(len(msgs)), r.c.Status())
	})
	checkViews(t, m.store, fold(good[:3]))
	if c := r.c.Counters(); c.DeadLettered != 4 || c.SkippedUnknown != 1 || c.Applied != 3 {
		t.Errorf("counters: %+v", c)
	}
	hookMu.Lock()
	var wantReasons []string
	for _, w := range wantDLQ {
		wantReasons = append(wantReasons, w.reason)
	}
	if !slices.Equal(hookReasons, wantReasons) {
		t.Errorf("OnDeadLetter reasons = %v, want %v", hookReasons, wantReasons)
	}
	if len(hookTimes) != 3 {
		t.Errorf("OnApplied got %d event times, want 3", len(hookTimes))
	}
	for i, tm := range hookTimes {
		if i < 3 && !tm.Equal(good[i].Time) {
			t.Errorf("OnApplied time %d = %v, want the event's ce_time %v", i, tm, good[i].Time)
		}
	}
	hookMu.Unlock()

	if n := logs.count("/compania/email: format email"); n == 0 {
		t.Error("no log line names the schema violation")
	}
	for _, v := range []string{badEmail, badIdentificacion} {
		if n := logs.count(v); n > 0 {
			t.Errorf("%d log lines quote %q", n, v)
		}
	}
	dlq := b.ReadT(t, topic+".dlq", 0, len(wantDLQ))
	for i, w := range wantDLQ {
		got := dlq[i]
		orig := msgs[w.offset]
		h := map[string]string{}
		for _, x := range got.Headers {
			if _, dup := h[x.Key]; dup && deadletter.IsHeader(x.Key) {
				t.Errorf("DLQ message %d: header %s twice", w.offset, x.Key)
			}
			h[x.Key] = string(x.Value)
		}
		if string(got.Key) != string(orig.Key) || string(got.Value) != string(orig.Value) {
			t.Errorf("DLQ message %d: key/value not preserved: %q %q", w.offset, got.Key, got.Value)
		}
		if v, ok := h["dlq_replayed_from"]; ok {
			t.Errorf("DLQ message %d: stale dlq_replayed_from=%q kept", w.offset, v)
		}
		for _, x := range orig.Headers {
			if deadletter.IsHeader(x.Key) {
				continue
			}
			if h[x.Key] != string(x.Value) {
				t.Errorf("DLQ message %d: original header %s = %q, want %q", w.offset, x.Key, h[x.Key], x.Value)
			}
		}
		want := map[string]string{
			deadletter.HeaderReason:    w.reason,
			deadletter.HeaderTopic:     topic,
			deadletter.HeaderPartition: "0",
			deadletter.HeaderOffset:    strconv.FormatInt(w.offset, 10),
			deadletter.HeaderConsumer:  "poison",
		}
		for k, v := range want {
			if h[k] != v {
				t.Errorf("DLQ message %d: header %s = %q, want %q", w.offset, k, h[k], v)
			}
		}
		if h[deadletter.HeaderError] == "" {
			t.Errorf("DLQ message %d: empty %s", w.offset, deadletter.HeaderError)
		}
		if w.offset == 4 && !strings.Contains(h[deadletter.HeaderError], "/compania/email: format email") {
			t.Errorf("DLQ message %d: %s = %q, want the path and rule broken", w.offset, deadletter.HeaderError, h[deadletter.HeaderError])
		}
		for _, v := range []string{badEmail, badIdentificacion} {
			if strings.Contains(h[deadletter.HeaderError], v) {
				t.Errorf("DLQ message %d: %s = %q quotes %q", w.offset, deadletter.HeaderError, h[deadletter.HeaderError], v)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, h[deadletter.HeaderTime]); err != nil {
			t.Errorf("DLQ message %d: %s: %v", w.offset, deadletter.HeaderTime, err)
		}
	}
}

func TestIntegrationConsumerMongoDownThenUp(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 2)
	m := startMongo(t)
	p := newProducer(t, b.Addr())

	var first, second []companiaevent.Event
	for n := range 6 {
		ev := lifecycle(n)
		first = append(first, ev[:2]...)
		second = append(second, ev[2:]...)
	}
	p.events(t, first...)
	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}}, m.store)
	eventually(t, time.Minute, "the first half", func() bool { return caughtUp(int64(len(first)), r.c.Status()) })

	if err := m.srv.Close(); err != nil {
		t.Fatal(err)
	}
	p.events(t, second...)
	total := int64(len(first) + len(second))
	eventually(t, time.Minute, "the consumer to report failing", func() bool {
		for _, st := range r.c.Status() {
			if st.State == view.StateFailing {
				return true
			}
		}
		return false
	})
	// Nothing is committed past the failed write.
	if caughtUp(total, r.c.Status()) {
		t.Fatalf("committed past a failed write: %+v", r.c.Status())
	}

	m.start(t) // same address and PostgreSQL database
	eventually(t, 2*time.Minute, "the consumer to recover and catch up", func() bool { return caughtUp(total, r.c.Status()) })
	checkViews(t, m.store, fold(append(first, second...)))
	for _, st := range r.c.Status() {
		if st.State != view.StateRunning {
			t.Errorf("partition %d state %q after recovery", st.Partition, st.State)
		}
	}
	if r.c.Counters().Retries == 0 {
		t.Errorf("no retries counted")
	}
}

func TestIntegrationConsumerGroupFailover(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 6)
	m := startMongo(t)
	p := newProducer(t, b.Addr())

	var events []companiaevent.Event
	for n := range 30 {
		events = append(events, lifecycle(n)...)
	}
	half := len(events) / 2
	p.events(t, events[:half]...)

	cfg := consumer.Config{Brokers: []string{b.Addr()}, GroupID: "failover", BatchSize: 10}
	rs := []*running{startConsumer(t, cfg, m.store), startConsumer(t, cfg, m.store), startConsumer(t, cfg, m.store)}
	statuses := func() [][]view.PartitionStatus {
		var out [][]view.PartitionStatus
		for _, r := range rs {
			out = append(out, r.c.Status())
		}
		return out
	}
	eventually(t, time.Minute, "the three members to share the partitions", func() bool {
		n := 0
		for _, r := range rs {
			held := 0
			for _, st := range r.c.Status() {
				if st.State != view.StateIdle {
					held++
				}
			}
			if held > 0 {
				n++
			}
		}
		return n == 3
	})

	// Kill one member mid-stream: the others take its partitions over.
	var applied atomic.Int64
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		for _, e := range events[half:] {
			p.events(t, e)
			applied.Add(1)
		}
	}()
	eventually(t, time.Minute, "some of the second half to be produced", func() bool { return applied.Load() > 5 })
	rs[1].stop()
	<-stop
	eventually(t, 2*time.Minute, "the survivors to commit everything", func() bool {
		st := statuses()
		return caughtUp(int64(len(events)), st[0], st[2])
	})
	checkViews(t, m.store, fold(events))

	held := map[int]bool{}
	for _, r := range []*running{rs[0], rs[2]} {
		for _, st := range r.c.Status() {
			if st.State == view.StateRunning {
				held[st.Partition] = true
			}
		}
	}
	if len(held) != 6 {
		t.Errorf("survivors hold partitions %v, want all 6", held)
	}
}

func TestIntegrationConsumerWriterErrorsBlockCommits(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 1)
	m := startMongo(t)
	p := newProducer(t, b.Addr())
	ev := lifecycle(1)
	p.events(t, ev...)

	var fail atomic.Bool
	fail.Store(true)
	var calls atomic.Int64
	w := consumer.WriterFunc(func(ctx context.Context, v []view.Run) ([]view.VersionGap, error) {
		calls.Add(1)
		if fail.Load() {
			return nil, errors.New("store down")
		}
		return m.store.WriteViews(ctx, v)
	})
	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}}, w)
	eventually(t, time.Minute, "a few failed attempts", func() bool { return calls.Load() >= 3 })
	for _, st := range r.c.Status() {
		if st.Committed > 0 || st.State != view.StateFailing {
			t.Errorf("while the writer fails: %+v", st)
		}
	}
	fail.Store(false)
	eventually(t, time.Minute, "the commit after the write", func() bool { return caughtUp(int64(len(ev)), r.c.Status()) })
	checkViews(t, m.store, fold(ev))
	if c := r.c.Counters(); c.Retries < 3 || c.WriteTimeouts != 0 {
		t.Errorf("counters %+v: want the failed writes retried and none counted as a timeout", c)
	}
}

// TestIntegrationConsumerStoreTimeoutRetriesTheBatch makes the first store
// writes apply part of the batch to FerretDB and then hang: each attempt
// is cancelled at WriteTimeout, counted and logged as a timeout, and the
// batch is retried whole; nothing is committed until a write succeeds, and
// no event is lost.
func TestIntegrationConsumerStoreTimeoutRetriesTheBatch(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 2)
	m := startMongo(t)
	p := newProducer(t, b.Addr())
	var events []companiaevent.Event
	for n := range 6 {
		events = append(events, lifecycle(n)...)
	}
	p.events(t, events...)

	const hangs = 3
	const timeout = time.Second
	hung := make(chan time.Duration) // an attempt hangs; the time left before its deadline
	release := make(chan struct{})   // the test has looked: the attempt may wait for its deadline
	var attempts atomic.Int64
	w := consumer.WriterFunc(func(ctx context.Context, views []view.Run) ([]view.VersionGap, error) {
		if attempts.Add(1) > hangs {
			return m.store.WriteViews(ctx, views)
		}
		// Half the batch reaches the store (whatever the deadline), then
		// the store never answers.
		if _, err := m.store.WriteViews(context.WithoutCancel(ctx), views[:len(views)/2]); err != nil {
			return nil, err
		}
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(time.Hour)
		}
		hung <- time.Until(deadline)
		<-release
		<-ctx.Done()
		return nil, ctx.Err()
	})
	var logs logBuffer
	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}, GroupID: "timeouts", WriteTimeout: timeout,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, w)

	for k := range hangs {
		var left time.Duration
		select {
		case left = <-hung:
		case <-time.After(time.Minute):
			t.Fatalf("attempt %d of the store write never started", k+1)
		}
		if left > timeout {
			t.Errorf("attempt %d: deadline %s away, want at most WriteTimeout %s", k+1, left, timeout)
		}
		for part, off := range groupCommitted(t, b.Addr(), "timeouts", 2) {
			if off >= 0 {
				t.Errorf("attempt %d: partition %d committed at %d while its batch is unwritten", k+1, part, off)
			}
		}
		if got := r.c.Counters().WriteTimeouts; got != int64(k) {
			t.Errorf("attempt %d: %d timeouts counted, want %d", k+1, got, k)
		}
		if k > 0 {
			for _, st := range r.c.Status() {
				if st.State == view.StateRunning {
					t.Errorf("attempt %d: partition %d reported running while its writes time out", k+1, st.Partition)
				}
			}
		}
		release <- struct{}{}
	}

	eventually(t, time.Minute, "the batch to be written and committed", func() bool {
		return caughtUp(int64(len(events)), r.c.Status())
	})
	checkViews(t, m.store, fold(events))
	c := r.c.Counters()
	// Later writes may time out too on a slow machine; the hung ones must.
	if c.WriteTimeouts < hangs || c.Retries < c.WriteTimeouts || c.Applied != int64(len(events)) {
		t.Errorf("counters %+v: want at least %d timeouts, each retried, and %d events applied once", c, hangs, len(events))
	}
	if n := logs.count("write views timed out; retrying"); n < hangs {
		t.Errorf("%d timeout warnings logged, want at least %d:\n%s", n, hangs, logs.b.String())
	}
}

// TestIntegrationConsumerFerretDBHangBecomesTimeouts provokes the real
// FerretDB hang: chunks of 4 matching statements on a pool of 4
// connections. The store write times out and is retried (the hung server
// keeps its connections, so every retry times out too) without committing;
// once the server is restarted with a pool that fits, the batch is written.
func TestIntegrationConsumerFerretDBHangBecomesTimeouts(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 1)
	m := startMongoWith(t, mongowire.Options{MaxConns: 4}, mongoview.Options{ChunkSize: 4})
	p := newProducer(t, b.Addr())
	var creates, updates []companiaevent.Event
	for n := range 8 {
		ev := lifecycle(n)
		creates, updates = append(creates, ev[0]), append(updates, ev[1])
	}
	p.events(t, creates...) // inserts: upserts that match nothing hold no connection
	r := startConsumer(t, consumer.Config{Brokers: []string{b.Addr()}, GroupID: "hang", WriteTimeout: 500 * time.Millisecond}, m.store)
	eventually(t, time.Minute, "the creates", func() bool { return caughtUp(int64(len(creates)), r.c.Status()) })

	p.events(t, updates...) // every statement matches: the first chunk hangs FerretDB
	eventually(t, time.Minute, "two store timeouts", func() bool { return r.c.Counters().WriteTimeouts >= 2 })
	if got := groupCommitted(t, b.Addr(), "hang", 1)[0]; got != int64(len(creates)) {
		t.Errorf("committed offset %d while the updates time out, want %d", got, len(creates))
	}

	// Remove the cause: the same data behind a pool the chunks fit in.
	if err := m.srv.Close(); err != nil {
		t.Fatal(err)
	}
	m.opts.MaxConns = 20
	m.start(t)
	total := int64(len(creates) + len(updates))
	eventually(t, 2*time.Minute, "the updates after the restart", func() bool { return caughtUp(total, r.c.Status()) })
	checkViews(t, m.store, fold(append(creates, updates...)))
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	w := consumer.WriterFunc(func(context.Context, []view.Run) ([]view.VersionGap, error) { return nil, nil })
	for name, tt := range map[string]struct {
		cfg  consumer.Config
		w    consumer.Writer
		want string
	}{
		"no brokers":       {consumer.Config{GroupID: "g"}, w, "no brokers"},
		"no group":         {consumer.Config{Brokers: []string{"x:1"}}, w, "empty group id"},
		"no writer":        {consumer.Config{Brokers: []string{"x:1"}, GroupID: "g"}, nil, "nil writer"},
		"dlq equals topic": {consumer.Config{Brokers: []string{"x:1"}, GroupID: "g", Topic: "t", DLQTopic: "t"}, w, "must differ"},
		"dlq equals the default topic": {
			consumer.Config{Brokers: []string{"x:1"}, GroupID: "g", DLQTopic: companiaevent.DefaultTopic}, w, "must differ"},
	} {
		_, err := consumer.New(tt.cfg, tt.w)
		if err == nil || !strings.HasPrefix(err.Error(), "consumer: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want a consumer error about %q", name, err, tt.want)
		}
	}
	c, err := consumer.New(consumer.Config{Brokers: []string{"x:1"}, GroupID: "g"}, w)
	if err != nil {
		t.Fatal(err)
	}
	if c.Joined() || len(c.Status()) != 0 {
		t.Errorf("a consumer that never ran: joined %v, status %v", c.Joined(), c.Status())
	}
}

// TestIntegrationConsumerReportsVersionGaps loses events on the way to the
// reader: company A's v3 (after its v1..v2 were written), and company B's
// v2 (between its v1 and v3, in one batch or over two). Each gap is logged
// at Warn with the company and both versions, passed to OnVersionGap (here
// the service's metric) once, and the newer events are still applied; a
// redelivered event is no gap.
func TestIntegrationConsumerReportsVersionGaps(t *testing.T) {
	t.Parallel()
	b := startKafka(t, 1)
	m := startMongo(t)
	p := newProducer(t, b.Addr())
	a, bb := lifecycle(1), lifecycle(4) // v1..v4 each

	reg := prometheus.NewRegistry()
	met, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var gaps []view.VersionGap
	var logs logBuffer
	r := startConsumer(t, consumer.Config{
		Brokers: []string{b.Addr()}, GroupID: "gaps",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnVersionGap: func(g view.VersionGap) {
			mu.Lock()
			gaps = append(gaps, g)
			mu.Unlock()
			met.VersionGap(g)
		},
	}, m.store)

	p.events(t, a[0], a[1])
	eventually(t, time.Minute, "A's v1..v2", func() bool { return caughtUp(2, r.c.Status()) })
	p.events(t, a[3]) // v4 over v2
	eventually(t, time.Minute, "A's v4", func() bool { return caughtUp(3, r.c.Status()) })
	p.events(t, a[1], bb[0], bb[2]) // A's v2 again; B: v1, v3
	eventually(t, time.Minute, "every event", func() bool { return caughtUp(6, r.c.Status()) })

	checkViews(t, m.store, fold([]companiaevent.Event{a[0], a[1], a[3], bb[0], bb[2]}))
	mu.Lock()
	defer mu.Unlock()
	byCompany := map[string]view.VersionGap{}
	for _, g := range gaps {
		byCompany[g.CompaniaID] = g
	}
	if len(gaps) != 2 || len(byCompany) != 2 {
		t.Fatalf("gaps %+v, want one for each company", gaps)
	}
	if g := byCompany[uuid(1)]; g.Previous != 2 || g.Version != 4 || g.InBatch {
		t.Errorf("A's gap %+v, want stored 2, event 4", g)
	}
	if g := byCompany[uuid(4)]; g.Previous != 1 || g.Version != 3 {
		t.Errorf("B's gap %+v, want 1 then 3", g)
	}
	if c := r.c.Counters(); c.VersionGaps != 2 {
		t.Errorf("counters %+v, want 2 version gaps", c)
	}
	if n := logs.count("level=WARN msg=\"version gap over the stored view"); n < 1 {
		t.Errorf("no Warn line for the gap over the stored view in:\n%s", logs.b.String())
	}
	if n := logs.count("compania_id=" + uuid(1) + " stored_version=2 event_version=4"); n != 1 {
		t.Errorf("%d log lines for A's gap, want 1:\n%s", n, logs.b.String())
	}
	if n := logs.count("compania_id=" + uuid(4)); n != 1 {
		t.Errorf("%d log lines for B's gap, want 1:\n%s", n, logs.b.String())
	}
	compare := `
# HELP companias_projection_version_gaps_total Events the live consumer applied more than one version above the company's previous version (the stored view's, or the previous event's in the same batch): events lost upstream or discarded from the outbox.
# TYPE companias_projection_version_gaps_total counter
companias_projection_version_gaps_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(compare), "companias_projection_version_gaps_total"); err != nil {
		t.Error(err)
	}
}
