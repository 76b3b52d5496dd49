package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := outbox.New(nil, &fakePublisher{}, outbox.Options{}); err == nil {
		t.Error("New(nil pool) = nil error, want an error")
	}
	pool, _ := newPool(t)
	if _, err := outbox.New(pool, nil, outbox.Options{}); err == nil {
		t.Error("New(nil publisher) = nil error, want an error")
	}
	if _, err := outbox.NewWriter(outbox.WriterConfig{}); err == nil {
		t.Error("NewWriter(no brokers) = nil error, want an error")
	}
}

// (1) and (6): commands committed through the postgres Repository, for
// many companies at once and with concurrent updates of each company,
// arrive with key = company id and the stored headers, in per-company
// order over 6 partitions; every record validates against its JSON Schema.
func TestIntegrationRelayPublishesCommittedRowsInOrder(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	// The relay deletes what it published: a copy of each outbox row, taken
	// as it is inserted, is the reference the records are checked against.
	if _, err := pool.Exec(context.Background(), `CREATE TABLE outbox_copy AS TABLE outbox WITH NO DATA;
		CREATE FUNCTION outbox_copy() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO outbox_copy SELECT NEW.*; RETURN NULL; END $$;
		CREATE TRIGGER outbox_copy AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_copy()`); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	r, err := outbox.New(pool, newWriter(t, b.Addr()), outbox.Options{BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	c := consume(t, b.Addr(), topic)
	repo := postgres.NewRepository(pool, postgres.WithTopic(topic))

	// Each company: Add, then two goroutines updating it 3 times each; the
	// row lock serialises them, so versions run 1..7 in commit order.
	const companies, writers, updates = 30, 2, 3
	ctx := context.Background()
	now := func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
	var wg sync.WaitGroup
	errs := make(chan error, companies*writers+companies)
	for i := range companies {
		wg.Go(func() {
			co, err := compania.New(uuid.NewString(), compania.Datos{
				Nombre: fmt.Sprintf("Empresa %d", i), Email: "info@empresa.co", Identificacion: fmt.Sprintf("900-%d", i),
			}, now())
			if err != nil {
				errs <- err
				return
			}
			if err := repo.Add(ctx, co, command.Meta{}); err != nil {
				errs <- err
				return
			}
			var uw sync.WaitGroup
			for w := range writers {
				uw.Go(func() {
					for u := range updates {
						nombre := fmt.Sprintf("Empresa %d w%d u%d", i, w, u)
						_, err := repo.Update(ctx, co.ID(), command.Meta{}, func(c *compania.Compania) error {
							return c.Actualizar(compania.Cambios{Nombre: &nombre}, now())
						})
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			uw.Wait()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("command: %v", err)
	}

	const total = companies * (1 + writers*updates)
	waitFor(t, 30*time.Second, "every event on the topic", func() bool { return len(c.all()) >= total })
	waitFor(t, 10*time.Second, "every row deleted", func() bool { return unpublished(t, pool) == 0 })

	// The outbox rows, as stored, are the reference.
	rows, err := pool.Query(ctx, `SELECT event_id::text, key, value, headers FROM outbox_copy`)
	if err != nil {
		t.Fatal(err)
	}
	type stored struct {
		key, value []byte
		headers    []companiaevent.Header
	}
	byID := map[string]stored{}
	for rows.Next() {
		var id string
		var st stored
		var raw []byte
		if err := rows.Scan(&id, &st.key, &st.value, &raw); err != nil {
			t.Fatal(err)
		}
		if st.headers, err = outbox.DecodeHeaders(raw); err != nil {
			t.Fatal(err)
		}
		byID[id] = st
	}
	if err := rows.Err(); err != nil || len(byID) != total {
		t.Fatalf("outbox has %d rows (%v), want %d", len(byID), err, total)
	}

	got := c.all()
	if len(got) != total {
		t.Errorf("got %d records, want %d (no duplicates in a clean run)", len(got), total)
	}
	checkCompanyOrder(t, got, true)
	used := map[int]bool{}
	sch := schemas(t)
	for _, m := range got {
		used[m.Partition] = true
		id := kheader(m.Headers, companiaevent.HeaderID)
		want, ok := byID[id]
		if !ok {
			t.Fatalf("record with unknown ce_id %s", id)
		}
		if !bytes.Equal(m.Key, want.key) || !bytes.Equal(m.Value, want.value) {
			t.Errorf("record %s: key/value differ from the outbox row", id)
		}
		if !slices.EqualFunc(m.Headers, want.headers, func(a kafka.Header, b companiaevent.Header) bool {
			return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
		}) {
			t.Errorf("record %s: headers %v, want %v", id, m.Headers, want.headers)
		}
		if m.Time.IsZero() || m.Time.Year() < 2000 {
			t.Errorf("record %s: timestamp %v, want the row's created_at", id, m.Time)
		}
		name, _, err := companiaevent.ParseType(kheader(m.Headers, companiaevent.HeaderType))
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Value))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch[name].Validate(v); err != nil {
			t.Errorf("record %s (%s) does not validate: %v", id, name, err)
		}
	}
	if len(used) < 4 {
		t.Errorf("records used %d of %d partitions; is the key balanced?", len(used), partitions)
	}
}

// A batch Kafka refuses is retried whole, with the same rows in the same
// order, before anything later; nothing is stamped until it is published.
func TestIntegrationRelayRetriesFailedBatchWhole(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{fn: func(_ context.Context, call int, _ []kafka.Message) error {
		if call < 3 {
			return errBrokerDown
		}
		return nil
	}}
	var published, rowsSeen, badTimes atomic.Int64
	r, err := outbox.New(pool, pub, outbox.Options{
		BatchSize:   10,
		BackoffMin:  5 * time.Millisecond,
		BackoffMax:  20 * time.Millisecond,
		OnPublished: func(n int, _ time.Time) { published.Add(int64(n)) },
		OnRowPublished: func(createdAt time.Time) {
			rowsSeen.Add(1)
			if createdAt.IsZero() {
				badTimes.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var all []companiaevent.Message
	for range 5 {
		evs := company(t, 5)
		all = append(all, evs...)
	}
	mustCommit(t, pool, "t", all...)
	runRelay(t, r)
	// The hooks run just after the stamp: wait for them too.
	waitFor(t, 10*time.Second, "all rows deleted", func() bool {
		return unpublished(t, pool) == 0 && published.Load() == int64(len(all)) && rowsSeen.Load() == int64(len(all))
	})

	calls := pub.Calls()
	ids := func(ms []kafka.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, kheader(m.Headers, companiaevent.HeaderID))
		}
		return out
	}
	if len(calls) < 3+3 {
		t.Fatalf("got %d WriteMessages calls, want 3 failures then 3 batches", len(calls))
	}
	for i := 1; i <= 3; i++ {
		if !slices.Equal(ids(calls[i]), ids(calls[0])) {
			t.Errorf("attempt %d sent %v, want the failed batch %v again", i, ids(calls[i]), ids(calls[0]))
		}
	}
	var sent []string
	for _, c := range calls[3:] {
		sent = append(sent, ids(c)...)
	}
	var want []string
	for _, m := range all {
		want = append(want, header(m.Headers, companiaevent.HeaderID))
	}
	if !slices.Equal(sent, want) {
		t.Errorf("published %v,\nwant outbox order %v", sent, want)
	}
	if published.Load() != int64(len(all)) {
		t.Errorf("OnPublished counted %d rows, want %d", published.Load(), len(all))
	}
	if rowsSeen.Load() != int64(len(all)) || badTimes.Load() != 0 {
		t.Errorf("OnRowPublished saw %d rows (%d with a zero created_at), want %d", rowsSeen.Load(), badTimes.Load(), len(all))
	}
}

// A row whose headers cannot be decoded is parked (bad_headers), not
// skipped: the later rows of its company wait behind it, the other
// companies flow; once repaired and retried, it goes out before them.
func TestIntegrationRelayParksUnreadableRow(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{}
	logs := &logRecorder{}
	r, err := outbox.New(pool, pub, outbox.Options{
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Logger: slog.New(logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, other := company(t, 3), company(t, 1)
	mustCommit(t, pool, "t", evs...)
	mustCommit(t, pool, "t", other...)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE outbox SET headers = '{"not":"an array"}' WHERE id = (SELECT min(id) FROM outbox)`); err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	waitFor(t, 10*time.Second, "the other company published", func() bool { return unpublished(t, pool) == 3 })
	if !logs.contains("reason=bad_headers") || !logs.contains("decode outbox headers") {
		t.Error("the parked row was not logged with its reason and cause")
	}
	calls := pub.Calls()
	if len(calls) != 1 || len(calls[0]) != 1 || !bytes.Equal(calls[0][0].Value, other[0].Value) {
		t.Fatalf("got calls %v, want only the other company's row", calls)
	}
	if _, err := pool.Exec(ctx, `UPDATE outbox SET headers = '[]' WHERE id = (SELECT min(id) FROM outbox)`); err != nil {
		t.Fatal(err)
	}
	if _, err := outbox.NewParkedOutbox(pool).RetryAll(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "all rows deleted", func() bool { return unpublished(t, pool) == 0 })
	calls = pub.Calls()
	if len(calls) != 2 || len(calls[1]) != 3 || !bytes.Equal(calls[1][1].Value, evs[1].Value) {
		t.Errorf("got calls %v, want then one batch of the 3 rows in order", calls)
	}
}

// A batch in flight when Run's context is cancelled is finished and
// stamped within ShutdownGrace, so a restart does not resend it.
func TestIntegrationRelayFinishesBatchOnShutdown(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	started := make(chan struct{})
	release := make(chan struct{})
	pub := &fakePublisher{fn: func(ctx context.Context, _ int, _ []kafka.Message) error {
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	r, err := outbox.New(pool, pub, outbox.Options{ShutdownGrace: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, pool, "t", company(t, 2)...)
	stop := runRelay(t, r)
	<-started
	go func() { close(release) }()
	stop()
	if n := unpublished(t, pool); n != 0 {
		t.Errorf("%d rows left unpublished after a graceful stop, want 0", n)
	}
}

// A publish that outlasts ShutdownGrace is abandoned: Run returns nil and
// the rows stay unpublished for the next relay.
func TestIntegrationRelayAbandonsBatchAfterGrace(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	started := make(chan struct{})
	pub := &fakePublisher{fn: func(ctx context.Context, _ int, _ []kafka.Message) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}}
	r, err := outbox.New(pool, pub, outbox.Options{ShutdownGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, pool, "t", company(t, 2)...)
	stop := runRelay(t, r)
	<-started
	stop()
	if n := unpublished(t, pool); n != 2 {
		t.Errorf("%d rows unpublished, want 2", n)
	}
}

// Two relays on one database: exactly one publishes; when it stops, the
// other takes over.
func TestIntegrationRelayOnlyOneLeads(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pubA, pubB := &fakePublisher{}, &fakePublisher{}
	opts := outbox.Options{LockRetry: 20 * time.Millisecond, PollInterval: 50 * time.Millisecond}
	a, err := outbox.New(pool, pubA, opts)
	if err != nil {
		t.Fatal(err)
	}
	stopA := runRelay(t, a)
	waitFor(t, 10*time.Second, "relay A to lead", a.Leading)
	b, err := outbox.New(pool, pubB, opts)
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, b)
	// Another replica starting while A leads must still get through its
	// migrations: the migration lock is not the relay's lock.
	migrateCtx, cancelMigrate := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancelMigrate()
	if err := postgres.Migrate(migrateCtx, pool); err != nil {
		t.Fatalf("Migrate while a relay leads: %v", err)
	}
	for range 5 {
		mustCommit(t, pool, "t", company(t, 2)...)
	}
	waitFor(t, 10*time.Second, "rows stamped", func() bool { return unpublished(t, pool) == 0 })
	if b.Leading() || len(pubB.Calls()) != 0 {
		t.Fatalf("standby B leads=%v and published %d batches while A leads", b.Leading(), len(pubB.Calls()))
	}
	stopA()
	waitFor(t, 10*time.Second, "relay B to take over", b.Leading)
	mustCommit(t, pool, "t", company(t, 2)...)
	waitFor(t, 10*time.Second, "B to publish", func() bool { return unpublished(t, pool) == 0 })
	if len(pubB.Calls()) == 0 {
		t.Error("B published nothing after taking over")
	}
}

// The relay survives the loss of its database session (the server
// terminated it): it reconnects, retakes its own lease at once and goes on.
func TestIntegrationRelayReconnectsAfterSessionLoss(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{}
	r, err := outbox.New(pool, pub, outbox.Options{LockRetry: 20 * time.Millisecond, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	waitFor(t, 10*time.Second, "the relay to lead", r.Leading)
	ctx := context.Background()
	var killed int
	err = pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, outbox.RelayApplicationName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the lease holder's session: killed %d, %v", killed, err)
	}
	waitFor(t, 10*time.Second, "the relay to notice", func() bool { return !r.Leading() })
	mustCommit(t, pool, "t", company(t, 1)...)
	waitFor(t, 10*time.Second, "the row to be relayed after reconnecting", func() bool { return unpublished(t, pool) == 0 })
}

// (4) Kafka down: commits go on (rows pile up), the relay retries with
// backoff, and once the broker is back on the same port and data directory
// the backlog drains; nothing is lost and per-company order holds.
func TestIntegrationRelayDrainsBacklogAfterKafkaOutage(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	dir := t.TempDir()
	b := startBroker(t, "", dir)
	addr := b.Addr()
	topic := newTopic(t, addr)
	w := newWriter(t, addr)
	pub := &countingPublisher{Publisher: w}
	r, err := outbox.New(pool, pub, outbox.Options{BatchSize: 25, BackoffMin: 50 * time.Millisecond, BackoffMax: 300 * time.Millisecond, Fence: w.Fence()})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)

	var before, during []companiaevent.Message
	for range 5 {
		before = append(before, company(t, 2)...)
	}
	for _, m := range before {
		mustCommit(t, pool, topic, m)
	}
	waitFor(t, 20*time.Second, "the first events relayed", func() bool { return unpublished(t, pool) == 0 })

	b.Close()
	for range 10 {
		evs := company(t, 4)
		during = append(during, evs...)
		for _, m := range evs {
			mustCommit(t, pool, topic, m) // commands keep succeeding
		}
	}
	waitFor(t, 30*time.Second, "the relay to hit the outage", func() bool { return pub.Failures() >= 2 })
	if n := unpublished(t, pool); n != len(during) {
		t.Fatalf("%d rows unpublished during the outage, want %d", n, len(during))
	}

	b2 := startBroker(t, addr, dir)
	waitFor(t, 60*time.Second, "the backlog to drain", func() bool { return unpublished(t, pool) == 0 })
	c := consume(t, b2.Addr(), topic)
	all := append(append([]companiaevent.Message(nil), before...), during...)
	waitFor(t, 20*time.Second, "every event on the topic", func() bool { return c.hasAll(all) })
	checkCompanyOrder(t, c.all(), false)
	t.Logf("outage: %d failed publish attempts, %d records for %d events", pub.Failures(), len(c.all()), len(all))
}

// (5) kcat, an external librdkafka consumer, reads the records and their
// CloudEvents headers.
func TestIntegrationRelayKcatSeesCloudEventsHeaders(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install -y kcat); skipping the external-consumer check")
	}
	pool, _ := newPool(t)
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	r, err := outbox.New(pool, newWriter(t, b.Addr()), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	evs := company(t, 3)
	mustCommit(t, pool, topic, evs...)
	waitFor(t, 20*time.Second, "rows relayed", func() bool { return unpublished(t, pool) == 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-b", b.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J").Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	type record struct {
		Key     string   `json:"key"`
		Payload string   `json:"payload"`
		Headers []string `json:"headers"`
	}
	var got []record
	for line := range strings.Lines(string(out)) {
		var rec record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		got = append(got, rec)
	}
	if len(got) != len(evs) {
		t.Fatalf("kcat read %d records, want %d:\n%s", len(got), len(evs), out)
	}
	for i, rec := range got { // one company: one partition, in order
		h := map[string]string{}
		for j := 0; j+1 < len(rec.Headers); j += 2 {
			h[rec.Headers[j]] = rec.Headers[j+1]
		}
		want := evs[i]
		for _, k := range []string{companiaevent.HeaderID, companiaevent.HeaderType, companiaevent.HeaderSource,
			companiaevent.HeaderSpecVersion, companiaevent.HeaderTime, companiaevent.HeaderSubject, companiaevent.HeaderContentType, companiaevent.HeaderDataSchema} {
			if h[k] == "" || h[k] != header(want.Headers, k) {
				t.Errorf("record %d: header %s = %q, want %q", i, k, h[k], header(want.Headers, k))
			}
		}
		if rec.Key != string(want.Key) || rec.Payload != string(want.Value) {
			t.Errorf("record %d: key %q payload %q, want %q %q", i, rec.Key, rec.Payload, want.Key, want.Value)
		}
	}
}

// Run returns nil at once when its context is already cancelled.
func TestIntegrationRelayRunCancelled(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	r, err := outbox.New(pool, &fakePublisher{}, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Errorf("Run(cancelled) = %v, want nil", err)
	}
}

// A relay whose database is unreachable keeps retrying (it never returns
// an error) and stops cleanly.
func TestIntegrationRelayRetriesUnreachableDatabase(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	logs := &logRecorder{}
	r, err := outbox.New(pool, &fakePublisher{}, outbox.Options{LockRetry: 20 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	pool.Close() // every Acquire fails from now on
	stop := runRelay(t, r)
	waitFor(t, 10*time.Second, "a reconnect log", func() bool { return logs.contains("reconnecting") })
	stop()
	if r.Leading() {
		t.Error("Leading() = true without a database")
	}
}
