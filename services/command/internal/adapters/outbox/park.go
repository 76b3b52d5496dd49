package outbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxRecordBytes is the default Options.MaxRecordBytes: below Kafka's
// default max.message.bytes (1048588), so that a batch of one such record
// is always accepted.
const DefaultMaxRecordBytes = 1_000_000

// Reasons for parking a row (the park_reason column and the reason given to
// Options.OnParked).
const (
	// ParkTooLarge: the record exceeds Options.MaxRecordBytes, or the broker
	// or kafka-go refused it as too large.
	ParkTooLarge = "too_large"
	// ParkBadHeaders: the row's headers column does not decode.
	ParkBadHeaders = "bad_headers"
	// ParkInvalidRecord: the broker refused the record as invalid
	// (InvalidRecord, InvalidTimestamp).
	ParkInvalidRecord = "invalid_record"
	// ParkUnauthorized: the broker refused the topic to this producer
	// (TopicAuthorizationFailed).
	ParkUnauthorized = "unauthorized"
	// ParkInvalidTopic: the broker refused the topic name (InvalidTopic).
	ParkInvalidTopic = "invalid_topic"
	// ParkOtherPermanent: another refusal that retrying cannot cure
	// (UnsupportedForMessageFormat, PolicyViolation).
	ParkOtherPermanent = "other_permanent"
)

// ParkReasons returns every park reason, for metrics that show each one
// from the start.
func ParkReasons() []string {
	return []string{ParkTooLarge, ParkBadHeaders, ParkInvalidRecord, ParkUnauthorized, ParkInvalidTopic, ParkOtherPermanent}
}

const parkSQL = `UPDATE outbox SET parked_at = now(), park_reason = $2 WHERE id = $1`

// pending is a row ready to publish.
type pending struct {
	row
	msg  kafka.Message
	size int64 // upper bound of kafka-go's size of msg in a batch
}

// publish parks the rows that can never be published, and publishes the
// others in id order, in WriteMessages calls of at most BatchBytes
// (estimated), deleting each call's rows once acknowledged.
//
// Within one such call each partition's records form one kafka-go batch,
// which the broker appends or refuses whole; so when a call fails in part,
// no company has a later event published and an earlier one not. The rows
// of a call that failed only for some of its records:
//   - if a failure is permanent (see classify), the failed rows are
//     published again one at a time in id order: a row refused permanently
//     on its own is parked, and the later rows of its company are left
//     unpublished (the claim now holds them back behind it);
//   - else the relay backs off and claims again (a *publishError).
//
// A row is also parked before any publish when its headers do not decode
// (bad_headers) or its record exceeds MaxRecordBytes (too_large).
//
// If claimAhead, the relay claims its next batch while it produces the last
// call of this one, in r.next: the rows of other companies than this
// batch's, so that none of them can depend on how this batch ends (see
// claimAheadWhile).
func (r *Relay) publish(ctx context.Context, conn *pgx.Conn, rows []row, claimAhead bool) error {
	gctx, cancel := graceful(ctx, r.opts.ShutdownGrace)
	defer cancel()
	parked := map[string]bool{} // keys with a row parked by this call
	ready := make([]pending, 0, len(rows))
	for _, rw := range rows {
		if parked[string(rw.key)] {
			continue
		}
		h, err := decodeHeaders(rw.headers)
		if err != nil {
			if err := r.park(gctx, conn, rw, ParkBadHeaders, int64(len(rw.key)+len(rw.value)+len(rw.headers)), err); err != nil {
				return err
			}
			parked[string(rw.key)] = true
			continue
		}
		p := pending{row: rw, msg: kafka.Message{
			Topic: rw.topic, Key: rw.key, Value: rw.value, Headers: h,
			// kafka-go sends a zero Time as timestamp 0 (1970), which
			// time-based retention would delete at once.
			Time: rw.createdAt,
		}}
		record := recordBytes(p.msg)
		if record > int64(r.opts.MaxRecordBytes) {
			if err := r.park(gctx, conn, rw, ParkTooLarge, record, fmt.Errorf("record of %d bytes exceeds the maximum of %d", record, r.opts.MaxRecordBytes)); err != nil {
				return err
			}
			parked[string(rw.key)] = true
			continue
		}
		p.size = batchBytesBound(p.msg)
		ready = append(ready, p)
	}

	for i := 0; i < len(ready); {
		var call []pending
		var size int64
		for ; i < len(ready); i++ {
			p := ready[i]
			if parked[string(p.key)] {
				continue
			}
			if len(call) > 0 && size+p.size > r.opts.BatchBytes {
				break
			}
			call = append(call, p)
			size += p.size
		}
		if len(call) == 0 {
			return nil
		}
		var ahead func()
		if claimAhead && i == len(ready) {
			ahead = func() { r.claimAhead(ctx, conn, rows) }
		}
		if err := r.publishCall(ctx, gctx, conn, call, parked, ahead); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // shutting down: the rest stays unpublished
		}
	}
	return nil
}

// publishCall publishes call in one WriteMessages call and deletes what was
// acknowledged; on a permanent refusal it isolates the culprits (see
// publish) and adds the keys of the rows it parks to parked. If ahead is
// not nil, it runs while the call is produced.
func (r *Relay) publishCall(ctx, gctx context.Context, conn *pgx.Conn, call []pending, parked map[string]bool, ahead func()) error {
	var err error
	if ahead != nil {
		err = r.writeWhile(gctx, conn, call, ahead)
	} else {
		err = r.write(gctx, r.pub, call)
	}
	if err == nil {
		return r.done(ctx, gctx, conn, call)
	}
	if ctx.Err() != nil {
		return nil // shutting down: the rows stay unpublished
	}
	var ok, failed []pending
	permanent := false
	for i, p := range call {
		e := messageError(err, i, len(call))
		if e == nil {
			ok = append(ok, p)
			continue
		}
		failed = append(failed, p)
		if _, perm := classify(e); perm {
			permanent = true
		}
	}
	if len(ok) > 0 {
		if err := r.done(ctx, gctx, conn, ok); err != nil {
			return err
		}
	}
	if !permanent {
		return &publishError{rows: len(failed), err: err}
	}
	for _, p := range failed {
		if parked[string(p.key)] {
			continue // waits behind its company's parked row
		}
		err := r.write(gctx, r.pub, []pending{p})
		if err == nil {
			if err := r.done(ctx, gctx, conn, []pending{p}); err != nil {
				return err
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		reason, perm := classify(messageError(err, 0, 1))
		if !perm {
			return &publishError{rows: 1, err: err}
		}
		if err := r.park(gctx, conn, p.row, reason, recordBytes(p.msg), err); err != nil {
			return err
		}
		parked[string(p.key)] = true
	}
	return nil
}

// claimAhead claims, into r.next, the batch after rows, leaving out the
// companies of rows, which are being produced. A failed claim leaves r.next
// nil: the relay claims again after this batch, and reports the error then
// if it persists.
//
// Why this keeps a company's order: the rows of a company in flight stay
// for a claim that starts after this batch was deleted (or parked, or given
// up), so they are claimed behind its rows of this batch, as without
// claiming ahead. A company with no row in this batch has nothing in
// flight, and the rows claimed ahead are its earliest unpublished and
// unparked ones, as a claim after this batch would find them: only this
// relay publishes, deletes and parks while it leads, and it parks only rows
// of the batch it publishes. r.next is dropped when the batch fails, when
// Run is cancelled and when the session ends.
func (r *Relay) claimAhead(ctx context.Context, conn *pgx.Conn, rows []row) {
	seen := make(map[string]bool, len(rows))
	busy := make([][]byte, 0, len(rows))
	for _, rw := range rows {
		if !seen[string(rw.key)] {
			seen[string(rw.key)] = true
			busy = append(busy, rw.key)
		}
	}
	next, err := r.claim(ctx, conn, busy)
	if err != nil {
		r.log.Debug("outbox relay could not claim ahead; will claim after the batch", "err", err)
		next = nil
	}
	r.next = next
}

// writeWhile is write through the lease check, with also running on the
// relay goroutine (on conn) while the messages are produced on another.
// The lease is checked and renewed first, as leasedPublisher does, so that
// the produce does not need conn.
func (r *Relay) writeWhile(ctx context.Context, conn *pgx.Conn, call []pending, also func()) error {
	if r.conn == nil {
		return errLeaseLost
	}
	if err := r.renewIfDue(ctx, conn); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- r.write(ctx, r.rawPub, call) }()
	also()
	return <-done
}

// write publishes the messages of call with pub in one WriteMessages call,
// in a producer span if the relay traces.
func (r *Relay) write(ctx context.Context, pub Publisher, call []pending) error {
	msgs := make([]kafka.Message, len(call))
	ids := make([]int64, len(call))
	for i, p := range call {
		msgs[i], ids[i] = p.msg, p.id
	}
	var span trace.Span
	if r.opts.Tracer != nil {
		ctx, span = startPublishSpan(ctx, r.opts.Tracer, msgs, ids)
		defer span.End()
	}
	err := pub.WriteMessages(ctx, msgs...)
	if err != nil && span != nil {
		endWithError(span, err)
	}
	return err
}

// done deletes the rows of call, which Kafka acknowledged, and runs the
// publish hooks.
func (r *Relay) done(ctx, gctx context.Context, conn *pgx.Conn, call []pending) error {
	ids := make([]int64, len(call))
	oldest := call[0].createdAt
	for i, p := range call {
		ids[i] = p.id
		oldest = minTime(oldest, p.createdAt)
	}
	if r.beforeDelete != nil {
		r.beforeDelete(ctx, ids)
	}
	if _, err := r.exec(gctx, conn, deleteSQL, ids); err != nil {
		return fmt.Errorf("delete %d published outbox rows: %w", len(ids), err)
	}
	if r.opts.OnRowPublished != nil {
		for _, p := range call {
			r.opts.OnRowPublished(p.createdAt)
		}
	}
	if r.opts.OnPublished != nil {
		r.opts.OnPublished(len(call), oldest)
	}
	return nil
}

// park marks rw parked for reason, logs it (never its value) and counts it.
func (r *Relay) park(ctx context.Context, conn *pgx.Conn, rw row, reason string, size int64, cause error) error {
	if _, err := r.exec(ctx, conn, parkSQL, rw.id, reason); err != nil {
		return fmt.Errorf("park outbox row %d: %w", rw.id, err)
	}
	r.log.Error("outbox row parked: it is not published, and its company's later events wait behind it until an operator retries or discards it",
		"id", rw.id, "event_id", rw.eventID, "topic", rw.topic, "key", string(rw.key),
		"reason", reason, "size", size, "err", cause)
	if r.opts.OnParked != nil {
		r.opts.OnParked(reason)
	}
	return nil
}

// recordBytes is the size of a record as MaxRecordBytes counts it: key,
// value, and header keys and values.
func recordBytes(m kafka.Message) int64 {
	n := int64(len(m.Key) + len(m.Value))
	for _, h := range m.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// batchBytesBound is an upper bound of the bytes kafka-go counts for m
// against BatchBytes (its Message.totalSize: fixed fields, length prefixes
// and varints).
func batchBytesBound(m kafka.Message) int64 {
	return recordBytes(m) + 10*int64(len(m.Headers)) + 40
}

// messageError returns the error of message i of a WriteMessages call of n
// messages that returned err: its entry if err is a kafka.WriteErrors of
// the call, else err itself (the whole call failed).
func messageError(err error, i, n int) error {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == n {
		return werrs[i]
	}
	return err
}

// classify tells whether err, a publish error of one record, is permanent
// (retrying the same record cannot succeed) and gives the park reason.
// Everything else (broker down, leader changes, timeouts, CorruptMessage,
// which a retransmission may cure) is transient.
func classify(err error) (reason string, permanent bool) {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return ParkTooLarge, true
	}
	var code kafka.Error
	if !errors.As(err, &code) {
		return "", false
	}
	switch code {
	case kafka.MessageSizeTooLarge, kafka.RecordListTooLarge:
		return ParkTooLarge, true
	case kafka.InvalidRecord, kafka.InvalidTimestamp:
		return ParkInvalidRecord, true
	case kafka.TopicAuthorizationFailed:
		return ParkUnauthorized, true
	case kafka.InvalidTopic:
		return ParkInvalidTopic, true
	case kafka.UnsupportedForMessageFormat, kafka.PolicyViolation:
		return ParkOtherPermanent, true
	}
	return "", false
}
