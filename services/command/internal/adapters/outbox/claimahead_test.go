package outbox_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
)

// commitInterleaved commits, in one transaction, the events of companies
// companies of perCompany events each, round robin (the first event of
// every company, then the second…), so that every batch of a relay with a
// smaller BatchSize leaves later rows of its companies behind. It returns
// each company's ce_ids in outbox order, and all ce_ids in outbox order.
func commitInterleaved(t *testing.T, pool *pgxpool.Pool, companies, perCompany int) (byKey map[string][]string, all []string) {
	t.Helper()
	evs := make([][]companiaevent.Message, companies)
	for i := range evs {
		evs[i] = company(t, perCompany)
	}
	var msgs []companiaevent.Message
	byKey = map[string][]string{}
	for v := range perCompany {
		for _, e := range evs {
			m := e[v]
			msgs = append(msgs, m)
			id := header(m.Headers, companiaevent.HeaderID)
			byKey[string(m.Key)] = append(byKey[string(m.Key)], id)
			all = append(all, id)
		}
	}
	mustCommit(t, pool, "t", msgs...)
	return byKey, all
}

// sentByKey returns, per company, the ce_ids of the acknowledged calls in
// the order they were sent, and all of them in that order.
func sentByKey(calls [][]kafka.Message, acked func(call int) bool) (map[string][]string, []string) {
	byKey := map[string][]string{}
	var all []string
	for i, c := range calls {
		if !acked(i) {
			continue
		}
		for _, m := range c {
			id := kheader(m.Headers, companiaevent.HeaderID)
			byKey[string(m.Key)] = append(byKey[string(m.Key)], id)
			all = append(all, id)
		}
	}
	return byKey, all
}

// checkSentInCompanyOrder checks that each company's acknowledged records
// are its outbox rows in order, each once, or (if !exact) each at least
// once, a repeat never coming after a later row than the one it repeats.
func checkSentInCompanyOrder(t *testing.T, got, want map[string][]string, exact bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("records of %d companies, want %d", len(got), len(want))
	}
	for key, ids := range want {
		sent := got[key]
		if exact {
			if !slices.Equal(sent, ids) {
				t.Errorf("company %s: sent %v, want %v", key, sent, ids)
			}
			continue
		}
		// At least once: the first sightings are in outbox order, and a
		// repeat of row k comes before row k+2 is first sent (the relay
		// resends a whole undeleted call, never a row behind a later one).
		next := 0
		for _, id := range sent {
			k := slices.Index(ids, id)
			switch {
			case k < 0:
				t.Fatalf("company %s: unknown ce_id %s", key, id)
			case k == next:
				next++
			case k > next:
				t.Errorf("company %s: row %d sent before row %d", key, k, next)
			}
		}
		if next != len(ids) {
			t.Errorf("company %s: %d of %d rows sent", key, next, len(ids))
		}
	}
}

// While a batch is produced the relay claims the next one, leaving out the
// companies of the batch in flight: their later rows come after, in order,
// and the other companies' rows flow ahead of them.
func TestIntegrationRelayClaimAheadKeepsCompanyOrder(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{}
	r, err := outbox.New(pool, pub, outbox.Options{BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	want, outboxOrder := commitInterleaved(t, pool, 60, 7)
	runRelay(t, r)
	waitFor(t, 20*time.Second, "all rows deleted", func() bool { return unpublished(t, pool) == 0 })

	got, sent := sentByKey(pub.Calls(), func(int) bool { return true })
	checkSentInCompanyOrder(t, got, want, true)
	if slices.Equal(sent, outboxOrder) {
		t.Errorf("sent in outbox order: no batch was claimed ahead of the companies in flight")
	}
}

// Batches fail now and then while the next one was claimed ahead: every row
// is acknowledged once, and no company's later row before its earlier one.
// (The relay drops the batch claimed ahead when a batch fails, and claims
// again from the first unpublished row.)
func TestIntegrationRelayClaimAheadDroppedWhenBatchFails(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{fn: func(_ context.Context, call int, _ []kafka.Message) error {
		if call%3 == 1 {
			return errBrokerDown
		}
		return nil
	}}
	r, err := outbox.New(pool, pub, outbox.Options{BatchSize: 50, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := commitInterleaved(t, pool, 60, 7)
	runRelay(t, r)
	waitFor(t, 20*time.Second, "all rows deleted", func() bool { return unpublished(t, pool) == 0 })

	got, _ := sentByKey(pub.Calls(), func(call int) bool { return call%3 != 1 })
	checkSentInCompanyOrder(t, got, want, true)
}

// When the delete of a published batch fails (here: the relay's session is
// cut), its rows stay unpublished, the batch claimed ahead is dropped, and
// the next session sends the rows again (at least once), in company order.
func TestIntegrationRelayStampFailureResendsRows(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	pub := &fakePublisher{}
	r, err := outbox.New(pool, pub, outbox.Options{BatchSize: 50, LockRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var cut atomic.Int32
	var failedIDs atomic.Value
	outbox.SetBeforeDelete(r, func(ctx context.Context, ids []int64) {
		if cut.Add(1) != 2 {
			return
		}
		failedIDs.Store(slices.Clone(ids))
		// Cut the relay's own session, as a network failure would.
		if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, outbox.RelayApplicationName); err != nil {
			t.Errorf("terminate the relay's session: %v", err)
		}
	})
	want, _ := commitInterleaved(t, pool, 60, 7)
	runRelay(t, r)
	waitFor(t, 20*time.Second, "all rows deleted", func() bool { return unpublished(t, pool) == 0 })

	got, sent := sentByKey(pub.Calls(), func(int) bool { return true })
	checkSentInCompanyOrder(t, got, want, false)
	if failedIDs.Load() == nil {
		t.Fatal("no delete was cut")
	}
	var dup int
	seen := map[string]bool{}
	for _, id := range sent {
		if seen[id] {
			dup++
		}
		seen[id] = true
	}
	if n := len(failedIDs.Load().([]int64)); dup < n {
		t.Errorf("%d records sent twice, want at least the %d of the undeleted call", dup, n)
	}
}
