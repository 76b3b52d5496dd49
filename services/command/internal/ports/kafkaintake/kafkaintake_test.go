package kafkaintake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit/groupconsumer"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	tracelogs "github.com/propalpes/companias/libs/telemetry/logs"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
	"github.com/segmentio/kafka-go"
)

const validCmd = `{"id":"cmd-1","data":{"nombre":"Acme SAS","email":"info@acme.co","identificacion":"900123456-7"}}`

func cmdJSON(id, nombre, ident string) string {
	return fmt.Sprintf(`{"id":%q,"data":{"nombre":%q,"email":"info@example.co","identificacion":%q}}`, id, nombre, ident)
}

func TestNew(t *testing.T) {
	t.Parallel()
	cr := newFakeCreator()
	ok := Config{Brokers: []string{"b:9092"}, GroupID: "g"}
	c, err := New(ok, cr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Topic != companiacmd.DefaultTopic || c.cfg.DeadLetterTopic != companiacmd.DefaultTopic+".dlq" {
		t.Errorf("topics = %q, %q", c.cfg.Topic, c.cfg.DeadLetterTopic)
	}
	if c.scope != "kafka:"+companiacmd.DefaultTopic {
		t.Errorf("scope = %q", c.scope)
	}
	if c.cfg.MinBackoff != DefaultMinBackoff || c.cfg.MaxBackoff != DefaultMaxBackoff ||
		c.cfg.HandleTimeout != DefaultHandleTimeout || c.cfg.MaxWait != DefaultMaxWait ||
		c.cfg.CloseTimeout != DefaultCloseTimeout || c.cfg.MaxFetchBytes != DefaultMaxFetchBytes ||
		c.cfg.MaxCommandBytes != DefaultMaxCommandBytes {
		t.Errorf("defaults not applied: %+v", c.cfg)
	}
	bad := map[string]struct {
		cfg Config
		cr  Creator
	}{
		"no creator":      {ok, nil},
		"no brokers":      {Config{GroupID: "g"}, cr},
		"no group":        {Config{Brokers: ok.Brokers}, cr},
		"dlq is topic":    {Config{Brokers: ok.Brokers, GroupID: "g", Topic: "t", DeadLetterTopic: "t"}, cr},
		"backoff min>max": {Config{Brokers: ok.Brokers, GroupID: "g", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, cr},
		"negative":        {Config{Brokers: ok.Brokers, GroupID: "g", HandleTimeout: -1}, cr},
		"negative fetch":  {Config{Brokers: ok.Brokers, GroupID: "g", MaxFetchBytes: -1}, cr},
		"negative value":  {Config{Brokers: ok.Brokers, GroupID: "g", MaxCommandBytes: -1}, cr},
	}
	for name, tc := range bad {
		if _, err := New(tc.cfg, tc.cr, nil); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err       error
		reason    string
		permanent bool
	}{
		{fmt.Errorf("x: %w", compania.ErrInvalid), deadletter.ReasonInvalid, true},
		{fmt.Errorf("crear compania: %w", compania.ErrDuplicate), deadletter.ReasonConflict, true},
		{fmt.Errorf("crear compania: %w", compania.ErrIDTaken), deadletter.ReasonConflict, true},
		{command.ErrIdempotencyMismatch, deadletter.ReasonConflict, true},
		{compania.ErrNotFound, deadletter.ReasonConflict, true},
		{compania.ErrVersionMismatch, deadletter.ReasonConflict, true},
		{fmt.Errorf("crear compania: %w", command.ErrIdempotencyKeyTaken), "", false},
		{compania.ErrConcurrentUpdate, "", false},
		{apperr.New(apperr.Unavailable, "db", "database down"), "", false},
		{errors.New("dial tcp 127.0.0.1:5432: connection refused"), "", false},
		{context.DeadlineExceeded, "", false},
	} {
		reason, permanent := classify(tc.err)
		if reason != tc.reason || permanent != tc.permanent {
			t.Errorf("classify(%v) = %q, %v; want %q, %v", tc.err, reason, permanent, tc.reason, tc.permanent)
		}
	}
}

func header(hs []kafka.Header, key string) (string, int) {
	var v string
	n := 0
	for _, h := range hs {
		if h.Key == key {
			v = string(h.Value)
			n++
		}
	}
	return v, n
}

func TestDeadLetterMessage(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	m := kafka.Message{Topic: "t", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte("v"),
		Headers: []kafka.Header{{Key: "traceparent", Value: []byte("tp")},
			{Key: deadletter.HeaderReason, Value: []byte("old")}}}
	c, err := New(Config{Brokers: []string{"fake:9092"}, GroupID: "grp", Topic: "t"}, newFakeCreator(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.group.Copy(groupconsumer.Letter{Message: m, Reason: deadletter.ReasonInvalid, Err: errors.New("boom")}, now)
	if d.Topic != "" || string(d.Key) != "k" || string(d.Value) != "v" {
		t.Errorf("message = %+v", d)
	}
	want := map[string]string{
		"traceparent":              "tp",
		deadletter.HeaderReason:    deadletter.ReasonInvalid,
		deadletter.HeaderError:     "boom",
		deadletter.HeaderTopic:     "t",
		deadletter.HeaderPartition: "3",
		deadletter.HeaderOffset:    "42",
		deadletter.HeaderTime:      "2026-01-02T02:04:05.000000006Z",
		deadletter.HeaderConsumer:  "grp",
	}
	for k, v := range want {
		if got, n := header(d.Headers, k); got != v || n != 1 {
			t.Errorf("header %s = %q (%d times), want %q once", k, got, n, v)
		}
	}
	if len(d.Headers) != len(want) {
		t.Errorf("headers = %v", d.Headers)
	}
}

func TestRequestHash(t *testing.T) {
	t.Parallel()
	d := companiacmd.CrearCompaniaData{Nombre: "A", Email: "a@b.co", Identificacion: "1"}
	want := sha256.Sum256([]byte(`{"nombre":"A","email":"a@b.co","identificacion":"1"}`))
	if got := requestHash(d); !bytes.Equal(got, want[:]) {
		t.Errorf("hash = %x, want %x", got, want)
	}
	d2 := d
	d2.Email = "x@b.co"
	if bytes.Equal(requestHash(d), requestHash(d2)) {
		t.Error("different data, same hash")
	}
}

func TestRunProcessesAndCommits(t *testing.T) {
	t.Parallel()
	l, w, cr := newFakeLog("cmds"), &fakeDLQ{}, newFakeCreator()
	c, _ := fakeConsumer(t, l, w, cr)
	l.produce(0, "k", validCmd, kafka.Header{Key: "traceparent", Value: []byte(validTraceparent)})
	stop := start(t, c)
	eventually(t, "commit", func() bool { return l.committedOffset(0) == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if len(cr.calls) != 1 || cr.created != 1 {
		t.Fatalf("calls = %d, created = %d", len(cr.calls), cr.created)
	}
	got := cr.calls[0]
	wantHash := requestHash(companiacmd.CrearCompaniaData{Nombre: "Acme SAS", Email: "info@acme.co", Identificacion: "900123456-7"})
	if got.ID != "" || got.Datos != (compania.Datos{Nombre: "Acme SAS", Email: "info@acme.co", Identificacion: "900123456-7"}) ||
		got.Idempotency == nil || got.Idempotency.Scope != "kafka:cmds" || got.Idempotency.Key != "cmd-1" ||
		!bytes.Equal(got.Idempotency.RequestHash, wantHash) || got.Traceparent != validTraceparent {
		t.Errorf("command = %+v (idempotency %+v)", got, got.Idempotency)
	}
	if len(w.snapshot()) != 0 {
		t.Errorf("dead letters: %v", w.snapshot())
	}
}

func TestRunRedeliveredCommandCreatesOnce(t *testing.T) {
	t.Parallel()
	l, w, cr := newFakeLog("cmds"), &fakeDLQ{}, newFakeCreator()
	c, _ := fakeConsumer(t, l, w, cr)
	l.produce(0, "k", validCmd)
	l.produce(0, "k", validCmd)
	start(t, c)
	eventually(t, "both committed", func() bool { return l.committedOffset(0) == 2 })
	if calls, created := cr.counts(); calls != 2 || created != 1 {
		t.Errorf("calls = %d, created = %d; want 2, 1", calls, created)
	}
}

func TestRunDeadLettersPermanentFailures(t *testing.T) {
	t.Parallel()
	l, w, cr := newFakeLog("cmds"), &fakeDLQ{}, newFakeCreator()
	c, logs := fakeConsumer(t, l, w, cr)
	var hookMu sync.Mutex
	var hooked []string
	c.cfg.OnDeadLetter = func(reason string) {
		hookMu.Lock()
		defer hookMu.Unlock()
		hooked = append(hooked, reason)
	}
	cases := []struct {
		value, reason, errText string
	}{
		{`{"id":`, deadletter.ReasonMalformed, "malformed command"},
		{`{"id":"x","data":{},"extra":1}`, deadletter.ReasonMalformed, `unknown field "extra"`},
		{`{"data":{"nombre":"A"}}`, deadletter.ReasonMalformed, "id is required"},
		{`{"id":"bad","data":{"nombre":"","email":"nope","identificacion":"!!"}}`, deadletter.ReasonInvalid, "nombre"},
		{cmdJSON("dup", "Acme SAS", "900123456-7"), deadletter.ReasonConflict, "compania"},
		{`{"id":"cmd-1","data":{"nombre":"Otra","email":"info@acme.co","identificacion":"1"}}`, deadletter.ReasonConflict, "Idempotency-Key"},
		// Over DefaultMaxCommandBytes: dead-lettered unparsed, though well-formed.
		{cmdJSON("big", strings.Repeat("a", DefaultMaxCommandBytes), "77"), deadletter.ReasonMalformed,
			fmt.Sprintf("exceeds the limit of %d bytes", DefaultMaxCommandBytes)},
	}
	l.produce(0, "k0", validCmd) // offset 0: creates Acme
	for _, tc := range cases {
		l.produce(0, "kbad", tc.value, kafka.Header{Key: "h", Value: []byte("orig")})
	}
	l.produce(0, "klast", cmdJSON("last", "Ultima", "55"))
	start(t, c)
	eventually(t, "everything committed", func() bool { return l.committedOffset(0) == int64(len(cases)+2) })

	dl := w.snapshot()
	if len(dl) != len(cases) {
		t.Fatalf("%d dead letters, want %d", len(dl), len(cases))
	}
	for i, tc := range cases {
		m := dl[i]
		if string(m.Value) != tc.value || string(m.Key) != "kbad" {
			t.Errorf("case %d: dead letter %q/%q", i, m.Key, m.Value)
		}
		reason, _ := header(m.Headers, deadletter.HeaderReason)
		errText, _ := header(m.Headers, deadletter.HeaderError)
		off, _ := header(m.Headers, deadletter.HeaderOffset)
		topic, _ := header(m.Headers, deadletter.HeaderTopic)
		part, _ := header(m.Headers, deadletter.HeaderPartition)
		orig, _ := header(m.Headers, "h")
		if reason != tc.reason || !strings.Contains(errText, tc.errText) || off != fmt.Sprint(i+1) ||
			topic != "cmds" || part != "0" || orig != "orig" {
			t.Errorf("case %d (%s): reason %q error %q offset %s topic %s partition %s h %q",
				i, tc.value, reason, errText, off, topic, part, orig)
		}
	}
	// All fields invalid: the error text names each one.
	invalid, _ := header(dl[3].Headers, deadletter.HeaderError)
	for _, f := range []string{"nombre", "email", "identificacion"} {
		if !strings.Contains(invalid, f) {
			t.Errorf("invalid error %q does not name %s", invalid, f)
		}
	}
	if _, created := cr.counts(); created != 2 {
		t.Errorf("created = %d, want 2 (first and last)", created)
	}
	lines := logs.messages("command dead-lettered")
	if len(lines) != len(cases) {
		t.Fatalf("%d dead-letter log lines, want %d", len(lines), len(cases))
	}
	for i, tc := range cases {
		if lines[i]["reason"] != tc.reason {
			t.Errorf("log line %d reason = %q, want %q", i, lines[i]["reason"], tc.reason)
		}
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	var want []string
	for _, tc := range cases {
		want = append(want, tc.reason)
	}
	if !slices.Equal(hooked, want) {
		t.Errorf("OnDeadLetter reasons = %v, want %v", hooked, want)
	}
}

func TestRunRetriesTransientFailuresWithoutCommitting(t *testing.T) {
	t.Parallel()
	l, w, cr := newFakeLog("cmds"), &fakeDLQ{}, newFakeCreator(
		errors.New("dial tcp: connection refused"),
		apperr.New(apperr.Unavailable, "db_down", "database unavailable"),
		fmt.Errorf("crear compania: %w", command.ErrIdempotencyKeyTaken),
	)
	var committedDuringFailures []int
	cr.onHandle = func(command.CrearCompania) {
		committedDuringFailures = append(committedDuringFailures, l.commitCount())
	}
	c, logs := fakeConsumer(t, l, w, cr)
	l.produce(0, "k", validCmd)
	l.produce(0, "k2", cmdJSON("cmd-2", "Beta", "2"))
	stop := start(t, c)
	eventually(t, "both committed", func() bool { return l.committedOffset(0) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if calls, created := cr.counts(); calls != 5 || created != 2 {
		t.Errorf("calls = %d, created = %d; want 5, 2", calls, created)
	}
	// No commit while the first message kept failing.
	if want := []int{0, 0, 0, 0, 1}; fmt.Sprint(committedDuringFailures) != fmt.Sprint(want) {
		t.Errorf("commits seen at each call = %v, want %v", committedDuringFailures, want)
	}
	if len(w.snapshot()) != 0 {
		t.Error("a transient failure was dead-lettered")
	}
	if n := len(logs.messages("command failed; retrying")); n != 3 {
		t.Errorf("%d retry log lines, want 3", n)
	}
}

func TestRunStopsDuringRetriesWithoutCommitting(t *testing.T) {
	t.Parallel()
	l, w, cr := newFakeLog("cmds"), &fakeDLQ{}, newFakeCreator()
	cr.failAll = errors.New("database down")
	c, _ := fakeConsumer(t, l, w, cr)
	l.produce(0, "k", validCmd)
	stop := start(t, c)
	eventually(t, "a few attempts", func() bool { calls, _ := cr.counts(); return calls >= 3 })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil on cancel", err)
	}
	if n := l.commitCount(); n != 0 {
		t.Errorf("%d commits", n)
	}
	if len(w.snapshot()) != 0 {
		t.Error("dead-lettered")
	}
}

func TestRunStoppedAfterHandleBeforeCommitReplays(t *testing.T) {
	t.Parallel()
	l, w, cr := newFakeLog("cmds"), &fakeDLQ{}, newFakeCreator()
	c, _ := fakeConsumer(t, l, w, cr)
	l.produce(0, "k", validCmd)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Shutdown begins while Handle runs; the fake ignores ctx and commits its
	// "transaction", so Run sees a success after cancellation: a crash between
	// the transaction and the offset commit.
	cr.onHandle = func(command.CrearCompania) { cancel() }
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := l.commitCount(); n != 0 {
		t.Fatalf("committed after shutdown began (%d commits)", n)
	}

	cr.onHandle = nil
	start(t, c) // restart: the message is redelivered
	eventually(t, "commit", func() bool { return l.committedOffset(0) == 1 })
	if calls, created := cr.counts(); calls != 2 || created != 1 {
		t.Errorf("calls = %d, created = %d; want 2 (one replay), 1", calls, created)
	}
}

func TestRunBoundsCommandSize(t *testing.T) {
	t.Parallel()
	l, w, cr := newFakeLog("cmds"), &fakeDLQ{}, newFakeCreator()
	c, _ := fakeConsumer(t, l, w, cr)
	atLimit := cmdJSON("edge", "Borde SAS", "12")
	c.cfg.MaxCommandBytes = len(atLimit)
	l.produce(0, "k0", atLimit)     // exactly at the limit: parsed and created
	l.produce(0, "k1", atLimit+" ") // one byte over (valid JSON): dead-lettered unparsed
	start(t, c)
	eventually(t, "both committed", func() bool { return l.committedOffset(0) == 2 })
	if calls, created := cr.counts(); calls != 1 || created != 1 {
		t.Errorf("calls = %d, created = %d; want 1, 1", calls, created)
	}
	dl := w.snapshot()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	reason, _ := header(dl[0].Headers, deadletter.HeaderReason)
	errText, _ := header(dl[0].Headers, deadletter.HeaderError)
	want := fmt.Sprintf("malformed command: value of %d bytes exceeds the limit of %d bytes", len(atLimit)+1, len(atLimit))
	if reason != deadletter.ReasonMalformed || errText != want || string(dl[0].Value) != atLimit+" " {
		t.Errorf("dead letter reason %q error %q value %q; want %q, %q", reason, errText, dl[0].Value, deadletter.ReasonMalformed, want)
	}
}

const validTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// With LogTraceContext, the lines about a command carry the trace of its
// traceparent header; without it, or without a header, they carry none.
func TestRunLogsTheCommandsTrace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		on          bool
		traceparent string
		wantTrace   string
	}{
		{"on, with traceparent", true, validTraceparent, validTraceparent[3:35]},
		{"on, without traceparent", true, "", ""},
		{"off", false, validTraceparent, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, w := newFakeLog("cmds"), &fakeDLQ{}
			cr := newFakeCreator(errors.New("dial tcp: connection refused"), apperr.New(apperr.Invalid, "bad", "bad"))
			recs := &logRecords{}
			c, err := New(Config{Brokers: []string{"fake:9092"}, GroupID: "g", Topic: l.topic, LogTraceContext: tc.on,
				MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, cr, slog.New(tracelogs.TraceHandler(recs)))
			if err != nil {
				t.Fatal(err)
			}
			c.run = func(ctx context.Context, h groupconsumer.Handler) error {
				return l.run(ctx, h, fakeDeadLetterer{c, w})
			}
			var headers []kafka.Header
			if tc.traceparent != "" {
				headers = append(headers, kafka.Header{Key: "traceparent", Value: []byte(tc.traceparent)})
			}
			l.produce(0, "k", validCmd, headers...)
			start(t, c)
			eventually(t, "commit", func() bool { return l.committedOffset(0) == 1 })
			for _, msg := range []string{"command failed; retrying", "command dead-lettered"} {
				lines := recs.messages(msg)
				if len(lines) != 1 {
					t.Fatalf("%d %q lines, want 1", len(lines), msg)
				}
				if got := lines[0][tracelogs.TraceIDKey]; got != tc.wantTrace {
					t.Errorf("%q trace_id = %q, want %q", msg, got, tc.wantTrace)
				}
				if _, has := lines[0][tracelogs.SpanIDKey]; has != (tc.wantTrace != "") {
					t.Errorf("%q line %v: span_id present %v, want %v", msg, lines[0], has, tc.wantTrace != "")
				}
			}
		})
	}
}
