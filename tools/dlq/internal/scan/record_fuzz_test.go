package scan_test

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/tools/dlq/internal/scan"
	"github.com/segmentio/kafka-go"
)

// fuzzHeaders parses "key=value" lines ("\n"-separated; a line without "="
// is a key with an empty value); "" means no headers.
func fuzzHeaders(s string) []kafka.Header {
	if s == "" {
		return nil
	}
	var hs []kafka.Header
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		hs = append(hs, kafka.Header{Key: k, Value: []byte(v)})
	}
	return hs
}

// last returns the value of the last header named key.
func last(hs []kafka.Header, key string) (string, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return string(hs[i].Value), true
		}
	}
	return "", false
}

// FuzzNewRecord parses the dead-letter headers of arbitrary messages. Each
// field holds the last header of its name (a partition or offset that is not
// a decimal number is -1, a time that is not RFC 3339 is zero), the record
// keeps the message as it came, OriginalHeaders are the headers without a
// dlq_ prefix in order, and the headers written back from the parsed fields
// parse to the same record. Seeds are in testdata/fuzz/FuzzNewRecord/.
func FuzzNewRecord(f *testing.F) {
	ts := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, headers string, key, value []byte) {
		hs := fuzzHeaders(headers)
		m := kafka.Message{Topic: "cmds.dlq", Partition: 2, Offset: 7, Time: ts, Key: key, Value: value, Headers: hs}
		r := scan.NewRecord(m)

		if r.Topic != m.Topic || r.Partition != 2 || r.Offset != 7 || !r.Timestamp.Equal(ts) || !bytes.Equal(r.Key, key) ||
			!bytes.Equal(r.Value, value) || !slices.EqualFunc(r.Headers, hs, sameHeader) || r.Ref() != "cmds.dlq/2/7" {
			t.Fatalf("record %+v does not keep the message %+v", r, m)
		}
		for k, got := range map[string]string{deadletter.HeaderReason: r.Reason, deadletter.HeaderError: r.Error,
			deadletter.HeaderTopic: r.OriginalTopic, deadletter.HeaderConsumer: r.ConsumerGroup} {
			if want, _ := last(hs, k); got != want {
				t.Fatalf("headers %q: %s parsed as %q, want %q", headers, k, got, want)
			}
		}
		wantPart, wantOff := -1, int64(-1)
		if v, ok := last(hs, deadletter.HeaderPartition); ok {
			if n, err := strconv.Atoi(v); err == nil {
				wantPart = n
			}
		}
		if v, ok := last(hs, deadletter.HeaderOffset); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				wantOff = n
			}
		}
		var wantTime time.Time
		if v, ok := last(hs, deadletter.HeaderTime); ok {
			wantTime, _ = time.Parse(time.RFC3339Nano, v)
		}
		if r.OriginalPartition != wantPart || r.OriginalOffset != wantOff || !r.DLQTime.Equal(wantTime) {
			t.Fatalf("headers %q: partition %d offset %d time %v, want %d %d %v", headers,
				r.OriginalPartition, r.OriginalOffset, r.DLQTime, wantPart, wantOff, wantTime)
		}
		wantT := ts
		if !wantTime.IsZero() {
			wantT = wantTime
		}
		if !r.Time().Equal(wantT) {
			t.Fatalf("headers %q: Time() = %v, want %v", headers, r.Time(), wantT)
		}
		var orig []kafka.Header
		for _, h := range hs {
			if !deadletter.IsHeader(h.Key) {
				orig = append(orig, h)
			}
		}
		if got := r.OriginalHeaders(); !slices.EqualFunc(got, orig, sameHeader) {
			t.Fatalf("headers %q: original headers %q, want %q", headers, got, orig)
		}

		again := scan.NewRecord(kafka.Message{Topic: m.Topic, Partition: 2, Offset: 7, Time: ts, Key: key, Value: value,
			Headers: append(slices.Clone(orig), writeBack(r)...)})
		if again.Reason != r.Reason || again.Error != r.Error || again.OriginalTopic != r.OriginalTopic ||
			again.ConsumerGroup != r.ConsumerGroup || again.OriginalPartition != r.OriginalPartition ||
			again.OriginalOffset != r.OriginalOffset || !again.DLQTime.Equal(r.DLQTime) {
			t.Fatalf("record %+v written back parses to %+v", r, again)
		}
	})
}

func sameHeader(a, b kafka.Header) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }

// writeBack returns the dead-letter headers of r's parsed fields, in their
// canonical form; the fields unknown (-1, zero time) are left out.
func writeBack(r scan.Record) []kafka.Header {
	hs := []kafka.Header{
		{Key: deadletter.HeaderReason, Value: []byte(r.Reason)},
		{Key: deadletter.HeaderError, Value: []byte(r.Error)},
		{Key: deadletter.HeaderTopic, Value: []byte(r.OriginalTopic)},
		{Key: deadletter.HeaderConsumer, Value: []byte(r.ConsumerGroup)},
	}
	if r.OriginalPartition != -1 {
		hs = append(hs, kafka.Header{Key: deadletter.HeaderPartition, Value: []byte(strconv.Itoa(r.OriginalPartition))})
	}
	if r.OriginalOffset != -1 {
		hs = append(hs, kafka.Header{Key: deadletter.HeaderOffset, Value: []byte(strconv.FormatInt(r.OriginalOffset, 10))})
	}
	if !r.DLQTime.IsZero() {
		hs = append(hs, kafka.Header{Key: deadletter.HeaderTime, Value: []byte(r.DLQTime.Format(time.RFC3339Nano))})
	}
	return hs
}
