// Package replay re-produces dead-lettered records to the topic they were
// consumed from, so that the consumer processes them afresh.
//
// A replayed message carries the original key and value and the original
// headers minus every dlq_* header, plus HeaderReplayedFrom naming the
// dead-letter record it came from. The consumers of the companias services
// are idempotent (command id / event version), so replaying a message that
// was in fact processed, or replaying twice, is harmless.
//
// A replay writes only to the topics of an Allow list: a dead letter's
// dlq_original_topic header is data, which anyone able to write to the
// dead-letter topic can set, so it chooses among the allowed topics and
// never names a new one.
package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/tools/dlq/internal/scan"
	"github.com/segmentio/kafka-go"
)

// HeaderReplayedFrom is added to every replayed message; its value is
// "<dlq topic>/<partition>/<offset>".
const HeaderReplayedFrom = "dlq_replayed_from"

// Defaults for Config fields left zero.
const (
	DefaultBatchSize    = 100
	DefaultBatchTimeout = 5 * time.Millisecond
	DefaultWriteTimeout = 30 * time.Second
)

// ErrNoTarget reports a record whose destination is unknown: it has no
// dlq_original_topic header and no override topic was given.
var ErrNoTarget = errors.New("no dlq_original_topic header and no target topic")

// ErrNotAllowed reports a record whose destination is not on the Allow list.
var ErrNotAllowed = errors.New("destination topic not allowed")

// Allow is the set of topics a replay may write to. The zero value allows
// none.
type Allow struct {
	topics []string // sorted, unique, none empty
}

// NewAllow returns the Allow list of topics; empty names are ignored.
func NewAllow(topics ...string) Allow {
	var a Allow
	for _, t := range topics {
		if t != "" && !slices.Contains(a.topics, t) {
			a.topics = append(a.topics, t)
		}
	}
	slices.Sort(a.topics)
	return a
}

// DefaultAllow returns the Allow list of a replay from dlqTopic: the topic
// the dead-letter naming implies (deadletter.SourceTopic), plus extra. A
// dlqTopic not named "<topic>.dlq" implies none.
func DefaultAllow(dlqTopic string, extra ...string) Allow {
	src, _ := deadletter.SourceTopic(dlqTopic)
	return NewAllow(append([]string{src}, extra...)...)
}

// Contains reports whether topic may be written to.
func (a Allow) Contains(topic string) bool {
	_, ok := slices.BinarySearch(a.topics, topic)
	return ok
}

// Topics returns the allowed topics, sorted.
func (a Allow) Topics() []string { return slices.Clone(a.topics) }

// String lists the allowed topics, comma-separated, or "none".
func (a Allow) String() string {
	if len(a.topics) == 0 {
		return "none"
	}
	return strings.Join(a.topics, ", ")
}

// Destination returns the topic r is replayed to: topic, or
// r.OriginalTopic when topic is empty. It fails with ErrNoTarget when
// neither is set, and with ErrNotAllowed, still returning the topic, when
// allow does not contain it.
func Destination(r scan.Record, topic string, allow Allow) (string, error) {
	if topic == "" {
		topic = r.OriginalTopic
	}
	if topic == "" {
		return "", fmt.Errorf("%s: %w", r.Ref(), ErrNoTarget)
	}
	if !allow.Contains(topic) {
		return topic, fmt.Errorf("%s: %w: %q (allowed: %s)", r.Ref(), ErrNotAllowed, topic, allow)
	}
	return topic, nil
}

// Message returns the message that replays r to topic (r.OriginalTopic when
// topic is empty). It fails with ErrNoTarget when neither is set. It checks
// no Allow list: see Destination.
func Message(r scan.Record, topic string) (kafka.Message, error) {
	if topic == "" {
		topic = r.OriginalTopic
	}
	if topic == "" {
		return kafka.Message{}, fmt.Errorf("%s: %w", r.Ref(), ErrNoTarget)
	}
	h := append(r.OriginalHeaders(), kafka.Header{Key: HeaderReplayedFrom, Value: []byte(r.Ref())})
	return kafka.Message{Topic: topic, Key: r.Key, Value: r.Value, Headers: h}, nil
}

// Config configures a Writer.
type Config struct {
	Brokers []string // required
	// Allow lists the topics Write may write to; required.
	Allow Allow
	// Transport carries the writes; nil means a new one that Close releases
	// (kafka.DefaultTransport's metadata cache may predate the topic).
	Transport    *kafka.Transport
	BatchSize    int           // messages per WriteMessages; default DefaultBatchSize
	BatchTimeout time.Duration // kafka-go batching delay; default DefaultBatchTimeout
	WriteTimeout time.Duration // default DefaultWriteTimeout
	// MaxAttempts is how often kafka-go tries a batch; 0 means kafka-go's
	// default (10).
	MaxAttempts int
}

// Writer writes replay messages with RequiredAcks all and the Murmur2
// partitioner (the producers' partitioner, so a key lands on the partition
// its other messages use). Create it with New and release it with Close.
type Writer struct {
	cfg Config
	w   *kafka.Writer
	own bool
}

// New returns a Writer; it does not contact the brokers.
func New(cfg Config) (*Writer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("replay: no brokers")
	}
	if len(cfg.Allow.topics) == 0 {
		return nil, errors.New("replay: no allowed topics")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	own := cfg.Transport == nil
	if own {
		tr, err := (kafkakit.Config{}).Transport() // plaintext: cannot fail
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		cfg.Transport = tr
	}
	return &Writer{
		cfg: cfg,
		own: own,
		w: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Balancer:     &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll,
			BatchSize:    cfg.BatchSize,
			BatchTimeout: cfg.BatchTimeout,
			WriteTimeout: cfg.WriteTimeout,
			MaxAttempts:  cfg.MaxAttempts,
			Transport:    cfg.Transport,
		},
	}, nil
}

// Close flushes and closes the kafka-go writer.
func (w *Writer) Close() error {
	err := w.w.Close()
	if w.own {
		w.cfg.Transport.CloseIdleConnections()
	}
	return err
}

// Failure is one record that was not replayed.
type Failure struct {
	Ref string // "<dlq topic>/<partition>/<offset>"
	Err error
}

// Error is returned by Write when some records were not replayed. Every
// record not in Failed or NotAttempted was written and acknowledged. A
// Failed record may still have reached the broker (kafka-go can deliver a
// message after reporting an error, e.g. on a timeout), which is why replay
// relies on idempotent consumers: re-running the replay is safe.
type Error struct {
	Failed       []Failure
	NotAttempted []string // refs of records after the failing batch
}

// Error lists up to ten failed refs with their causes.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replay: %d message(s) failed", len(e.Failed))
	if len(e.NotAttempted) > 0 {
		fmt.Fprintf(&b, ", %d not attempted", len(e.NotAttempted))
	}
	for i, f := range e.Failed {
		if i == 10 {
			fmt.Fprintf(&b, "; … and %d more", len(e.Failed)-i)
			break
		}
		fmt.Fprintf(&b, "; %s: %v", f.Ref, f.Err)
	}
	return b.String()
}

// Unwrap returns the first failure's cause.
func (e *Error) Unwrap() error {
	if len(e.Failed) == 0 {
		return nil
	}
	return e.Failed[0].Err
}

// Write replays records to topic (each record's OriginalTopic when topic
// is empty), in order, BatchSize at a time. It first builds every message,
// so a record without a destination (ErrNoTarget) or with one not in
// Config.Allow (ErrNotAllowed) fails the call before anything is written;
// callers that skip such records filter them with Destination first. After each batch it calls progress (if not nil) with the number
// acknowledged so far. On a write error it stops after that batch and
// returns the number written and an *Error naming the failed and unattempted
// records; kafka-go writes each message whole, so a message is either
// replayed or listed.
func (w *Writer) Write(ctx context.Context, records []scan.Record, topic string, progress func(written int)) (int, error) {
	msgs := make([]kafka.Message, len(records))
	for i, r := range records {
		dest, err := Destination(r, topic, w.cfg.Allow)
		if err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
		m, err := Message(r, dest)
		if err != nil {
			return 0, fmt.Errorf("replay: %w", err)
		}
		msgs[i] = m
	}
	written := 0
	for start := 0; start < len(msgs); start += w.cfg.BatchSize {
		end := min(start+w.cfg.BatchSize, len(msgs))
		err := w.w.WriteMessages(ctx, msgs[start:end]...)
		if err == nil {
			written += end - start
			if progress != nil {
				progress(written)
			}
			continue
		}
		rerr := &Error{}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == end-start {
			for i, e := range werrs {
				if e != nil {
					rerr.Failed = append(rerr.Failed, Failure{Ref: records[start+i].Ref(), Err: e})
				} else {
					written++
				}
			}
		} else {
			for i := start; i < end; i++ {
				rerr.Failed = append(rerr.Failed, Failure{Ref: records[i].Ref(), Err: err})
			}
		}
		for i := end; i < len(records); i++ {
			rerr.NotAttempted = append(rerr.NotAttempted, records[i].Ref())
		}
		if progress != nil {
			progress(written)
		}
		return written, rerr
	}
	return written, nil
}
