package replay_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/tools/dlq/internal/dlqtest"
	"github.com/propalpes/companias/tools/dlq/internal/replay"
	"github.com/propalpes/companias/tools/dlq/internal/scan"
	"github.com/segmentio/kafka-go"
)

// readAll returns every record of topic.
func readAll(t *testing.T, addr, topic string) []scan.Record {
	t.Helper()
	s, err := scan.New(scan.Config{Brokers: []string{addr}, Topic: topic, MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan, err := s.Plan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []scan.Record
	if _, err := s.Scan(t.Context(), plan, scan.Filter{}, func(r scan.Record, _ bool, _ int64) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func headerMap(hs []kafka.Header) map[string][]string {
	m := map[string][]string{}
	for _, h := range hs {
		m[h.Key] = append(m[h.Key], string(h.Value))
	}
	return m
}

func TestMessageStripsDLQHeaders(t *testing.T) {
	t.Parallel()
	r := scan.NewRecord(dlqtest.Dead{
		Key: "k", Value: "v", Reason: "invalid", Error: "e", OriginalTopic: "orig", Time: time.Now(),
		Headers: []kafka.Header{{Key: "ce_id", Value: []byte("1")}, {Key: "dlq_replayed_from", Value: []byte("old")}, {Key: "traceparent", Value: []byte("tp")}},
	}.Message())
	r.Topic, r.Partition, r.Offset = "orig.dlq", 1, 5
	m, err := replay.Message(r, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Topic != "orig" || string(m.Key) != "k" || string(m.Value) != "v" {
		t.Fatalf("message = %+v", m)
	}
	keys := make([]string, len(m.Headers))
	for i, h := range m.Headers {
		keys[i] = h.Key
	}
	if want := []string{"ce_id", "traceparent", replay.HeaderReplayedFrom}; !slices.Equal(keys, want) {
		t.Fatalf("header keys = %v, want %v", keys, want)
	}
	if got := string(m.Headers[2].Value); got != "orig.dlq/1/5" {
		t.Fatalf("%s = %q", replay.HeaderReplayedFrom, got)
	}
	if m, err := replay.Message(r, "other"); err != nil || m.Topic != "other" {
		t.Fatalf("override: %+v, %v", m, err)
	}
	r.OriginalTopic = ""
	if _, err := replay.Message(r, ""); !errors.Is(err, replay.ErrNoTarget) {
		t.Fatalf("no target: %v", err)
	}
}

func TestIntegrationReplay(t *testing.T) {
	t.Parallel()
	const orig, dlq, other = "cmd", "cmd.dlq", "other"
	addr := dlqtest.StartBroker(t, orig, dlq, other)
	now := time.Now()
	var dead []dlqtest.Dead
	for i := range 7 {
		k := string(rune('a' + i))
		dead = append(dead, dlqtest.Dead{
			Key: k, Value: `{"id":"` + k + `"}`, Reason: "invalid", Error: "bad", OriginalTopic: orig, Time: now,
			Headers: []kafka.Header{{Key: "ce_id", Value: []byte("id-" + k)}, {Key: "x", Value: []byte("1")}, {Key: "x", Value: []byte("2")}},
		})
	}
	dlqtest.ProduceDead(t, addr, dlq, dead...)
	recs := readAll(t, addr, dlq)
	if len(recs) != len(dead) {
		t.Fatalf("dlq has %d records", len(recs))
	}

	w, err := replay.New(replay.Config{Brokers: []string{addr}, Allow: replay.DefaultAllow(dlq, other), BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var calls []int
	n, err := w.Write(t.Context(), recs, "", func(written int) { calls = append(calls, written) })
	if err != nil || n != len(recs) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if !slices.Equal(calls, []int{3, 6, 7}) {
		t.Fatalf("progress calls %v", calls)
	}
	got := readAll(t, addr, orig)
	if len(got) != len(recs) {
		t.Fatalf("%s has %d records, want %d", orig, len(got), len(recs))
	}
	byKey := map[string]scan.Record{}
	for _, r := range recs {
		byKey[string(r.Key)] = r
	}
	for _, g := range got {
		src, ok := byKey[string(g.Key)]
		if !ok || !slices.Equal(g.Value, src.Value) {
			t.Fatalf("replayed %q=%q does not match the DLQ", g.Key, g.Value)
		}
		h := headerMap(g.Headers)
		for k := range h {
			if strings.HasPrefix(k, "dlq_") && k != replay.HeaderReplayedFrom {
				t.Errorf("replayed message keeps header %s", k)
			}
		}
		if !slices.Equal(h["ce_id"], []string{"id-" + string(g.Key)}) || !slices.Equal(h["x"], []string{"1", "2"}) {
			t.Errorf("original headers lost: %v", h)
		}
		if !slices.Equal(h[replay.HeaderReplayedFrom], []string{src.Ref()}) {
			t.Errorf("%s = %v, want %s", replay.HeaderReplayedFrom, h[replay.HeaderReplayedFrom], src.Ref())
		}
	}
	if n := dlqtest.EndOffsets(t, addr, dlq); n != int64(len(dead)) {
		t.Fatalf("replay changed the DLQ: %d records", n)
	}

	// An override topic receives them instead.
	if _, err := w.Write(t.Context(), recs[:2], other, nil); err != nil {
		t.Fatal(err)
	}
	if n := dlqtest.EndOffsets(t, addr, other); n != 2 {
		t.Fatalf("%s has %d records, want 2", other, n)
	}
	if n := dlqtest.EndOffsets(t, addr, orig); n != int64(len(dead)) {
		t.Fatalf("%s grew to %d records", orig, n)
	}
}

func TestIntegrationReplayNoTargetWritesNothing(t *testing.T) {
	t.Parallel()
	addr := dlqtest.StartBroker(t, "t", "t.dlq")
	dlqtest.ProduceDead(t, addr, "t.dlq",
		dlqtest.Dead{Key: "a", OriginalTopic: "t", Reason: "invalid", Time: time.Now()},
		dlqtest.Dead{Key: "b", Reason: "invalid", Time: time.Now()}, // no original topic
	)
	recs := readAll(t, addr, "t.dlq")
	w, err := replay.New(replay.Config{Brokers: []string{addr}, Allow: replay.DefaultAllow("t.dlq")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n, err := w.Write(t.Context(), recs, "", nil); !errors.Is(err, replay.ErrNoTarget) || n != 0 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n := dlqtest.EndOffsets(t, addr, "t"); n != 0 {
		t.Fatalf("%d messages written", n)
	}
}

func TestIntegrationReplayWriteErrorNamesOffsets(t *testing.T) {
	t.Parallel()
	addr := dlqtest.StartBroker(t, "t.dlq")
	dlqtest.ProduceDead(t, addr, "t.dlq",
		dlqtest.Dead{Key: "a", OriginalTopic: "missing", Reason: "invalid", Time: time.Now()},
		dlqtest.Dead{Key: "b", OriginalTopic: "missing", Reason: "invalid", Time: time.Now()},
		dlqtest.Dead{Key: "c", OriginalTopic: "missing", Reason: "invalid", Time: time.Now()},
	)
	recs := readAll(t, addr, "t.dlq")
	w, err := replay.New(replay.Config{Brokers: []string{addr}, Allow: replay.NewAllow("missing"), BatchSize: 2, MaxAttempts: 1, WriteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	n, err := w.Write(t.Context(), recs, "", nil)
	var rerr *replay.Error
	if !errors.As(err, &rerr) || n != 0 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if len(rerr.Failed) != 2 || len(rerr.NotAttempted) != 1 {
		t.Fatalf("failed %v, not attempted %v", rerr.Failed, rerr.NotAttempted)
	}
	for i, f := range rerr.Failed {
		if f.Ref != recs[i].Ref() || !strings.Contains(err.Error(), f.Ref) {
			t.Fatalf("failure %d = %+v; error %q", i, f, err)
		}
	}
	if rerr.NotAttempted[0] != recs[2].Ref() {
		t.Fatalf("not attempted = %v", rerr.NotAttempted)
	}
}

func TestNewRequiresBrokersAndAllowedTopics(t *testing.T) {
	t.Parallel()
	if _, err := replay.New(replay.Config{Allow: replay.NewAllow("t")}); err == nil {
		t.Fatal("no brokers: no error")
	}
	if _, err := replay.New(replay.Config{Brokers: []string{"127.0.0.1:1"}}); err == nil {
		t.Fatal("no allowed topics: no error")
	}
}

// A dead letter's dlq_original_topic is data: it only chooses among the
// allowed topics, by default the one the DLQ's name implies.
func TestDestinationOnlyToAllowedTopics(t *testing.T) {
	t.Parallel()
	const cmds, events = "topic-comando-crear-compania", "topic-eventos-compania"
	record := func(original string) scan.Record {
		r := scan.NewRecord(dlqtest.Dead{Key: "k", Reason: "invalid", OriginalTopic: original, Time: time.Now()}.Message())
		r.Topic, r.Partition, r.Offset = cmds+".dlq", 0, 7
		return r
	}
	allow := replay.DefaultAllow(cmds + ".dlq")
	if got := allow.Topics(); !slices.Equal(got, []string{cmds}) {
		t.Fatalf("DefaultAllow(%s.dlq) = %v, want [%s]", cmds, got, cmds)
	}
	tests := []struct {
		name, original, to string
		allow              replay.Allow
		want               string
		err                error
	}{
		{"original topic", cmds, "", allow, cmds, nil},
		{"event topic from the command DLQ", events, "", allow, events, replay.ErrNotAllowed},
		{"arbitrary topic", "__consumer_offsets", "", allow, "__consumer_offsets", replay.ErrNotAllowed},
		{"the DLQ itself", cmds + ".dlq", "", allow, cmds + ".dlq", replay.ErrNotAllowed},
		{"other case", "TOPIC-COMANDO-CREAR-COMPANIA", "", allow, "TOPIC-COMANDO-CREAR-COMPANIA", replay.ErrNotAllowed},
		{"explicitly allowed", events, "", replay.DefaultAllow(cmds+".dlq", events), events, nil},
		{"-to must be allowed too", cmds, "elsewhere", allow, "elsewhere", replay.ErrNotAllowed},
		{"DLQ not named <topic>.dlq allows nothing", cmds, "", replay.DefaultAllow("dead-letters"), cmds, replay.ErrNotAllowed},
		{"no target", "", "", allow, "", replay.ErrNoTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := replay.Destination(record(tt.original), tt.to, tt.allow)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Destination = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// Write refuses the whole batch, writing nothing, if any record's
// destination is not allowed: it is the last check before the broker.
func TestIntegrationReplayNotAllowedWritesNothing(t *testing.T) {
	t.Parallel()
	addr := dlqtest.StartBroker(t, "t", "t.dlq", "victim")
	dlqtest.ProduceDead(t, addr, "t.dlq",
		dlqtest.Dead{Key: "a", OriginalTopic: "t", Reason: "invalid", Time: time.Now()},
		dlqtest.Dead{Key: "b", OriginalTopic: "victim", Reason: "invalid", Time: time.Now()}, // poisoned header
	)
	recs := readAll(t, addr, "t.dlq")
	w, err := replay.New(replay.Config{Brokers: []string{addr}, Allow: replay.DefaultAllow("t.dlq")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n, err := w.Write(t.Context(), recs, "", nil); !errors.Is(err, replay.ErrNotAllowed) || n != 0 {
		t.Fatalf("Write = %d, %v; want 0, ErrNotAllowed", n, err)
	}
	for _, topic := range []string{"t", "victim"} {
		if n := dlqtest.EndOffsets(t, addr, topic); n != 0 {
			t.Fatalf("%d messages written to %s", n, topic)
		}
	}
}
