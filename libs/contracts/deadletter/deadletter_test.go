package deadletter_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/propalpes/companias/libs/contracts/deadletter"
)

func TestHeadersReplaceOldDeadLetterHeaders(t *testing.T) {
	original := []header{
		{Key: "ce_type", Value: []byte("CompaniaCreada.v1")},
		{Key: deadletter.HeaderReason, Value: []byte("malformed")},
		{Key: "dlq_replayed_from", Value: []byte("x.dlq/0/7")},
		{Key: deadletter.HeaderTime, Value: []byte("2020-01-01T00:00:00Z")},
		{Key: "ce_id", Value: []byte("e-1")},
	}
	keep := append([]header(nil), original...)
	at := time.Date(2026, 11, 27, 10, 0, 0, 123000, time.FixedZone("COT", -5*3600))
	got := deadletter.Headers(deadletter.Info{
		Reason: deadletter.ReasonInvalid, Err: errors.New("nombre: required"),
		Topic: "eventos", Partition: 3, Offset: 42, Time: at, ConsumerGroup: "g",
	}, original)

	want := []header{
		{Key: "ce_type", Value: []byte("CompaniaCreada.v1")},
		{Key: "ce_id", Value: []byte("e-1")},
		{Key: deadletter.HeaderReason, Value: []byte("invalid")},
		{Key: deadletter.HeaderError, Value: []byte("nombre: required")},
		{Key: deadletter.HeaderTopic, Value: []byte("eventos")},
		{Key: deadletter.HeaderPartition, Value: []byte("3")},
		{Key: deadletter.HeaderOffset, Value: []byte("42")},
		{Key: deadletter.HeaderTime, Value: []byte("2026-11-27T15:00:00.000123Z")},
		{Key: deadletter.HeaderConsumer, Value: []byte("g")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d headers, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Key != want[i].Key || string(got[i].Value) != string(want[i].Value) {
			t.Errorf("header %d = %s=%q, want %s=%q", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
	for i := range keep {
		if original[i].Key != keep[i].Key {
			t.Fatalf("original headers modified: %q", original)
		}
	}
}

type header struct {
	Key   string
	Value []byte
}

func TestHeadersBoundTheErrorText(t *testing.T) {
	long := strings.Repeat("a", deadletter.MaxErrorLen-1) + "ñ" + strings.Repeat("b", 10)
	h := deadletter.Headers[header](deadletter.Info{Err: errors.New(long)}, nil)
	var text []byte
	for _, x := range h {
		if x.Key == deadletter.HeaderError {
			text = x.Value
		}
	}
	if len(text) > deadletter.MaxErrorLen || !utf8.Valid(text) {
		t.Fatalf("error header of %d bytes, valid UTF-8 %v; want ≤ %d, valid", len(text), utf8.Valid(text), deadletter.MaxErrorLen)
	}
	if len(text) != deadletter.MaxErrorLen-1 {
		t.Fatalf("error header cut to %d bytes, want %d (before the 2-byte ñ)", len(text), deadletter.MaxErrorLen-1)
	}
}

func TestIsHeader(t *testing.T) {
	for key, want := range map[string]bool{
		deadletter.HeaderReason: true, deadletter.HeaderConsumer: true, "dlq_replayed_from": true,
		"ce_type": false, "DLQ_reason": false, "": false,
	} {
		if got := deadletter.IsHeader(key); got != want {
			t.Errorf("IsHeader(%q) = %v, want %v", key, got, want)
		}
	}
}

// A message the broker accepted with a 1 MB traceparent and 36 KB of other
// headers gets a dead letter of bounded size: the traceparent is dropped
// (over MaxCopiedHeaderBytes), copying stops at the header that would pass
// MaxCopiedHeadersBytes (every later one is dropped too), and
// dlq_dropped_headers names the dropped keys and sizes, never a value.
func TestHeadersBoundTheCopiedHeaders(t *testing.T) {
	original := []header{
		{Key: "ce_id", Value: []byte("e-1")},
		{Key: "traceparent", Value: []byte(strings.Repeat("f", 1_048_000))},
	}
	for i := range 9 { // 2-byte keys: 4000 bytes each
		original = append(original, header{Key: fmt.Sprintf("h%d", i), Value: []byte(strings.Repeat("v", 3998))})
	}
	original = append(original, header{Key: "after", Value: []byte("1")})

	got := deadletter.Headers(deadletter.Info{Reason: deadletter.ReasonInvalid, Err: errors.New("x")}, original)

	var keys []string
	size := 0
	for _, h := range got {
		keys = append(keys, h.Key)
		size += len(h.Key) + len(h.Value)
	}
	want := []string{"ce_id", "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7",
		deadletter.HeaderReason, deadletter.HeaderError, deadletter.HeaderTopic, deadletter.HeaderPartition,
		deadletter.HeaderOffset, deadletter.HeaderTime, deadletter.HeaderConsumer, deadletter.HeaderDroppedHeaders}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("header keys %q, want %q", keys, want)
	}
	if size > deadletter.MaxCopiedHeadersBytes+4096 {
		t.Errorf("dead-letter headers hold %d bytes, want at most the copy bound plus the contract's", size)
	}
	const wantDropped = `{"count":3,"bytes":1052017,"headers":[{"key":"traceparent","size":1048011},{"key":"h8","size":4000},{"key":"after","size":6}]}`
	if d := string(got[len(got)-1].Value); d != wantDropped {
		t.Errorf("%s = %s, want %s", deadletter.HeaderDroppedHeaders, d, wantDropped)
	}
	// Nothing dropped: no dlq_dropped_headers.
	if h := deadletter.Headers(deadletter.Info{}, original[:1]); len(h) != 8 || h[len(h)-1].Key != deadletter.HeaderConsumer {
		t.Errorf("headers of a small message: %q", h)
	}
}

func TestSourceTopicInvertsTopic(t *testing.T) {
	t.Parallel()
	for _, topic := range []string{"topic-eventos-compania", "a.dlq", "x"} {
		if got, ok := deadletter.SourceTopic(deadletter.Topic(topic)); !ok || got != topic {
			t.Errorf("SourceTopic(Topic(%q)) = %q, %v", topic, got, ok)
		}
	}
	for _, dlq := range []string{"", ".dlq", "topic-eventos-compania", "t.DLQ", "t.dlq.bak"} {
		if got, ok := deadletter.SourceTopic(dlq); ok {
			t.Errorf("SourceTopic(%q) = %q, true; want false", dlq, got)
		}
	}
}
