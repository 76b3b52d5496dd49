package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// The huge-traceparent command: a valid CrearCompania on the command topic
// whose traceparent header is about a megabyte. The broker accepts it (the
// record fits its max.message.bytes), but the event the writer would make
// of it, carrying that header on, would not: the writer must drop the
// invalid traceparent (it logs a warning) and still run the command. Its
// company then exists in PostgreSQL and in the views, its event is on the
// event topic without that header, it is not dead-lettered, and every other
// company's events keep reaching the topic (checkTopic).

const (
	// hugeTraceparentBytes is the size of the huge command's traceparent.
	hugeTraceparentBytes = 1_048_000
	// brokerMaxMessageBytes is the broker's max.message.bytes (Kafka's and
	// kfake's default): the most bytes of one record batch on a produce.
	brokerMaxMessageBytes = 1_048_588
	// recordBatchOverhead is the header of a v2 record batch.
	recordBatchOverhead = 61
	// hugeCommandIndex numbers the huge command's company like the other
	// Kafka commands' (KCMD-<index>), far above their indexes.
	hugeCommandIndex = 900_000
	// validTraceparentBytes is the length of a version-00 W3C traceparent.
	validTraceparentBytes = 55
	// maxEventHeaderBytes bounds a header value of an event on the topic.
	maxEventHeaderBytes = 4 << 10
)

// hugeCommand is the Kafka command with a huge traceparent header.
type hugeCommand struct {
	msg            kafka.Message
	identificacion string
	sent           bool // acknowledged by the broker; guarded by result.mu
	retried        bool // its produce failed at least once; guarded by result.mu
}

// buildHugeCommand returns the seed's huge-traceparent command: a valid
// traceparent of seeded ids padded to hugeTraceparentBytes.
func buildHugeCommand(seed uint64) *hugeCommand {
	r := rand.New(rand.NewPCG(seed, 0x7ace))
	ident := fmt.Sprintf("KCMD-%06d", hugeCommandIndex)
	b, _ := json.Marshal(companiacmd.CrearCompania{
		ID: fmt.Sprintf("chaos-cmd-%d-traza", seed),
		Data: companiacmd.CrearCompaniaData{
			Nombre:         fmt.Sprintf("Kafka %06d", hugeCommandIndex),
			Email:          fmt.Sprintf("k%06d@chaos.example.com", hugeCommandIndex),
			Identificacion: ident,
		},
	})
	tp := fmt.Sprintf("00-%016x%016x-%016x-01", r.Uint64(), r.Uint64(), r.Uint64())
	tp += strings.Repeat("0", hugeTraceparentBytes-len(tp))
	return &hugeCommand{identificacion: ident, msg: kafka.Message{
		Key:     []byte("traza"),
		Value:   b,
		Headers: []kafka.Header{{Key: companiaevent.HeaderTraceparent, Value: []byte(tp)}},
	}}
}

// batchBytesBound bounds the size of m as the only record of a v2 record
// batch, the figure the broker compares with its max.message.bytes.
func batchBytesBound(m kafka.Message) int {
	const v = binary.MaxVarintLen32
	// length, attributes, timestamp delta (a varlong), offset delta, key
	// length, value length, header count.
	n := v + 1 + binary.MaxVarintLen64 + v + v + len(m.Key) + v + len(m.Value) + v
	for _, h := range m.Headers {
		n += v + len(h.Key) + v + len(h.Value)
	}
	return recordBatchOverhead + n
}

// hugeWriter is the producer of the huge command: batches of one record
// and room for it (kafka-go refuses a message above BatchBytes, 1 MiB by
// default, before the broker sees it).
func hugeWriter(addr string) *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(addr), Topic: commandsTopic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 30 * time.Second,
		BatchSize: 1, BatchBytes: 2 << 20, MaxAttempts: 1, Transport: localTransport()}
}

// checkHugeCommand checks the outcome of the huge-traceparent command: its
// company is in PostgreSQL and served by a reader at its version, its
// events are on the event topic (events) with no traceparent but a valid
// one, no event on the topic carries a header value over
// maxEventHeaderBytes, and the commands DLQ holds no copy of it.
func (s *stack) checkHugeCommand(ctx context.Context, res *result, rows map[string]row, events []kafka.Message,
	report func(string, bool, string, ...any)) {
	h := res.huge
	if h == nil {
		return
	}
	res.mu.Lock()
	sent, retried := h.sent, h.retried
	res.mu.Unlock()
	var problems []string
	if !sent {
		problems = append(problems, "its produce was never acknowledged")
	}
	var company row
	found := false
	for _, r := range rows {
		if r.Identificacion == h.identificacion {
			company, found = r, true
		}
	}
	if !found {
		problems = append(problems, fmt.Sprintf("no company %s in PostgreSQL", h.identificacion))
	}
	var oversized []string
	var tpLens []int
	records := 0
	for _, m := range events {
		mine := found && string(m.Key) == company.ID
		if mine {
			records++
		}
		for _, hd := range m.Headers {
			if len(hd.Value) > maxEventHeaderBytes {
				oversized = append(oversized, fmt.Sprintf("%d/%d (key %.40q): header %s of %d bytes", m.Partition, m.Offset, m.Key, hd.Key, len(hd.Value)))
			}
			if mine && hd.Key == companiaevent.HeaderTraceparent {
				tpLens = append(tpLens, len(hd.Value))
				if len(hd.Value) != validTraceparentBytes {
					problems = append(problems, fmt.Sprintf("its event at %d/%d has a %d-byte traceparent", m.Partition, m.Offset, len(hd.Value)))
				}
			}
		}
	}
	if found && records == 0 {
		problems = append(problems, fmt.Sprintf("no event of company %s on the topic", company.ID))
	}
	sort.Strings(oversized)
	dlq, _, err := readTopic(ctx, s.broker.addr, commandsDLQ)
	dead := 0
	for _, m := range dlq {
		if string(m.Value) == string(h.msg.Value) {
			dead++
		}
	}
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("read %s: %v", commandsDLQ, err))
	case dead > 0:
		problems = append(problems, fmt.Sprintf("dead-lettered %d times", dead))
	}
	view := "not read"
	if found {
		var got row
		url := fmt.Sprintf("http://%s/v1/companias/%s?min_version=%d&wait=2s", s.readers[0].addr, company.ID, company.Version)
		st, err := getJSON(ctx, url, &got)
		view = fmt.Sprintf("status %d v%d", st, got.Version)
		if err != nil || st != http.StatusOK || got.Version != company.Version {
			problems = append(problems, fmt.Sprintf("view: status %d v%d (want v%d), error %v", st, got.Version, company.Version, err))
		}
	}
	report("huge traceparent command", len(problems) == 0 && len(oversized) == 0,
		"a %d-byte traceparent, produced %v (retried %v); company %s found %v v%d; %d of its event records on the topic, traceparent lengths %v; "+
			"view %s; %d commands DLQ records of it; %d event records with a header over %d bytes%s; %d problems%s",
		hugeTraceparentBytes, sent, retried, h.identificacion, found, company.Version, records, tpLens,
		view, dead, len(oversized), maxEventHeaderBytes, first(oversized, 5), len(problems), first(problems, 5))
}
