package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// TestPoisonKindsBreakTheContract checks each poison kind against the
// contract's decoder: the dead-letter reason the runner expects is the
// class of error companiaevent.Decode reports (the JSON Schema failures,
// reason invalid, decode and are caught by the reader's schema check).
func TestPoisonKindsBreakTheContract(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	values := map[string]bool{}
	for k, kd := range poisonKinds {
		for _, company := range []string{"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ""} {
			r := rand.New(rand.NewPCG(1, uint64(k)))
			p := buildPoison(42, k, kd, company, r, now)
			t.Run(fmt.Sprintf("%s/company=%v", kd.name, company != ""), func(t *testing.T) {
				if p.reason != kd.reason || p.kind != kd.name || p.company != company {
					t.Fatalf("poison %+v does not carry its kind", p)
				}
				if !strings.Contains(string(p.value), p.id) {
					t.Errorf("value %q does not hold the id %s", p.value, p.id)
				}
				e, err := companiaevent.Decode(contractHeaders(p.headers), p.value)
				switch kd.reason {
				case deadletter.ReasonMalformed:
					if !errors.Is(err, companiaevent.ErrMalformed) {
						t.Errorf("Decode error %v, want ErrMalformed", err)
					}
				case deadletter.ReasonUnsupportedVersion:
					if !errors.Is(err, companiaevent.ErrUnsupportedVersion) {
						t.Errorf("Decode error %v, want ErrUnsupportedVersion", err)
					}
				case "":
					if !errors.Is(err, companiaevent.ErrUnknownEvent) {
						t.Errorf("Decode error %v, want ErrUnknownEvent (skipped)", err)
					}
				case deadletter.ReasonInvalid:
					if err != nil {
						t.Fatalf("Decode: %v (a schema failure must decode)", err)
					}
					c := e.Data.Compania
					schemaBroken := (e.Name == companiaevent.CompaniaAprobada && c.Estado != companiaevent.EstadoAprobada) ||
						c.Nombre == "" || c.Email == ""
					if !schemaBroken {
						t.Errorf("event %s %+v breaks no rule of its schema", e.Name, c)
					}
				default:
					t.Fatalf("unknown reason %q", kd.reason)
				}
				if kd.target && company != "" && string(p.key) != company {
					t.Errorf("key %q, want the company id %s (its partition)", p.key, company)
				}
			})
			if company == "" {
				continue // the same k: the same id
			}
			if values[string(p.value)] {
				t.Errorf("%s: value %q not unique", kd.name, p.value)
			}
			values[string(p.value)] = true
		}
	}
}

func TestSeededUUIDMatchesTheSchemaPattern(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 1000 {
		u := seededUUID(r)
		if len(u) != 36 || strings.Trim(u, "0123456789abcdef-") != "" || u[8] != '-' || u[13] != '-' || u[14] != '4' || u[18] != '-' || u[23] != '-' {
			t.Fatalf("seededUUID() = %q", u)
		}
	}
}

func TestPoisonCountCoversEveryKind(t *testing.T) {
	if n := poisonCount(300); n != len(poisonKinds) {
		t.Errorf("poisonCount(300) = %d, want one of each of %d kinds", n, len(poisonKinds))
	}
	if n := poisonCount(10000); n != 125 {
		t.Errorf("poisonCount(10000) = %d, want 125", n)
	}
}

func hdr(kv ...string) []kafka.Header {
	var out []kafka.Header
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

func TestParseDLQ(t *testing.T) {
	m := kafka.Message{Key: []byte("k"), Value: []byte("v"), Headers: hdr(
		"ce_type", "x",
		deadletter.HeaderReason, "conflict", deadletter.HeaderPartition, "99", deadletter.HeaderTime, "2001-01-01T00:00:00Z",
		deadletter.HeaderReason, "malformed", deadletter.HeaderError, "bad", deadletter.HeaderTopic, "t",
		deadletter.HeaderPartition, "3", deadletter.HeaderOffset, "26", deadletter.HeaderTime, "2026-11-27T09:44:58.4699155Z",
		deadletter.HeaderConsumer, "g")}
	d := parseDLQ(m)
	want := time.Date(2026, 11, 27, 9, 44, 58, 469915500, time.UTC)
	if d.reason != "malformed" || d.errText != "bad" || d.topic != "t" || d.by != "g" || d.from != (origin{3, 26}) || !d.at.Equal(want) || !d.repeated {
		t.Errorf("parseDLQ = %+v, want the last value of each header and repeated", d)
	}
	if got := len(nonDLQ(m.Headers)); got != 1 {
		t.Errorf("nonDLQ kept %d headers, want 1", got)
	}
	bad := parseDLQ(kafka.Message{Headers: hdr(deadletter.HeaderPartition, "x", deadletter.HeaderOffset, "", deadletter.HeaderTime, "ayer")})
	if bad.from != (origin{-1, -1}) || !bad.at.IsZero() || bad.repeated {
		t.Errorf("parseDLQ of bad headers = %+v", bad)
	}
}

func TestDLQMismatch(t *testing.T) {
	orig := hdr("ce_id", "1", "chaos_poison", "p")
	ok := kafka.Message{Key: []byte("k"), Value: []byte("v"), Headers: append(hdr("ce_id", "1", "chaos_poison", "p"),
		hdr(deadletter.HeaderReason, "invalid", deadletter.HeaderError, "e", deadletter.HeaderTopic, "t",
			deadletter.HeaderConsumer, "g", deadletter.HeaderTime, "2026-11-27T09:44:58Z")...)}
	if w := parseDLQ(ok).mismatch("invalid", "t", "g", []byte("k"), []byte("v"), orig); w != "" {
		t.Errorf("mismatch of a matching record = %q", w)
	}
	w := parseDLQ(kafka.Message{Key: []byte("x"), Value: []byte("y"), Headers: hdr("ce_id", "2")}).
		mismatch("invalid", "t", "g", []byte("k"), []byte("v"), orig)
	for _, part := range []string{"dlq_reason", "dlq_original_topic", "dlq_consumer_group", "no dlq_error", "no valid dlq_time", "key", "value", "original headers"} {
		if !strings.Contains(w, part) {
			t.Errorf("mismatch = %q, lacks %q", w, part)
		}
	}
}

func TestClassifyCopies(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ds ...int) []dlqRecord {
		var out []dlqRecord
		for _, d := range ds {
			out = append(out, dlqRecord{at: t0.Add(time.Duration(d) * time.Millisecond)})
		}
		return out
	}
	yes := func(time.Time) bool { return true }
	no := func(time.Time) bool { return false }
	redoYes := func(_, _ time.Time) bool { return true }
	redoNo := func(_, _ time.Time) bool { return false }
	for _, tc := range []struct {
		name            string
		copies          []dlqRecord
		resend          func(time.Time) bool
		redo            func(_, _ time.Time) bool
		resends, redos  int
		unexplainedWant int
	}{
		{"one copy", at(5), no, redoNo, 0, 0, 0},
		{"re-send allowed", at(5, 5), yes, redoNo, 1, 0, 0},
		{"re-send not allowed", at(5, 5), no, redoYes, 0, 0, 1},
		{"redo allowed, unsorted", at(9, 5), no, redoYes, 0, 1, 0},
		{"redo not allowed", at(5, 9), yes, redoNo, 0, 0, 1},
		{"redo and re-send", at(9, 5, 9), yes, redoYes, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, d, bad := classifyCopies(tc.copies, tc.resend, tc.redo, "why")
			if r != tc.resends || d != tc.redos || len(bad) != tc.unexplainedWant {
				t.Errorf("classifyCopies = %d re-sends, %d redos, unexplained %q; want %d, %d, %d", r, d, bad, tc.resends, tc.redos, tc.unexplainedWant)
			}
		})
	}
	// The redo budget of the event DLQ: two attempts allow one redo.
	budget := 1
	_, d, bad := classifyCopies(at(1, 2, 3), no, func(_, _ time.Time) bool { budget--; return budget >= 0 }, "beyond the attempts")
	if d != 1 || len(bad) != 1 || !strings.Contains(bad[0], "beyond the attempts") {
		t.Errorf("budgeted classifyCopies = %d redos, %q", d, bad)
	}
}

func TestFaultWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := []faultRecord{{kind: faultKillBroker, at: t0, back: t0.Add(time.Second)}}
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{{-time.Minute - time.Second, false}, {-time.Minute, true}, {0, true}, {5 * time.Second, true}, {6 * time.Second, false}} {
		if got := faultNear(f, t0.Add(tc.at)); got != tc.want {
			t.Errorf("faultNear(fault at t0, t0%+v) = %v, want %v", tc.at, got, tc.want)
		}
	}
	if !faultAround(f, t0.Add(-time.Second), t0.Add(time.Second)) {
		t.Error("faultAround: a fault between the copies does not explain them")
	}
	if !faultAround(f, t0.Add(30*time.Second), t0.Add(40*time.Second)) {
		t.Error("faultAround: copies within a minute of the restart are not explained")
	}
	if faultAround(f, t0.Add(2*time.Minute), t0.Add(3*time.Minute)) {
		t.Error("faultAround: copies long after the restart are explained")
	}
	if faultAround(f, t0.Add(-2*time.Second), t0.Add(-time.Second)) {
		t.Error("faultAround: copies before the fault are explained")
	}
	if !anyIn([]time.Time{t0}, t0.Add(-1), t0) || anyIn([]time.Time{t0}, t0, t0.Add(1)) {
		t.Error("anyIn is not (from, to]")
	}
}

func TestWatchedLine(t *testing.T) {
	m, ok := watchedLine(`{"time":"2026-11-27T09:44:58.31458219Z","level":"WARN","msg":"poison message","partition":3,"offset":25,"reason":"malformed"}`)
	if !ok || m.msg != logPoison || m.partition != 3 || m.offset != 25 || m.at.Nanosecond() != 314582190 {
		t.Errorf("watchedLine(poison) = %+v, %v", m, ok)
	}
	m, ok = watchedLine(`{"time":"2026-11-27T09:44:58.292814981Z","level":"INFO","msg":"joined generation","generation":4,"partitions":6}`)
	if !ok || m.msg != logJoinedGeneration || m.partition != -1 || m.offset != -1 {
		t.Errorf("watchedLine(joined) = %+v, %v", m, ok)
	}
	for _, l := range []string{
		`READY 127.0.0.1:1`,
		`{"time":"2026-11-27T09:44:58Z","msg":"write views recovered"}`,
		`{"time":"2026-11-27T09:44:58Z","msg":"kafka-go: says \"msg\":\"poison message\" in text"}`,
		`{"msg":"poison message"`,
	} {
		if m, ok := watchedLine(l); ok {
			t.Errorf("watchedLine(%s) = %+v, want not watched", l, m)
		}
	}
}

// topicFixture is one company at version 2 with its two events on the
// topic and in the event log.
func topicFixture(t *testing.T) (map[string]row, map[string]logEvent, []kafka.Message, *result) {
	t.Helper()
	const id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := companiaevent.Compania{ID: id, Nombre: "A", Email: "a@b.co", Identificacion: "X-1", Estado: "PENDIENTE",
		FechaCreacion: t0, FechaActualizacion: t0, Version: 1}
	c2 := c
	c2.Nombre, c2.Version, c2.FechaActualizacion = "B", 2, t0.Add(time.Second)
	rows := map[string]row{id: rowOf(c2)}
	evLog := map[string]logEvent{}
	var msgs []kafka.Message
	for i, e := range []companiaevent.Event{
		{ID: "e1", Name: companiaevent.CompaniaCreada, Time: t0, Data: companiaevent.Data{Compania: c}},
		{ID: "e2", Name: companiaevent.CompaniaActualizada, Time: t0, Data: companiaevent.Data{Compania: c2, Campos: []string{"nombre"}}},
	} {
		m, err := companiaevent.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		evLog[e.ID] = logEvent{id: e.ID, company: id, name: string(e.Name), version: e.Data.Compania.Version, data: e.Data}
		km := kafka.Message{Partition: 2, Offset: int64(i * 2), Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			km.Headers = append(km.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		msgs = append(msgs, km)
	}
	p := buildPoison(1, 0, poisonKinds[0], id, rand.New(rand.NewPCG(1, 1)), t0)
	p.sent = true
	msgs = append(msgs, kafka.Message{Partition: 2, Offset: 1, Key: p.key, Value: p.value, Headers: p.headers})
	res := &result{poison: []*poisonMsg{p}, rejected: []rejection{{"PATCH a RECHAZADA", "nombre", "Z"}}}
	return rows, evLog, msgs, res
}

func runCheckTopic(rows map[string]row, evLog map[string]logEvent, msgs []kafka.Message, res *result) (map[origin]*poisonMsg, map[string]string) {
	failed := map[string]string{}
	at := checkTopic(rows, evLog, msgs, res, func(name string, ok bool, format string, args ...any) {
		if !ok {
			failed[name] = fmt.Sprintf(format, args...)
		}
	})
	return at, failed
}

func TestCheckTopic(t *testing.T) {
	rows, evLog, msgs, res := topicFixture(t)
	at, failed := runCheckTopic(rows, evLog, msgs, res)
	if len(failed) > 0 {
		t.Fatalf("a consistent topic fails: %v", failed)
	}
	if p := at[origin{2, 1}]; p == nil || p.kind != poisonKinds[0].name || len(at) != 1 {
		t.Fatalf("poison located at %v", at)
	}

	for _, tc := range []struct {
		name  string
		check string
		want  string
		edit  func(rows map[string]row, evLog map[string]logEvent, msgs *[]kafka.Message, res *result)
	}{
		{"a committed event missing", "event topic == committed", "not on the topic", func(_ map[string]row, _ map[string]logEvent, msgs *[]kafka.Message, _ *result) {
			*msgs = (*msgs)[:1]
		}},
		{"versions out of order", "event topic == committed", "before v1", func(_ map[string]row, _ map[string]logEvent, msgs *[]kafka.Message, _ *result) {
			(*msgs)[0].Offset = 9
		}},
		{"an event outside the log", "no rolled-back event", "not in compania_eventos", func(_ map[string]row, evLog map[string]logEvent, _ *[]kafka.Message, _ *result) {
			delete(evLog, "e2")
		}},
		{"an event beyond the row's version", "no rolled-back event", "PostgreSQL has v1", func(rows map[string]row, _ map[string]logEvent, _ *[]kafka.Message, _ *result) {
			for id, r := range rows {
				r.Version = 1
				rows[id] = r
			}
		}},
		{"an event with a refused value", "no rolled-back event", "of a refused PATCH a RECHAZADA", func(_ map[string]row, _ map[string]logEvent, _ *[]kafka.Message, res *result) {
			res.rejected = append(res.rejected, rejection{"PATCH a RECHAZADA", "nombre", "B"})
		}},
		{"an event differing from its log row", "event topic == committed", "differs from compania_eventos", func(_ map[string]row, evLog map[string]logEvent, _ *[]kafka.Message, _ *result) {
			l := evLog["e2"]
			l.data.Compania.Email = "otro@b.co"
			evLog["e2"] = l
		}},
		{"poison never on the topic", "poison on the event topic", "produced, not on the topic", func(_ map[string]row, _ map[string]logEvent, msgs *[]kafka.Message, _ *result) {
			*msgs = (*msgs)[:2]
		}},
		{"poison on another partition", "poison on the event topic", "not on the partition", func(_ map[string]row, _ map[string]logEvent, msgs *[]kafka.Message, _ *result) {
			(*msgs)[2].Partition = 4
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, evLog, msgs, res := topicFixture(t)
			tc.edit(rows, evLog, &msgs, res)
			_, failed := runCheckTopic(rows, evLog, msgs, res)
			if !strings.Contains(failed[tc.check], tc.want) {
				t.Errorf("failed checks %v; want %q to fail with %q", failed, tc.check, tc.want)
			}
		})
	}
}
