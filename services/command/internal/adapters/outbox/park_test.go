package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// withHeader returns m with a header key of n bytes added (the 1 MB
// traceparent of the issue, stored before the command side bounded it).
func withHeader(m companiaevent.Message, key string, n int) companiaevent.Message {
	m.Headers = append(slices.Clone(m.Headers), companiaevent.Header{Key: key, Value: []byte(strings.Repeat("a", n))})
	return m
}

// rowID returns the outbox id of m.
func rowID(t testing.TB, pool *pgxpool.Pool, m companiaevent.Message) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `SELECT id FROM outbox WHERE event_id = $1`,
		header(m.Headers, companiaevent.HeaderID)).Scan(&id); err != nil {
		t.Fatalf("outbox id of %s: %v", header(m.Headers, companiaevent.HeaderID), err)
	}
	return id
}

// rowState returns "unpublished", "parked:<reason>", or "gone" (published
// or discarded: the row was deleted) for the outbox row of m.
func rowState(t testing.TB, pool *pgxpool.Pool, m companiaevent.Message) string {
	t.Helper()
	var state string
	err := pool.QueryRow(context.Background(), `SELECT coalesce((SELECT CASE
		WHEN parked_at IS NOT NULL THEN 'parked:' || coalesce(park_reason, '')
		ELSE 'unpublished' END FROM outbox WHERE event_id = $1), 'gone')`, header(m.Headers, companiaevent.HeaderID)).Scan(&state)
	if err != nil {
		t.Fatalf("state of %s: %v", header(m.Headers, companiaevent.HeaderID), err)
	}
	return state
}

// reasons records the OnParked calls.
type reasons struct {
	mu  sync.Mutex
	got []string
}

func (r *reasons) add(reason string) { r.mu.Lock(); r.got = append(r.got, reason); r.mu.Unlock() }
func (r *reasons) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// An existing installation: a too-large row is already in the outbox. The
// relay parks it on its first attempt (logged, counted), publishes the rows
// of every other company, earlier and later, and holds back only the later
// rows of its company; once the cause is gone, a retry publishes them all
// in order.
func TestIntegrationRelayParksTooLargeRowAndHoldsBackItsCompany(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	broker := startBroker(t, "", "")
	topic := newTopic(t, broker.Addr())
	logs := &logRecorder{}
	parked := &reasons{}
	r, err := outbox.New(pool, newWriter(t, broker.Addr()), outbox.Options{
		Logger: slog.New(logs), OnParked: parked.add, BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	before, a, after := company(t, 2), company(t, 3), company(t, 2)
	poison := withHeader(a[0], companiaevent.HeaderTraceparent, 1_048_000)
	mustCommit(t, pool, topic, before...)
	mustCommit(t, pool, topic, poison)
	mustCommit(t, pool, topic, a[1:]...)
	mustCommit(t, pool, topic, after...)
	id := rowID(t, pool, poison)

	c := consume(t, broker.Addr(), topic)
	runRelay(t, r)
	waitFor(t, 20*time.Second, "the other companies' events", func() bool { return c.hasAll(before) && c.hasAll(after) })
	if s := rowState(t, pool, poison); s != "parked:too_large" {
		t.Fatalf("the too-large row is %s, want parked:too_large", s)
	}
	// Later commits of other companies keep flowing past the parked row.
	later := company(t, 2)
	mustCommit(t, pool, topic, later...)
	waitFor(t, 20*time.Second, "a later company's events", func() bool { return c.hasAll(later) })
	for _, m := range a[1:] {
		if s := rowState(t, pool, m); s != "unpublished" {
			t.Errorf("a later row of the parked company is %s, want unpublished (held back)", s)
		}
	}
	if got := c.ids(); got[header(a[0].Headers, companiaevent.HeaderID)]+got[header(a[1].Headers, companiaevent.HeaderID)] != 0 {
		t.Errorf("the parked company's events reached Kafka: %v", got)
	}
	if got := parked.all(); !slices.Equal(got, []string{outbox.ParkTooLarge}) {
		t.Errorf("OnParked calls %v, want [too_large]", got)
	}
	for _, want := range []string{"ERROR outbox row parked", fmt.Sprintf("id=%d", id), "reason=too_large",
		"event_id=" + header(a[0].Headers, companiaevent.HeaderID), "key=" + string(a[0].Key), "topic=" + topic, "size="} {
		if !logs.contains(want) {
			t.Errorf("no log with %q", want)
		}
	}
	if logs.contains("aaaaaaaaaaaaaaaa") || logs.contains(`"nombre"`) {
		t.Error("a log shows the record's headers or value")
	}

	// The cause is gone (here: the header is repaired); retry.
	h, err := outbox.EncodeHeaders(a[0].Headers)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE outbox SET headers = $2 WHERE id = $1`, id, h); err != nil {
		t.Fatal(err)
	}
	if done, err := outbox.NewParkedOutbox(pool).Retry(ctx, []int64{id}); err != nil || !slices.Equal(done, []int64{id}) {
		t.Fatalf("Retry = %v, %v; want [%d]", done, err, id)
	}
	waitFor(t, 20*time.Second, "the parked company's events after the retry", func() bool { return c.hasAll(a) })
	checkCompanyOrder(t, c.all(), true)
}

// Discarding a parked row releases the rows held behind it; the discarded
// event is never published, and its row counts as done.
func TestIntegrationRelayDiscardReleasesHeldRows(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	broker := startBroker(t, "", "")
	topic := newTopic(t, broker.Addr())
	r, err := outbox.New(pool, newWriter(t, broker.Addr()), outbox.Options{MaxRecordBytes: 4000})
	if err != nil {
		t.Fatal(err)
	}
	a := company(t, 3)
	poison := withHeader(a[0], "x-big", 5000)
	mustCommit(t, pool, topic, poison)
	mustCommit(t, pool, topic, a[1:]...)
	c := consume(t, broker.Addr(), topic)
	runRelay(t, r)
	waitFor(t, 20*time.Second, "the row parked", func() bool { return rowState(t, pool, poison) == "parked:too_large" })

	ctx := context.Background()
	parked := outbox.NewParkedOutbox(pool)
	id := rowID(t, pool, poison)
	if done, err := parked.Retry(ctx, []int64{rowID(t, pool, a[1])}); !errors.Is(err, outbox.ErrNotParked) || len(done) != 0 {
		t.Errorf("Retry of a held (not parked) row = %v, %v; want ErrNotParked", done, err)
	}
	if done, err := parked.Discard(ctx, []int64{id}); err != nil || !slices.Equal(done, []int64{id}) {
		t.Fatalf("Discard = %v, %v; want [%d]", done, err, id)
	}
	waitFor(t, 20*time.Second, "the held rows", func() bool { return c.hasAll(a[1:]) })
	if s := rowState(t, pool, poison); s != "gone" {
		t.Errorf("discarded row state %s", s)
	}
	if c.ids()[header(a[0].Headers, companiaevent.HeaderID)] != 0 {
		t.Error("the discarded event was published")
	}
	if n, ids, err := parked.Count(ctx, 10); err != nil || n != 0 || len(ids) != 0 {
		t.Errorf("Count after discard = %d %v %v, want 0", n, ids, err)
	}
	if _, err := parked.Discard(ctx, []int64{id}); !errors.Is(err, outbox.ErrNotParked) {
		t.Errorf("discarding twice = %v, want ErrNotParked", err)
	}
}

// The broker refuses one record permanently (the topic's max.message.bytes
// is below the relay's MaxRecordBytes): the relay publishes the culprit's
// batch-mates, parks only the culprit and holds back its company's later
// row.
func TestIntegrationRelayParksRowTheBrokerRefuses(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	broker := startBroker(t, "", "")
	topic := fmt.Sprintf("eventos-small-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// One partition, so that the culprit and its batch-mates share one
	// partition batch, which the broker refuses whole.
	res, err := (&kafka.Client{Addr: kafka.TCP(broker.Addr())}).CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "20000"}}}},
	})
	if err != nil || res.Errors[topic] != nil {
		t.Fatalf("create topic: %v %v", err, res)
	}
	w := newWriter(t, broker.Addr())
	pub := &countingPublisher{Publisher: w}
	parked := &reasons{}
	r, err := outbox.New(pool, pub, outbox.Options{Fence: w.Fence(), OnParked: parked.add, BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	x, y, z := company(t, 2), company(t, 2), company(t, 1)
	culprit := withHeader(y[0], "x-big", 30_000)
	mustCommit(t, pool, topic, x[0], culprit, x[1], z[0], y[1])
	c := consumeParts(t, broker.Addr(), topic, 1)
	runRelay(t, r)
	mates := []companiaevent.Message{x[0], x[1], z[0]}
	waitFor(t, 20*time.Second, "the batch-mates", func() bool { return c.hasAll(mates) })
	waitFor(t, 10*time.Second, "the culprit parked", func() bool { return rowState(t, pool, culprit) == "parked:too_large" })
	if s := rowState(t, pool, y[1]); s != "unpublished" {
		t.Errorf("the culprit's company's later row is %s, want unpublished", s)
	}
	if pub.Failures() == 0 {
		t.Error("the broker refused nothing: the test does not test the refusal")
	}
	if got := parked.all(); !slices.Equal(got, []string{outbox.ParkTooLarge}) {
		t.Errorf("OnParked calls %v, want [too_large]", got)
	}
	if got := len(c.all()); got != len(mates) {
		t.Errorf("%d records on the topic, want %d", got, len(mates))
	}
	checkCompanyOrder(t, c.all(), true)
}

// Refusals are classified per record: a permanent one parks its row with
// the matching reason; a transient one parks nothing and is retried; the
// rows the broker took are stamped and not sent again.
func TestIntegrationRelayClassifiesRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		reason string // "" for transient
	}{
		{kafka.InvalidRecord, outbox.ParkInvalidRecord},
		{kafka.TopicAuthorizationFailed, outbox.ParkUnauthorized},
		{kafka.InvalidTopic, outbox.ParkInvalidTopic},
		{kafka.PolicyViolation, outbox.ParkOtherPermanent},
		{kafka.MessageSizeTooLarge, outbox.ParkTooLarge},
		{kafka.NotLeaderForPartition, ""},
		{kafka.InvalidMessage, ""},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			t.Parallel()
			pool, _ := newPool(t)
			a, b := company(t, 2), company(t, 1)
			bad := header(a[0].Headers, companiaevent.HeaderID)
			var mu sync.Mutex
			failures := 0
			// Like kafka-go and a broker: a's partition batch (a[0], and
			// a[1] when in the same call) fails whole; b's succeeds.
			pub := &fakePublisher{fn: func(_ context.Context, _ int, msgs []kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				refused := false
				for _, m := range msgs {
					refused = refused || kheader(m.Headers, companiaevent.HeaderID) == bad
				}
				werrs := make(kafka.WriteErrors, len(msgs))
				failed := false
				for i, m := range msgs {
					if refused && string(m.Key) == string(a[0].Key) && (tc.reason != "" || failures < 2) {
						werrs[i], failed = tc.err, true
					}
				}
				if !failed {
					return nil
				}
				failures++
				return werrs
			}}
			parked := &reasons{}
			r, err := outbox.New(pool, pub, outbox.Options{OnParked: parked.add, BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			mustCommit(t, pool, "t", a[0], b[0], a[1])
			runRelay(t, r)
			waitFor(t, 10*time.Second, "b published", func() bool { return rowState(t, pool, b[0]) == "gone" })
			if tc.reason == "" {
				waitFor(t, 10*time.Second, "a published after the transient refusals", func() bool {
					return rowState(t, pool, a[0]) == "gone" && rowState(t, pool, a[1]) == "gone"
				})
				if got := parked.all(); len(got) != 0 {
					t.Errorf("a transient error parked %v", got)
				}
			} else {
				waitFor(t, 10*time.Second, "a[0] parked", func() bool { return rowState(t, pool, a[0]) == "parked:"+tc.reason })
				if s := rowState(t, pool, a[1]); s != "unpublished" {
					t.Errorf("a[1] is %s, want unpublished", s)
				}
				if got := parked.all(); !slices.Equal(got, []string{tc.reason}) {
					t.Errorf("OnParked %v, want [%s]", got, tc.reason)
				}
			}
			// b went out once: the failed call's successes were stamped.
			sentB := 0
			for _, call := range pub.Calls() {
				for _, m := range call {
					if kheader(m.Headers, companiaevent.HeaderID) == header(b[0].Headers, companiaevent.HeaderID) {
						sentB++
					}
				}
			}
			if sentB != 1 {
				t.Errorf("b sent %d times, want 1", sentB)
			}
		})
	}
}

// A batch is cut into WriteMessages calls of at most BatchBytes
// (estimated), in order; a record larger than BatchBytes alone goes in a
// call of its own.
func TestIntegrationRelayCutsCallsToBatchBytes(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{}
	const batchBytes = 4000
	r, err := outbox.New(pool, pub, outbox.Options{BatchBytes: batchBytes})
	if err != nil {
		t.Fatal(err)
	}
	var all []companiaevent.Message
	for range 6 {
		all = append(all, company(t, 3)...)
	}
	all[7] = withHeader(all[7], "x-big", 5000)
	mustCommit(t, pool, "t", all...)
	runRelay(t, r)
	waitFor(t, 10*time.Second, "all rows deleted", func() bool { return unpublished(t, pool) == 0 })
	var sent []string
	calls := pub.Calls()
	if len(calls) < 3 {
		t.Errorf("%d calls, want the batch cut into several", len(calls))
	}
	for i, call := range calls {
		size := 0
		for _, m := range call {
			sent = append(sent, kheader(m.Headers, companiaevent.HeaderID))
			size += len(m.Key) + len(m.Value) + 40
			for _, h := range m.Headers {
				size += len(h.Key) + len(h.Value) + 10
			}
		}
		if size > batchBytes && len(call) > 1 {
			t.Errorf("call %d has %d messages of about %d bytes, over %d", i, len(call), size, batchBytes)
		}
	}
	var want []string
	for _, m := range all {
		want = append(want, header(m.Headers, companiaevent.HeaderID))
	}
	if !slices.Equal(sent, want) {
		t.Errorf("sent %v, want outbox order %v", sent, want)
	}
}
