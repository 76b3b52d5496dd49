package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// Poison on the events topic: messages that break the readers' contract
// (libs/contracts/companiaevent, services/query/internal/ports/consumer), produced
// during the load at seeded points. Each must be dead-lettered to
// eventsDLQ with its reason, or — an unknown event type of the known major
// version — skipped without being dead-lettered; none may change a view.
// Most are keyed by a real company's id, so they sit on that company's
// partition between its real events and the reader must step over them
// without blocking the company's stream.

// headerPoison names an injected message (not on the "bare" kind, which has
// no headers at all); the value identifies every kind (it holds the id).
const headerPoison = "chaos_poison"

// poisonVersion is far above any real version: a poison event that a reader
// applied by mistake would show as a view version PostgreSQL lacks.
const poisonVersion = 1_000_000

// poisonKind is one way to break the contract.
type poisonKind struct {
	name string
	// reason is the dlq_reason the readers must dead-letter it with; ""
	// means the readers must skip it and not dead-letter it.
	reason string
	// target: keyed by a real company's id (most of the time).
	target bool
	// build turns p, whose headers and value hold a valid CompaniaActualizada
	// event of data d, into the poison.
	build func(p *poisonMsg, d companiaevent.Data, r *rand.Rand)
}

// poisonKinds are the kinds injected, in this order of first use.
var poisonKinds = []poisonKind{
	{"not-json", deadletter.ReasonMalformed, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		p.value = []byte("Veneno " + p.id + ": esto no es JSON {")
	}},
	{"unsupported-major", deadletter.ReasonUnsupportedVersion, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		p.set(companiaevent.HeaderType, companiaevent.TypePrefix+string(companiaevent.CompaniaActualizada)+".v2")
	}},
	{"no-ce-type", deadletter.ReasonMalformed, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		p.del(companiaevent.HeaderType)
	}},
	{"no-ce-id", deadletter.ReasonMalformed, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		p.del(companiaevent.HeaderID)
	}},
	{"bad-specversion", deadletter.ReasonMalformed, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		p.set(companiaevent.HeaderSpecVersion, "0.3")
	}},
	{"subject-mismatch", deadletter.ReasonMalformed, true, func(p *poisonMsg, _ companiaevent.Data, r *rand.Rand) {
		p.set(companiaevent.HeaderSubject, seededUUID(r))
	}},
	{"bad-time", deadletter.ReasonMalformed, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		p.set(companiaevent.HeaderTime, "ayer")
	}},
	{"no-compania-id", deadletter.ReasonMalformed, true, func(p *poisonMsg, d companiaevent.Data, _ *rand.Rand) {
		p.value = mustJSON(map[string]any{"compania": map[string]any{"nombre": d.Compania.Nombre}, "campos": d.Campos})
	}},
	{"schema-invalid", deadletter.ReasonInvalid, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		// An approval whose snapshot is still PENDIENTE.
		p.set(companiaevent.HeaderType, companiaevent.CompaniaAprobada.Type())
	}},
	{"missing-required", deadletter.ReasonInvalid, false, func(p *poisonMsg, d companiaevent.Data, _ *rand.Rand) {
		c := d.Compania // nombre and email left out
		p.value = mustJSON(map[string]any{"compania": map[string]any{
			"id": c.ID, "identificacion": c.Identificacion, "estado": c.Estado, "motivo_rechazo": nil,
			"fecha_creacion": c.FechaCreacion, "fecha_actualizacion": c.FechaActualizacion, "version": c.Version,
		}, "campos": d.Campos})
	}},
	{"replayed-dead-letter", deadletter.ReasonMalformed, true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		// A dead letter of another consumer put back by hand with its dlq_*
		// headers: the reader's own headers must be the ones that count.
		p.value = []byte("Veneno " + p.id + ": reenviado a mano {")
		p.headers = append(p.headers,
			kafka.Header{Key: deadletter.HeaderReason, Value: []byte(deadletter.ReasonConflict)},
			kafka.Header{Key: deadletter.HeaderError, Value: []byte("stale: replayed by hand")},
			kafka.Header{Key: deadletter.HeaderTopic, Value: []byte(commandsTopic)},
			kafka.Header{Key: deadletter.HeaderPartition, Value: []byte("99")},
			kafka.Header{Key: deadletter.HeaderOffset, Value: []byte("99")},
			kafka.Header{Key: deadletter.HeaderTime, Value: []byte("2001-01-01T00:00:00Z")},
			kafka.Header{Key: deadletter.HeaderConsumer, Value: []byte("otro-grupo")})
	}},
	{"command-on-event-topic", deadletter.ReasonMalformed, false, func(p *poisonMsg, d companiaevent.Data, _ *rand.Rand) {
		// A CrearCompania sent to the wrong topic: no headers at all.
		p.headers = nil
		p.value = mustJSON(companiacmd.CrearCompania{ID: "chaos-poison-" + p.id, Data: companiacmd.CrearCompaniaData{
			Nombre: d.Compania.Nombre, Email: d.Compania.Email, Identificacion: d.Compania.Identificacion}})
	}},
	{"unknown-type", "", true, func(p *poisonMsg, _ companiaevent.Data, _ *rand.Rand) {
		// A newer minor version's event type: skipped, not dead-lettered.
		p.set(companiaevent.HeaderType, companiaevent.Name("CompaniaFusionada").Type())
	}},
}

// poisonMsg is one injected message.
type poisonMsg struct {
	id      string // "<seed>-<k>"; its value holds it, so the value identifies it
	kind    string
	reason  string // expected dlq_reason; "" = must not be dead-lettered
	company string // the real company whose key (and partition) it shares, or ""
	key     []byte
	value   []byte
	headers []kafka.Header
	sent    bool // produced (acknowledged)
	retried bool // its produce failed at least once: a second copy on the topic is possible
}

func (p *poisonMsg) set(k, v string) {
	for i, h := range p.headers {
		if h.Key == k {
			p.headers[i].Value = []byte(v)
			return
		}
	}
	p.headers = append(p.headers, kafka.Header{Key: k, Value: []byte(v)})
}

func (p *poisonMsg) del(k string) {
	out := p.headers[:0]
	for _, h := range p.headers {
		if h.Key != k {
			out = append(out, h)
		}
	}
	p.headers = out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// seededUUID returns a version-4-shaped UUID drawn from r.
func seededUUID(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff,
		0x8000|r.Uint32()&0x3fff, r.Uint64()&0xffffffffffff)
}

// buildPoison returns poison k of kind kd for company (a real company's id,
// or "" for a fresh id no company has).
func buildPoison(seed uint64, k int, kd poisonKind, company string, r *rand.Rand, now time.Time) *poisonMsg {
	p := &poisonMsg{id: fmt.Sprintf("%d-%d", seed, k), kind: kd.name, reason: kd.reason, company: company}
	id := company
	if id == "" {
		id = seededUUID(r)
	}
	d := companiaevent.Data{Compania: companiaevent.Compania{
		ID: id, Nombre: "Veneno " + p.id, Email: fmt.Sprintf("veneno%d@chaos.example.com", k),
		Identificacion: "VENENO-" + p.id, Estado: companiaevent.EstadoPendiente,
		FechaCreacion: now, FechaActualizacion: now, Version: poisonVersion + int64(k),
	}, Campos: []string{"nombre"}}
	m, err := companiaevent.Encode(companiaevent.Event{ID: "chaos-poison-" + p.id, Name: companiaevent.CompaniaActualizada, Time: now, Data: d})
	if err != nil {
		panic(err) // a valid event by construction
	}
	p.key, p.value = m.Key, m.Value
	for _, h := range m.Headers {
		p.headers = append(p.headers, kafka.Header{Key: h.Key, Value: h.Value})
	}
	p.headers = append(p.headers, kafka.Header{Key: headerPoison, Value: []byte(p.id)})
	kd.build(p, d, r)
	return p
}

// poisonCount is how many poison messages a run of commands injects: every
// kind at least once, about one per 80 commands.
func poisonCount(commands int) int { return max(len(poisonKinds), commands/80) }

// producePoison produces the poison messages spread over the HTTP load
// (until target commands were sent), recording each in res.poison.
func (s *stack) producePoison(ctx context.Context, res *result, target int64) {
	r := rand.New(rand.NewPCG(s.o.seed, 0x9015))
	n := poisonCount(s.o.commands)
	kinds := make([]poisonKind, n)
	for k := range kinds {
		kinds[k] = poisonKinds[k%len(poisonKinds)]
	}
	r.Shuffle(n, func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	w := &kafka.Writer{Addr: kafka.TCP(s.broker.addr), Topic: eventsTopic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second,
		// One attempt per call: every retry is ours and recorded.
		MaxAttempts: 1, Transport: localTransport()}
	defer w.Close()
	for k, kd := range kinds {
		point := int64(k+1) * target / int64(n+1)
		for res.ops.Load() < point {
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		// Target the company created last, still being worked on: the
		// poison lands between its events. (Which company that is depends
		// on timing; the kinds, points and contents are seeded.)
		company := ""
		if kd.target && r.IntN(4) != 0 {
			company = res.latestCompany()
		}
		p := buildPoison(s.o.seed, k, kd, company, r, time.Now().UTC())
		res.addPoison(p)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			err := w.WriteMessages(ctx, kafka.Message{Key: p.key, Value: p.value, Headers: p.headers})
			if err == nil {
				res.markPoisonSent(p)
				break
			}
			res.markPoisonRetried(p)
			if time.Now().After(deadline) || ctx.Err() != nil {
				s.findings.add("produce poison %s (%s): %v", p.id, p.kind, err)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
