package scan_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/tools/dlq/internal/dlqtest"
	"github.com/propalpes/companias/tools/dlq/internal/scan"
	"github.com/segmentio/kafka-go"
)

func TestNewRecordParsesHeadersLastWins(t *testing.T) {
	t.Parallel()
	m := kafka.Message{Topic: "t.dlq", Partition: 2, Offset: 7, Key: []byte("k"), Headers: []kafka.Header{
		{Key: "ce_id", Value: []byte("e1")},
		{Key: deadletter.HeaderReason, Value: []byte("invalid")},
		{Key: deadletter.HeaderPartition, Value: []byte("x")},
		{Key: deadletter.HeaderReason, Value: []byte("malformed")},
		{Key: deadletter.HeaderTopic, Value: []byte("t")},
		{Key: deadletter.HeaderPartition, Value: []byte("4")},
		{Key: deadletter.HeaderOffset, Value: []byte("99")},
		{Key: deadletter.HeaderTime, Value: []byte("2026-01-02T03:04:05.5Z")},
		{Key: deadletter.HeaderConsumer, Value: []byte("g")},
		{Key: deadletter.HeaderError, Value: []byte("boom")},
	}}
	r := scan.NewRecord(m)
	want := time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)
	if r.Reason != "malformed" || r.OriginalTopic != "t" || r.OriginalPartition != 4 || r.OriginalOffset != 99 ||
		!r.DLQTime.Equal(want) || r.ConsumerGroup != "g" || r.Error != "boom" {
		t.Fatalf("record = %+v", r)
	}
	if got := r.Ref(); got != "t.dlq/2/7" {
		t.Fatalf("Ref = %q", got)
	}
	if h := r.OriginalHeaders(); len(h) != 1 || h[0].Key != "ce_id" {
		t.Fatalf("OriginalHeaders = %v", h)
	}
	bare := scan.NewRecord(kafka.Message{Time: want})
	if bare.OriginalPartition != -1 || bare.OriginalOffset != -1 || !bare.Time().Equal(want) {
		t.Fatalf("bare record = %+v", bare)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"1h":                   now.Add(-time.Hour),
		"90s":                  now.Add(-90 * time.Second),
		"2026-11-27T08:00:00Z": time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC),
	} {
		got, err := scan.ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "2026-11-27"} {
		if _, err := scan.ParseTime(in, now); err == nil {
			t.Errorf("ParseTime(%q): no error", in)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := scan.New(scan.Config{Topic: "t"}); !errors.Is(err, scan.ErrConfig) {
		t.Fatalf("no brokers: %v", err)
	}
	if _, err := scan.New(scan.Config{Brokers: []string{"x:1"}}); !errors.Is(err, scan.ErrConfig) {
		t.Fatalf("no topic: %v", err)
	}
}

func TestIntegrationScanFilters(t *testing.T) {
	t.Parallel()
	const dlq = "cmd.dlq"
	addr := dlqtest.StartBroker(t, dlq)
	base := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	dlqtest.ProduceDead(t, addr, dlq,
		dlqtest.Dead{Key: "a", Value: `{"id":"a"}`, Reason: "malformed", Error: "bad json", OriginalTopic: "cmd", Time: base},
		dlqtest.Dead{Key: "b", Value: `{"id":"b","nit":"123"}`, Reason: "invalid", Error: "nit required", OriginalTopic: "cmd", Time: base.Add(time.Hour)},
		dlqtest.Dead{Key: "c", Value: `{"id":"c"}`, Reason: "conflict", Error: "duplicate", OriginalTopic: "cmd", Time: base.Add(2 * time.Hour)},
		dlqtest.Dead{Key: "a", Value: `{"id":"a2"}`, Reason: "malformed", Error: "bad json again", OriginalTopic: "cmd", Time: base.Add(3 * time.Hour)},
	)
	s, err := scan.New(scan.Config{Brokers: []string{addr}, Topic: dlq, MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	plan, err := s.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Ranges) != dlqtest.Partitions || plan.Total() != 4 {
		t.Fatalf("plan = %+v (total %d)", plan, plan.Total())
	}
	values := func(f scan.Filter) []string {
		t.Helper()
		var out []string
		n, err := s.Scan(ctx, plan, f, func(r scan.Record, ok bool, _ int64) error {
			if ok {
				out = append(out, string(r.Value))
			}
			return nil
		})
		if err != nil || n != 4 {
			t.Fatalf("scan: %d, %v", n, err)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name string
		f    scan.Filter
		want []string
	}{
		{"all", scan.Filter{}, []string{`{"id":"a"}`, `{"id":"a2"}`, `{"id":"b","nit":"123"}`, `{"id":"c"}`}},
		{"reason", scan.Filter{Reason: "malformed"}, []string{`{"id":"a"}`, `{"id":"a2"}`}},
		{"since", scan.Filter{Since: base.Add(2 * time.Hour)}, []string{`{"id":"a2"}`, `{"id":"c"}`}},
		{"until", scan.Filter{Until: base.Add(time.Hour)}, []string{`{"id":"a"}`}},
		{"window", scan.Filter{Since: base.Add(time.Hour), Until: base.Add(3 * time.Hour)}, []string{`{"id":"b","nit":"123"}`, `{"id":"c"}`}},
		{"key", scan.Filter{Key: "a"}, []string{`{"id":"a"}`, `{"id":"a2"}`}},
		{"grep value", scan.Filter{Grep: "nit"}, []string{`{"id":"b","nit":"123"}`}},
		{"grep error", scan.Filter{Grep: "again"}, []string{`{"id":"a2"}`}},
		{"combined", scan.Filter{Reason: "malformed", Since: base.Add(time.Minute)}, []string{`{"id":"a2"}`}},
		{"none", scan.Filter{Key: "zzz"}, nil},
	} {
		if got := values(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	// Messages produced after the plan are not visited.
	dlqtest.ProduceDead(t, addr, dlq, dlqtest.Dead{Key: "late", Reason: "invalid", Time: base})
	if got := values(scan.Filter{}); len(got) != 4 {
		t.Fatalf("after a late write the old plan visited %d records", len(got))
	}

	// A visit error stops the scan and is returned.
	stop := errors.New("stop")
	if _, err := s.Scan(ctx, plan, scan.Filter{}, func(scan.Record, bool, int64) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("visit error: %v", err)
	}
	if groups := dlqtest.Groups(t, addr); len(groups) != 0 {
		t.Fatalf("scanning created consumer groups %v", groups)
	}
}

func TestIntegrationPlanUnknownTopic(t *testing.T) {
	t.Parallel()
	addr := dlqtest.StartBroker(t, "present")
	s, err := scan.New(scan.Config{Brokers: []string{addr}, Topic: "absent.dlq"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Plan(t.Context()); err == nil || !strings.Contains(err.Error(), "absent.dlq") {
		t.Fatalf("Plan of an unknown topic: %v", err)
	}
}

func TestIntegrationScanCancelled(t *testing.T) {
	t.Parallel()
	addr := dlqtest.StartBroker(t, "c.dlq")
	dlqtest.ProduceDead(t, addr, "c.dlq", dlqtest.Dead{Key: "k", Reason: "invalid", Time: time.Now()})
	s, err := scan.New(scan.Config{Brokers: []string{addr}, Topic: "c.dlq"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan, err := s.Plan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Scan(ctx, plan, scan.Filter{}, func(scan.Record, bool, int64) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled scan: %v", err)
	}
}
