package replay_test

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/tools/dlq/internal/replay"
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

func sameHeaders(a, b []kafka.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// FuzzMessage replays arbitrary dead letters, to topic or else to their
// dlq_original_topic. Without either it is ErrNoTarget; otherwise the replay
// has the dead letter's key and value, its headers without any dlq_ one in
// order, and one dlq_replayed_from naming the record. Dead-lettered again and
// replayed again, a message keeps the same original headers: replays do not
// pile up headers. Whatever the headers say, Destination allows only the
// topic the DLQ's name implies ("cmds"). Seeds are in
// testdata/fuzz/FuzzMessage/.
func FuzzMessage(f *testing.F) {
	allow := replay.DefaultAllow("cmds.dlq")
	f.Fuzz(func(t *testing.T, headers string, key, value []byte, topic string) {
		r := scan.NewRecord(kafka.Message{Topic: "cmds.dlq", Partition: 1, Offset: 9, Key: key, Value: value, Headers: fuzzHeaders(headers)})
		m, err := replay.Message(r, topic)
		target := topic
		if target == "" {
			target = r.OriginalTopic
		}
		dest, derr := replay.Destination(r, topic, allow)
		switch {
		case target == "":
			if !errors.Is(derr, replay.ErrNoTarget) {
				t.Fatalf("Destination without a target = %q, %v; want ErrNoTarget", dest, derr)
			}
		case target == "cmds":
			if derr != nil || dest != target {
				t.Fatalf("Destination = %q, %v; want %q", dest, derr, target)
			}
		default:
			if !errors.Is(derr, replay.ErrNotAllowed) || dest != target {
				t.Fatalf("Destination to %q = %q, %v; want ErrNotAllowed", target, dest, derr)
			}
		}
		if target == "" {
			if !errors.Is(err, replay.ErrNoTarget) || m.Topic != "" || m.Headers != nil {
				t.Fatalf("no target: %+v, %v; want ErrNoTarget", m, err)
			}
			return
		}
		orig := r.OriginalHeaders()
		want := slices.Concat(orig, []kafka.Header{{Key: replay.HeaderReplayedFrom, Value: []byte("cmds.dlq/1/9")}})
		if err != nil || m.Topic != target || !bytes.Equal(m.Key, key) || !bytes.Equal(m.Value, value) || !sameHeaders(m.Headers, want) {
			t.Fatalf("replay of %q to %q = %+v, %v; want topic %q and headers %q", headers, topic, m, err, target, want)
		}

		// The consumer dead-letters the replay again: it keeps the headers
		// and adds its own (dlq_replayed_from included, as any header).
		again := scan.NewRecord(kafka.Message{Topic: "cmds.dlq", Partition: 0, Offset: 10, Key: m.Key, Value: m.Value,
			Headers: append(append([]kafka.Header(nil), m.Headers...),
				kafka.Header{Key: deadletter.HeaderReason, Value: []byte(deadletter.ReasonInvalid)},
				kafka.Header{Key: deadletter.HeaderTopic, Value: []byte(target)},
				kafka.Header{Key: deadletter.HeaderOffset, Value: []byte(strconv.Itoa(3))},
				kafka.Header{Key: deadletter.HeaderTime, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))})})
		m2, err := replay.Message(again, "")
		want2 := slices.Concat(orig, []kafka.Header{{Key: replay.HeaderReplayedFrom, Value: []byte("cmds.dlq/0/10")}})
		if err != nil || m2.Topic != target || !sameHeaders(m2.Headers, want2) {
			t.Fatalf("second replay = %+v, %v; want topic %q and headers %q", m2, err, target, want2)
		}
	})
}
