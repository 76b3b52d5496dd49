package main

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// TestHugeCommand checks the huge-traceparent command: a valid command
// whose record the broker accepts, with a traceparent of the stated size
// that is not a valid W3C one, the same for the same seed.
func TestHugeCommand(t *testing.T) {
	h := buildHugeCommand(42)
	c, err := companiacmd.DecodeCrearCompania(h.msg.Value)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if c.Data.Identificacion != h.identificacion || !strings.HasPrefix(h.identificacion, "KCMD-") {
		t.Errorf("identificacion %q / %q: not counted with the Kafka commands' companies", c.Data.Identificacion, h.identificacion)
	}
	if len(h.msg.Headers) != 1 || h.msg.Headers[0].Key != companiaevent.HeaderTraceparent {
		t.Fatalf("headers %v, want one traceparent", h.msg.Headers)
	}
	tp := h.msg.Headers[0].Value
	if len(tp) != hugeTraceparentBytes || !strings.HasPrefix(string(tp), "00-") {
		t.Errorf("traceparent of %d bytes starting %.10q", len(tp), tp)
	}
	if n := batchBytesBound(h.msg); n > brokerMaxMessageBytes {
		t.Errorf("its record batch may take %d bytes, above the broker's max.message.bytes %d", n, brokerMaxMessageBytes)
	}
	if w := hugeWriter("127.0.0.1:1"); int(w.BatchBytes) < batchBytesBound(h.msg) {
		t.Errorf("producer BatchBytes %d below the record", w.BatchBytes)
	}
	if g := buildHugeCommand(42); string(g.msg.Headers[0].Value) != string(tp) || string(g.msg.Value) != string(h.msg.Value) {
		t.Error("not reproducible from its seed")
	}
	if g := buildHugeCommand(43); string(g.msg.Headers[0].Value) == string(tp) || string(g.msg.Value) == string(h.msg.Value) {
		t.Error("the same for two seeds")
	}
}
