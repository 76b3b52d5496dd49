package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// Consumer groups of the stack (main.go).
const (
	queryGroup   = "chaos-query"
	commandGroup = "chaos-command"
)

// Dead-letter delivery is at least once, like every Kafka consumer that
// produces and then commits: a consumer copies a poison message to the
// DLQ and only then commits its offset. So a message can be dead-lettered
// twice, and only in two ways:
//
//   - a redo: the batch's offsets were not committed in the generation that
//     dead-lettered it (the member was killed or stopped, or the group
//     rebalanced), and the next owner of the partition — in a later
//     generation — processes it again. The copies have different dlq_time.
//   - a re-send: the write of the DLQ record failed from the producer's
//     point of view (the broker died after appending it) and the same
//     record, with the same dlq_time, was written again.
//
// The checks allow a copy only when its cause is seen. A redo of an event
// needs another processing attempt: each reader logs "poison message"
// before it dead-letters one, and the copies with distinct dlq_time of a
// message may not outnumber the (reader instance, generation) pairs that
// logged it — which also proves that no member processes a message twice
// within one generation (it drops offsets it already processed). Such
// attempts overlap in time when a member is a zombie: after a broker
// restart a member still in its old generation keeps processing until its
// heartbeat fails, while a new generation already owns the partition. A
// redo of a command needs a writer or broker fault around the copies (the
// command consumer does not log its generations). A re-send needs a broker
// fault around it or a logged dead-letter write retry. Without reader,
// writer or broker faults each bad message is dead-lettered exactly once.

// dlqRecord is a record of a dead-letter topic with the effective (last)
// value of each deadletter header, as the companias-dlq tool reads them.
type dlqRecord struct {
	msg                        kafka.Message
	reason, errText, topic, by string
	from                       origin    // original partition and offset; -1 when absent or bad
	at                         time.Time // dlq_time; zero when absent or bad
	repeated                   bool      // a dlq_* header appears more than once
}

func parseDLQ(m kafka.Message) dlqRecord {
	d := dlqRecord{msg: m, from: origin{-1, -1}}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		if strings.HasPrefix(h.Key, "dlq_") {
			d.repeated = d.repeated || seen[h.Key]
			seen[h.Key] = true
		}
		v := string(h.Value)
		switch h.Key {
		case deadletter.HeaderReason:
			d.reason = v
		case deadletter.HeaderError:
			d.errText = v
		case deadletter.HeaderTopic:
			d.topic = v
		case deadletter.HeaderConsumer:
			d.by = v
		case deadletter.HeaderPartition:
			d.from.partition = -1
			if n, err := strconv.Atoi(v); err == nil {
				d.from.partition = n
			}
		case deadletter.HeaderOffset:
			d.from.offset = -1
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.from.offset = n
			}
		case deadletter.HeaderTime:
			d.at = time.Time{}
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				d.at = t
			}
		}
	}
	return d
}

// nonDLQ returns the headers without the dlq_* ones.
func nonDLQ(hs []kafka.Header) []kafka.Header {
	var out []kafka.Header
	for _, h := range hs {
		if !strings.HasPrefix(h.Key, "dlq_") {
			out = append(out, h)
		}
	}
	return out
}

// mismatch describes how d differs from the dead letter of the message
// key/value/headers read from topic by group with reason; "" when it does not.
func (d dlqRecord) mismatch(reason, topic, group string, key, value []byte, headers []kafka.Header) string {
	var w []string
	if d.reason != reason {
		w = append(w, fmt.Sprintf("dlq_reason %q, want %q", d.reason, reason))
	}
	if d.topic != topic {
		w = append(w, fmt.Sprintf("dlq_original_topic %q, want %q", d.topic, topic))
	}
	if d.by != group {
		w = append(w, fmt.Sprintf("dlq_consumer_group %q, want %q", d.by, group))
	}
	if d.errText == "" {
		w = append(w, "no dlq_error")
	}
	if d.at.IsZero() {
		w = append(w, "no valid dlq_time")
	}
	if !bytes.Equal(d.msg.Key, key) {
		w = append(w, fmt.Sprintf("key %q, want %q", d.msg.Key, key))
	}
	if !bytes.Equal(d.msg.Value, value) {
		w = append(w, "value differs from the original")
	}
	if !slices.EqualFunc(nonDLQ(d.msg.Headers), nonDLQ(headers), sameHeader) {
		w = append(w, "original headers not kept")
	}
	return strings.Join(w, "; ")
}

// classifyCopies checks the copies of one dead-lettered message: after
// sorting them by dlq_time, each copy after the first is a re-send (same
// dlq_time), allowed when resendOK(at), or a redo, allowed when
// redoOK(previous, at); redoWhy says what a redo lacks when it is not. It
// returns the allowed re-sends and redos and a description of each copy
// that is not explained.
func classifyCopies(copies []dlqRecord, resendOK func(at time.Time) bool, redoOK func(t1, t2 time.Time) bool,
	redoWhy string) (resends, redos int, unexplained []string) {
	cs := slices.Clone(copies)
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].at.Before(cs[j].at) })
	for i := 1; i < len(cs); i++ {
		prev, cur := cs[i-1].at, cs[i].at
		switch {
		case cur.Equal(prev) && resendOK(cur):
			resends++
		case cur.Equal(prev):
			unexplained = append(unexplained, fmt.Sprintf("copy %d (dlq_time %s) re-sent with no broker fault nor logged dead-letter write retry", i+1, cur.Format(time.RFC3339Nano)))
		case redoOK(prev, cur):
			redos++
		default:
			unexplained = append(unexplained, fmt.Sprintf("copy %d (dlq_time %s, previous %s) redone %s", i+1, cur.Format(time.RFC3339Nano), prev.Format(time.RFC3339Nano), redoWhy))
		}
	}
	return resends, redos, unexplained
}

// attempt is one reader instance within one consumer-group generation.
type attempt struct {
	reader   string
	instance int
	gen      int
}

func (a attempt) String() string {
	return fmt.Sprintf("%s#%d generation #%d", a.reader, a.instance, a.gen)
}

// poisonAttempts returns, per origin, how often each (reader instance,
// generation) logged that it dead-letters the message there.
func poisonAttempts(readers []*service) map[origin]map[attempt]int {
	out := map[origin]map[attempt]int{}
	for _, sv := range readers {
		for _, m := range sv.logMarks(logPoison) {
			o := origin{m.partition, m.offset}
			if out[o] == nil {
				out[o] = map[attempt]int{}
			}
			out[o][attempt{sv.name, m.instance, m.gen}]++
		}
	}
	return out
}

// anyIn reports whether some t in ts lies in (from, to].
func anyIn(ts []time.Time, from, to time.Time) bool {
	for _, t := range ts {
		if t.After(from) && !t.After(to) {
			return true
		}
	}
	return false
}

// logTimes gathers the times of log message msg over services.
func logTimes(services []*service, msg string) []time.Time {
	var out []time.Time
	for _, sv := range services {
		for _, m := range sv.logMarks(msg) {
			out = append(out, m.at)
		}
	}
	return out
}

// faultsOf returns the recorded faults of the given kinds.
func (r *result) faultsOf(kinds ...string) []faultRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []faultRecord
	for _, f := range r.faults {
		if slices.Contains(kinds, f.kind) {
			out = append(out, f)
		}
	}
	return out
}

// faultNear reports whether one of faults was issued from 5s before to a
// minute after at: a write in flight at "at" (its retries included) ends
// within that window.
func faultNear(faults []faultRecord, at time.Time) bool {
	for _, f := range faults {
		if !f.at.Before(at.Add(-5*time.Second)) && !f.at.After(at.Add(time.Minute)) {
			return true
		}
	}
	return false
}

// faultAround reports whether one of faults can have caused a redo of a
// message dead-lettered at t1 and again at t2: issued before t2, and back
// (or, if never back, still down) later than a minute before t1 — a minute
// covers the session timeout after which the group moves on.
func faultAround(faults []faultRecord, t1, t2 time.Time) bool {
	for _, f := range faults {
		back := f.back
		if back.IsZero() {
			back = t2
		}
		if f.at.Before(t2) && t1.Before(back.Add(time.Minute)) {
			return true
		}
	}
	return false
}

// checkEventDLQ checks that the events DLQ holds exactly the poison that
// must be dead-lettered, each with its reason and headers, and no other
// record; copies only as explained above.
func (s *stack) checkEventDLQ(ctx context.Context, res *result, poisonAt map[origin]*poisonMsg, report func(string, bool, string, ...any)) {
	topic := deadletter.Topic(eventsTopic)
	msgs, n, err := readTopic(ctx, s.broker.addr, topic)
	if err != nil {
		report("event DLQ == poison", false, "read %s: %v", topic, err)
		return
	}
	copies := map[origin][]dlqRecord{}
	var unexpected, wrong []string
	repeated, skipDead := 0, 0
	for _, m := range msgs {
		d := parseDLQ(m)
		if d.repeated {
			repeated++
		}
		p := poisonAt[d.from]
		switch {
		case d.topic != eventsTopic || p == nil || !bytes.Equal(m.Value, p.value):
			unexpected = append(unexpected, fmt.Sprintf("%d/%d: from %s %s, reason %q: %.120q", m.Partition, m.Offset, d.topic, d.from, d.reason, m.Value))
			continue
		case p.reason == "":
			skipDead++
			unexpected = append(unexpected, fmt.Sprintf("%d/%d: poison %s (%s) must be skipped, not dead-lettered (reason %q)", m.Partition, m.Offset, p.id, p.kind, d.reason))
			continue
		}
		if w := d.mismatch(p.reason, eventsTopic, queryGroup, p.key, p.value, p.headers); w != "" {
			wrong = append(wrong, fmt.Sprintf("%d/%d: poison %s (%s): %s", m.Partition, m.Offset, p.id, p.kind, w))
		}
		copies[d.from] = append(copies[d.from], d)
	}
	var missing []string
	expected, skipped := 0, 0
	reasons := map[string]int{}
	for o, p := range poisonAt {
		if p.reason == "" {
			skipped++
			continue
		}
		expected++
		reasons[p.reason]++
		if len(copies[o]) == 0 {
			missing = append(missing, fmt.Sprintf("poison %s (%s) at %s, reason %s", p.id, p.kind, o, p.reason))
		}
	}
	joins := logTimes(s.readers, logJoinedGeneration)
	retries := logTimes(s.readers, logEventDLQRetry)
	broker := res.faultsOf(faultKillBroker)
	resendOK := func(at time.Time) bool {
		return faultNear(broker, at) || anyIn(retries, at.Add(-time.Nanosecond), at.Add(time.Hour))
	}
	attempts := poisonAttempts(s.readers)
	var resends, redos int
	var unexplained []string
	for o, p := range poisonAt {
		for a, k := range attempts[o] {
			if k > 1 {
				unexplained = append(unexplained, fmt.Sprintf("poison %s (%s) at %s: processed %d times by %s", p.id, p.kind, o, k, a))
			}
		}
	}
	for o, cs := range copies {
		budget := len(attempts[o]) - 1 // each redo needs another generation's attempt
		redoOK := func(_, _ time.Time) bool { budget--; return budget >= 0 }
		why := fmt.Sprintf("beyond the %d (reader, generation) attempts logged", len(attempts[o]))
		r, d, bad := classifyCopies(cs, resendOK, redoOK, why)
		resends += r
		redos += d
		for _, b := range bad {
			unexplained = append(unexplained, fmt.Sprintf("poison %s (%s) at %s: %s", poisonAt[o].id, poisonAt[o].kind, o, b))
		}
	}
	for _, l := range [][]string{unexpected, wrong, missing, unexplained} {
		sort.Strings(l)
	}
	readerFaults := len(res.faultsOf(faultKillReader, faultTermReader, faultStopReader))
	report("event DLQ == poison", len(unexpected)+len(wrong)+len(missing)+len(unexplained) == 0,
		"%d records of %d distinct messages; %d poison to dead-letter %v: missing %d%s; unexpected records %d%s; "+
			"wrong reason/headers/content %d%s; %d of a kind to skip, %d of them dead-lettered; "+
			"copies beyond the first %d (%d redone by another reader generation, %d re-sent), unexplained %d%s; "+
			"%d reader and %d broker faults, %d generations joined by readers; %d records repeat a dlq_* header (a replayed dead letter's stale ones first, the reader's last)",
		n, len(copies), expected, reasons, len(missing), first(missing, 5), len(unexpected), first(unexpected, 5),
		len(wrong), first(wrong, 5), skipped, skipDead,
		resends+redos, redos, resends, len(unexplained), first(unexplained, 5),
		readerFaults, len(broker), len(joins), repeated)
}

// checkCommandDLQ checks that the commands DLQ holds exactly the bad
// commands, each with its reason and headers, and no other record; copies
// only as explained above.
func (s *stack) checkCommandDLQ(ctx context.Context, res *result, report func(string, bool, string, ...any)) {
	cmds, _, err := readTopic(ctx, s.broker.addr, commandsTopic)
	if err != nil {
		report("commands DLQ == bad commands", false, "read %s: %v", commandsTopic, err)
		return
	}
	res.mu.Lock()
	retried := maps.Clone(res.badRetried)
	res.mu.Unlock()
	badAt := map[origin]kafka.Message{}
	onTopic := map[string]int{}
	var problems []string
	for _, m := range cmds {
		if _, bad := res.bad[string(m.Value)]; bad {
			badAt[origin{m.Partition, m.Offset}] = m
			onTopic[string(m.Value)]++
		}
	}
	for v := range res.bad {
		switch c := onTopic[v]; {
		case c == 0:
			problems = append(problems, fmt.Sprintf("bad command not on the topic: %.80q", v))
		case c > 1 && !retried[v]:
			problems = append(problems, fmt.Sprintf("bad command on the topic %d times, produced once: %.80q", c, v))
		}
	}
	msgs, n, err := readTopic(ctx, s.broker.addr, commandsDLQ)
	if err != nil {
		report("commands DLQ == bad commands", false, "read %s: %v", commandsDLQ, err)
		return
	}
	copies := map[origin][]dlqRecord{}
	var unexpected, wrong []string
	for _, m := range msgs {
		d := parseDLQ(m)
		orig, ok := badAt[d.from]
		if d.topic != commandsTopic || !ok || !bytes.Equal(m.Value, orig.Value) {
			unexpected = append(unexpected, fmt.Sprintf("%d/%d: from %s %s, reason %q: %.120q", m.Partition, m.Offset, d.topic, d.from, d.reason, m.Value))
			continue
		}
		if w := d.mismatch(res.bad[string(orig.Value)], commandsTopic, commandGroup, orig.Key, orig.Value, orig.Headers); w != "" {
			wrong = append(wrong, fmt.Sprintf("%d/%d (%.60q): %s", m.Partition, m.Offset, m.Value, w))
		}
		copies[d.from] = append(copies[d.from], d)
	}
	var missing []string
	reasons := map[string]int{}
	for o, m := range badAt {
		reasons[res.bad[string(m.Value)]]++
		if len(copies[o]) == 0 {
			missing = append(missing, fmt.Sprintf("%s: %.80q", o, m.Value))
		}
	}
	retries := logTimes(s.writers, logCommandDLQRetry)
	broker := res.faultsOf(faultKillBroker)
	// A frozen writer misses its consumer group's heartbeats: a writer fault too.
	writerOrBroker := res.faultsOf(faultKillWriter, faultKillRelay, faultTermWriter, faultFreezeRelay, faultKillBroker)
	resendOK := func(at time.Time) bool {
		return faultNear(broker, at) || anyIn(retries, at.Add(-time.Nanosecond), at.Add(time.Hour))
	}
	redoOK := func(t1, t2 time.Time) bool { return faultAround(writerOrBroker, t1, t2) }
	var resends, redos int
	var unexplained []string
	for o, cs := range copies {
		r, d, bad := classifyCopies(cs, resendOK, redoOK, "with no writer or broker fault around the copies")
		resends += r
		redos += d
		for _, b := range bad {
			unexplained = append(unexplained, fmt.Sprintf("%s: %s", o, b))
		}
	}
	for _, l := range [][]string{problems, unexpected, wrong, missing, unexplained} {
		sort.Strings(l)
	}
	report("commands DLQ == bad commands", len(problems)+len(unexpected)+len(wrong)+len(missing)+len(unexplained) == 0,
		"%d records of %d distinct messages; %d bad commands sent, %d records of them on the topic %v%s: missing %d%s; "+
			"unexpected records %d%s; wrong reason/headers/content %d%s; copies beyond the first %d (%d redone after a writer or broker fault, %d re-sent), unexplained %d%s",
		n, len(copies), len(res.bad), len(badAt), reasons, first(problems, 5), len(missing), first(missing, 5),
		len(unexpected), first(unexpected, 5), len(wrong), first(wrong, 5),
		resends+redos, redos, resends, len(unexplained), first(unexplained, 5))
}
