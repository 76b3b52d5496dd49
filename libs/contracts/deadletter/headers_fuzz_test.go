package deadletter_test

import (
	"bytes"
	"encoding/json"
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
// come first, minus every dlq_ one, in order and unchanged, bounded: a header
// over MaxCopiedHeaderBytes is dropped, and so is every header from the first
// that would take the total over MaxCopiedHeadersBytes; then each header
// of the contract once, in a fixed order, holding the info: the error text
// cut to MaxErrorLen bytes without splitting a UTF-8 character, partition
// and offset in decimal, the time in RFC 3339 UTC; then, if any header was
// dropped, dlq_dropped_headers listing their keys and sizes, never values.
// The input is not modified. Seeds are in testdata/fuzz/FuzzHeaders/.
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
		// The copy: the original minus dlq_ headers and headers over
		// MaxCopiedHeaderBytes, up to the first that would take the total
		// over MaxCopiedHeadersBytes.
		var kept, dropped []fuzzHeader
		total, full := 0, false
		for _, h := range original {
			if deadletter.IsHeader(h.Key) {
				continue
			}
			size := len(h.Key) + len(h.Value)
			if full || size > deadletter.MaxCopiedHeaderBytes || total+size > deadletter.MaxCopiedHeadersBytes {
				full = full || size <= deadletter.MaxCopiedHeaderBytes
				dropped = append(dropped, h)
				continue
			}
			total += size
			kept = append(kept, h)
		}
		wantOwn := len(names)
		if len(dropped) > 0 {
			wantOwn++
		}
		if len(got) != len(kept)+wantOwn || !slices.EqualFunc(got[:len(kept)], kept, sameHeader) {
			t.Fatalf("headers %q: got %q, want %q then %d dead-letter headers", lines, got, kept, wantOwn)
		}
		own := got[len(kept):]
		if len(dropped) > 0 {
			checkDropped(t, own[len(names)], dropped)
			own = own[:len(names)]
		}
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

// checkDropped checks the HeaderDroppedHeaders header h against the headers
// dropped: their count, total size and the first MaxDroppedListed in order,
// keys cut to MaxDroppedKeyLen bytes; no value, and a bounded size.
func checkDropped(t *testing.T, h fuzzHeader, dropped []fuzzHeader) {
	t.Helper()
	if h.Key != deadletter.HeaderDroppedHeaders {
		t.Fatalf("header after the contract's is %q, want %q", h.Key, deadletter.HeaderDroppedHeaders)
	}
	var got struct {
		Count   int `json:"count"`
		Bytes   int `json:"bytes"`
		Headers []struct {
			Key  string `json:"key"`
			Size int    `json:"size"`
		} `json:"headers"`
	}
	if err := json.Unmarshal(h.Value, &got); err != nil {
		t.Fatalf("%s %q: %v", h.Key, h.Value, err)
	}
	size := 0
	for _, d := range dropped {
		size += len(d.Key) + len(d.Value)
	}
	if got.Count != len(dropped) || got.Bytes != size || len(got.Headers) != min(len(dropped), deadletter.MaxDroppedListed) {
		t.Fatalf("%s = %s; want count %d, bytes %d, %d listed", h.Key, h.Value, len(dropped), size, min(len(dropped), deadletter.MaxDroppedListed))
	}
	for i, g := range got.Headers {
		d := dropped[i]
		if g.Size != len(d.Key)+len(d.Value) || len(g.Key) > 3*deadletter.MaxDroppedKeyLen ||
			(utf8.ValidString(d.Key) && (!strings.HasPrefix(d.Key, g.Key) || len(g.Key) < min(len(d.Key), deadletter.MaxDroppedKeyLen-utf8.UTFMax+1))) {
			t.Fatalf("dropped header %d (%d-byte key %.20q, size %d) listed as %q, size %d", i, len(d.Key), d.Key, len(d.Key)+len(d.Value), g.Key, g.Size)
		}
	}
	if limit := 64 + deadletter.MaxDroppedListed*(6*deadletter.MaxDroppedKeyLen+40); len(h.Value) > limit {
		t.Fatalf("%s has %d bytes, more than %d", h.Key, len(h.Value), limit)
	}
}

func sameHeader(a, b fuzzHeader) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }
