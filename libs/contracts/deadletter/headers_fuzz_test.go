package deadletter_test

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// fuzzHeader has the structure deadletter.Headers works on.
type fuzzHeader struct {
	Key   string
	Value []byte
}

// FuzzHeaders builds the dead-letter headers of arbitrary messages (headers
// as "key=value" lines, "\n"-separated) and causes. The original headers
// come first, minus every dlq_ one, in order and unchanged; then each header
// of the contract once, in a fixed order, holding the info: the error text
// cut to MaxErrorLen bytes without splitting a UTF-8 character, partition
// and offset in decimal, the time in RFC 3339 UTC. The input is not
// modified. Seeds are in testdata/fuzz/FuzzHeaders/.
func FuzzHeaders(f *testing.F) {
	names := []string{deadletter.HeaderReason, deadletter.HeaderError, deadletter.HeaderTopic, deadletter.HeaderPartition,
		deadletter.HeaderOffset, deadletter.HeaderTime, deadletter.HeaderConsumer}
	f.Fuzz(func(t *testing.T, lines, reason, errText, topic string, partition int, offset, unixNano int64, group string) {
		var original []fuzzHeader
		if lines != "" {
			for _, l := range strings.Split(lines, "\n") {
				k, v, _ := strings.Cut(l, "=")
				original = append(original, fuzzHeader{k, []byte(v)})
			}
		}
		before := slices.Clone(original)
		info := deadletter.Info{Reason: reason, Err: errors.New(errText), Topic: topic, Partition: partition,
			Offset: offset, Time: time.Unix(0, unixNano).In(time.FixedZone("x", 3600)), ConsumerGroup: group}
		got := deadletter.Headers(info, original)

		if !slices.EqualFunc(original, before, sameHeader) {
			t.Fatalf("Headers modified its input: %q, was %q", original, before)
		}
		var kept []fuzzHeader
		for _, h := range original {
			if !deadletter.IsHeader(h.Key) {
				kept = append(kept, h)
			}
		}
		if len(got) != len(kept)+len(names) || !slices.EqualFunc(got[:len(kept)], kept, sameHeader) {
			t.Fatalf("headers %q: got %q, want %q then the %d dead-letter headers", lines, got, kept, len(names))
		}
		own := got[len(kept):]
		for i, h := range own {
			if h.Key != names[i] {
				t.Fatalf("dead-letter header %d is %q, want %q", i, h.Key, names[i])
			}
		}
		value := func(i int) string { return string(own[i].Value) }
		if value(0) != reason || value(2) != topic || value(6) != group {
			t.Fatalf("reason %q topic %q group %q written as %q %q %q", reason, topic, group, value(0), value(2), value(6))
		}
		e := value(1)
		if len(e) > deadletter.MaxErrorLen || !strings.HasPrefix(errText, e) ||
			(utf8.ValidString(errText) && (!utf8.ValidString(e) || len(e) < min(len(errText), deadletter.MaxErrorLen-utf8.UTFMax+1))) {
			t.Fatalf("error text of %d bytes written as %d bytes %q", len(errText), len(e), e)
		}
		if p, err := strconv.Atoi(value(3)); err != nil || p != partition {
			t.Fatalf("partition %d written as %q", partition, value(3))
		}
		if o, err := strconv.ParseInt(value(4), 10, 64); err != nil || o != offset {
			t.Fatalf("offset %d written as %q", offset, value(4))
		}
		if tm, err := time.Parse(time.RFC3339Nano, value(5)); err != nil || !tm.Equal(info.Time) || tm.Location() != time.UTC {
			t.Fatalf("time %v written as %q (%v)", info.Time, value(5), err)
		}
	})
}

func sameHeader(a, b fuzzHeader) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }
