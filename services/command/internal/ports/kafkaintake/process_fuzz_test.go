package kafkaintake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// answeringCreator records the commands it gets and answers each with err.
type answeringCreator struct {
	err   error
	calls []command.CrearCompania
}

func (a *answeringCreator) Handle(_ context.Context, cmd command.CrearCompania) (command.Result, error) {
	a.calls = append(a.calls, cmd)
	return command.Result{}, a.err
}

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

// FuzzProcess turns arbitrary records into CrearCompania commands, as the
// consumer does with each message, with the use case answering by outcome.
// A value over MaxCommandBytes (exactly beyond it) or not a well-formed
// command is dead-lettered as malformed without reaching the use case. A
// well-formed one reaches it once, as the decoded data with the command id
// as idempotency key, the hash of the data's canonical JSON and the record's
// traceparent when it has one that tracing.ParseTraceparent keeps; its canonical re-encoding reaches it as the same command. A
// refusal is dead-lettered with its reason. A dead letter has the record's
// key, value and non-dead-letter headers in order (those the deadletter
// contract drops for their size listed in dlq_dropped_headers), then each
// dead-letter header once, naming the record's topic, partition and offset.
// Seeds are in testdata/fuzz/FuzzProcess/.
func FuzzProcess(f *testing.F) {
	// What the use case answers, by outcome%4, and the dead-letter reason
	// each answer gets ("" for success).
	outcomes := []struct {
		err    error
		reason string
	}{
		{nil, ""},
		{apperr.Validation("validation", "the request has invalid fields", []apperr.FieldError{{Field: "email", Message: "must be an email address"}}), deadletter.ReasonInvalid},
		{compania.ErrDuplicate, deadletter.ReasonConflict},
		{command.ErrIdempotencyMismatch, deadletter.ReasonConflict},
	}
	f.Fuzz(func(t *testing.T, key, value []byte, headers string, outcome uint8) {
		out := outcomes[int(outcome)%len(outcomes)]
		m := kafka.Message{Topic: "cmds", Partition: 3, Offset: 41, Key: key, Value: value, Headers: fuzzHeaders(headers)}
		calls, dead := processFuzzed(t, m, out.err)

		cmd, derr := companiacmd.DecodeCrearCompania(value)
		if len(value) > DefaultMaxCommandBytes || derr != nil {
			if len(calls) != 0 || len(dead) != 1 {
				t.Fatalf("malformed %q: %d use case calls, %d dead letters", value, len(calls), len(dead))
			}
			checkDeadLetter(t, m, dead[0], deadletter.ReasonMalformed)
			return
		}
		if len(calls) != 1 {
			t.Fatalf("command %q reached the use case %d times", value, len(calls))
		}
		data, _ := json.Marshal(cmd.Data)
		hash := sha256.Sum256(data)
		want := command.CrearCompania{
			Datos:       compania.Datos{Nombre: cmd.Data.Nombre, Email: cmd.Data.Email, Identificacion: cmd.Data.Identificacion},
			Idempotency: &command.Idempotency{Scope: "kafka:cmds", Key: cmd.ID, RequestHash: hash[:]},
			Traceparent: keptTraceparent(m.Headers),
		}
		if !sameCommand(calls[0], want) {
			t.Fatalf("command %q reached the use case as %+v, want %+v", value, calls[0], want)
		}
		switch {
		case out.reason == "" && len(dead) != 0:
			t.Fatalf("a processed command was dead-lettered: %+v", dead)
		case out.reason != "":
			if len(dead) != 1 {
				t.Fatalf("refused with %v: %d dead letters", out.err, len(dead))
			}
			checkDeadLetter(t, m, dead[0], out.reason)
		}

		canon := m
		canon.Value, _ = json.Marshal(cmd)
		if again, _ := processFuzzed(t, canon, out.err); len(again) != 1 || !sameCommand(again[0], want) {
			t.Fatalf("the canonical form %s reached the use case as %+v, want %+v", canon.Value, again, want)
		}

		// The size limit, with white space after the JSON value.
		padded := m
		padded.Value = append(bytes.Clone(value), bytes.Repeat([]byte(" "), DefaultMaxCommandBytes-len(value))...)
		if again, _ := processFuzzed(t, padded, out.err); len(again) != 1 || !sameCommand(again[0], want) {
			t.Fatalf("the command padded to %d bytes reached the use case as %+v, want %+v", DefaultMaxCommandBytes, again, want)
		}
		padded.Value = append(padded.Value, ' ')
		if again, dl := processFuzzed(t, padded, out.err); len(again) != 0 || len(dl) != 1 {
			t.Fatalf("a command of %d bytes: %d use case calls, %d dead letters", len(padded.Value), len(again), len(dl))
		} else {
			checkDeadLetter(t, padded, dl[0], deadletter.ReasonMalformed)
		}
	})
}

// processFuzzed processes m with a consumer whose use case answers err and
// returns the commands the use case got and the dead letters written.
func processFuzzed(t *testing.T, m kafka.Message, err error) ([]command.CrearCompania, []kafka.Message) {
	t.Helper()
	cr := &answeringCreator{err: err}
	c, nerr := New(Config{Brokers: []string{"fake:9092"}, GroupID: "g", Topic: m.Topic}, cr, slog.New(slog.DiscardHandler))
	if nerr != nil {
		t.Fatal(nerr)
	}
	w := &fakeDLQ{}
	if perr := c.process(context.Background(), m, fakeDeadLetterer{c, w}); perr != nil {
		t.Fatalf("process: %v", perr)
	}
	return cr.calls, w.snapshot()
}

func sameCommand(a, b command.CrearCompania) bool {
	return a.ID == b.ID && a.Datos == b.Datos && a.Traceparent == b.Traceparent && a.Idempotency != nil &&
		b.Idempotency != nil && a.Idempotency.Scope == b.Idempotency.Scope && a.Idempotency.Key == b.Idempotency.Key &&
		bytes.Equal(a.Idempotency.RequestHash, b.Idempotency.RequestHash)
}

// keptTraceparent is the traceparent the consumer passes on: the record's
// only traceparent header, under tracing.ParseTraceparent's rule; else "".
func keptTraceparent(hs []kafka.Header) string {
	var values []string
	for _, h := range hs {
		if h.Key == "traceparent" {
			values = append(values, string(h.Value))
		}
	}
	if len(values) != 1 {
		return ""
	}
	tp, _ := tracing.ParseTraceparent(values[0])
	return tp
}

// dlqHeaders are the headers the deadletter contract sets on a dead letter.
var dlqHeaders = []string{
	deadletter.HeaderReason, deadletter.HeaderError, deadletter.HeaderTopic,
	deadletter.HeaderPartition, deadletter.HeaderOffset, deadletter.HeaderTime,
	deadletter.HeaderConsumer,
}

// checkDeadLetter checks the dead letter d of m.
func checkDeadLetter(t *testing.T, m, d kafka.Message, reason string) {
	t.Helper()
	if !bytes.Equal(d.Key, m.Key) || !bytes.Equal(d.Value, m.Value) {
		t.Fatalf("dead letter key %q value %q, want %q %q", d.Key, d.Value, m.Key, m.Value)
	}
	// The copied headers: the record's non-dead-letter ones in order, some
	// dropped for their size (deadletter.Headers bounds them), in which case
	// dlq_dropped_headers says so.
	var original []kafka.Header
	for _, h := range m.Headers {
		if !deadletter.IsHeader(h.Key) {
			original = append(original, h)
		}
	}
	copied := 0
	for copied < len(d.Headers) && !deadletter.IsHeader(d.Headers[copied].Key) {
		copied++
	}
	i := 0
	for _, h := range d.Headers[:copied] {
		for i < len(original) && (original[i].Key != h.Key || !bytes.Equal(original[i].Value, h.Value)) {
			i++
		}
		if i == len(original) {
			t.Fatalf("dead letter headers %q: not the record's %q in order", d.Headers[:copied], original)
		}
		i++
	}
	extra := 0
	if _, n := header(d.Headers, deadletter.HeaderDroppedHeaders); n != 0 || copied < len(original) {
		extra = 1
		if n != 1 || copied == len(original) {
			t.Fatalf("%d of %d headers copied, %s %d times", copied, len(original), deadletter.HeaderDroppedHeaders, n)
		}
	}
	if len(d.Headers) != copied+len(dlqHeaders)+extra {
		t.Fatalf("dead letter headers %q, want %d copied and then the %d dead-letter headers", d.Headers, copied, len(dlqHeaders)+extra)
	}
	want := map[string]string{
		deadletter.HeaderReason: reason, deadletter.HeaderTopic: m.Topic, deadletter.HeaderConsumer: "g",
		deadletter.HeaderPartition: strconv.Itoa(m.Partition), deadletter.HeaderOffset: strconv.FormatInt(m.Offset, 10),
	}
	for _, k := range dlqHeaders {
		v, n := header(d.Headers, k)
		if n != 1 || (want[k] != "" && v != want[k]) || v == "" {
			t.Fatalf("dead letter header %s = %q (%d times), want %q once", k, v, n, want[k])
		}
	}
	v, _ := header(d.Headers, deadletter.HeaderTime)
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		t.Fatalf("dead letter time %q: %v", v, err)
	}
}
