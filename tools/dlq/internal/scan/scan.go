// Package scan reads a dead-letter topic (the contract of
// libs/contracts/deadletter) without joining a consumer group: it captures
// each partition's first offset and high watermark once, fetches every
// partition from the first offset up to that watermark with plain fetch
// requests, and hands each message that passes a Filter to a callback.
//
// Because no group is involved, scanning commits nothing and changes no
// offsets; messages that arrive after the scan started are not visited.
package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/segmentio/kafka-go"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxBytes = 4 << 20
	DefaultMaxWait  = 500 * time.Millisecond
	DefaultTimeout  = 30 * time.Second
)

// Record is one dead-lettered message with its deadletter headers parsed.
// When a header occurs more than once (a message dead-lettered again after a
// replay by a consumer that appends rather than replaces), the last one wins.
type Record struct {
	Topic     string // the dead-letter topic
	Partition int
	Offset    int64
	Timestamp time.Time // the Kafka record timestamp

	Key     []byte
	Value   []byte
	Headers []kafka.Header // every header, in record order

	Reason        string    // dlq_reason ("" if absent)
	Error         string    // dlq_error
	DLQTime       time.Time // dlq_time; zero if absent or unparseable
	OriginalTopic string    // dlq_original_topic
	// OriginalPartition and OriginalOffset are -1 when the header is absent
	// or not a decimal number.
	OriginalPartition int
	OriginalOffset    int64
	ConsumerGroup     string // dlq_consumer_group
}

// Time returns the time a filter compares: DLQTime when known, else the
// record timestamp.
func (r Record) Time() time.Time {
	if !r.DLQTime.IsZero() {
		return r.DLQTime
	}
	return r.Timestamp
}

// Ref returns "<dlq topic>/<partition>/<offset>", the identity of the record.
func (r Record) Ref() string {
	return r.Topic + "/" + strconv.Itoa(r.Partition) + "/" + strconv.FormatInt(r.Offset, 10)
}

// OriginalHeaders returns the headers without the dlq_* ones, in order.
func (r Record) OriginalHeaders() []kafka.Header {
	out := make([]kafka.Header, 0, len(r.Headers))
	for _, h := range r.Headers {
		if !deadletter.IsHeader(h.Key) {
			out = append(out, h)
		}
	}
	return out
}

// NewRecord builds a Record from a message of a dead-letter topic.
func NewRecord(m kafka.Message) Record {
	r := Record{
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Timestamp: m.Time,
		Key: m.Key, Value: m.Value, Headers: m.Headers,
		OriginalPartition: -1, OriginalOffset: -1,
	}
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case deadletter.HeaderReason:
			r.Reason = v
		case deadletter.HeaderError:
			r.Error = v
		case deadletter.HeaderTopic:
			r.OriginalTopic = v
		case deadletter.HeaderPartition:
			r.OriginalPartition = -1
			if n, err := strconv.Atoi(v); err == nil {
				r.OriginalPartition = n
			}
		case deadletter.HeaderOffset:
			r.OriginalOffset = -1
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				r.OriginalOffset = n
			}
		case deadletter.HeaderTime:
			r.DLQTime = time.Time{}
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				r.DLQTime = t
			}
		case deadletter.HeaderConsumer:
			r.ConsumerGroup = v
		}
	}
	return r
}

// Filter selects records; zero fields match everything.
type Filter struct {
	Reason string    // exact dlq_reason
	Since  time.Time // Record.Time() at or after
	Until  time.Time // Record.Time() strictly before
	Key    string    // exact key
	Grep   string    // substring of the key, the value or dlq_error
}

// Match reports whether r passes every set field of f.
func (f Filter) Match(r Record) bool {
	if f.Reason != "" && r.Reason != f.Reason {
		return false
	}
	if !f.Since.IsZero() && r.Time().Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Time().Before(f.Until) {
		return false
	}
	if f.Key != "" && string(r.Key) != f.Key {
		return false
	}
	if f.Grep != "" {
		g := []byte(f.Grep)
		if !bytes.Contains(r.Key, g) && !bytes.Contains(r.Value, g) && !strings.Contains(r.Error, f.Grep) {
			return false
		}
	}
	return true
}

// ParseTime parses a -since/-until value: an RFC 3339 time, or a Go
// duration meaning that long before now ("1h" is one hour ago).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("negative duration %q", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h30m) nor an RFC 3339 time", s)
	}
	return t, nil
}

// Config says which topic to scan and how to reach it.
type Config struct {
	Brokers []string // bootstrap host:port list; required
	Topic   string   // required
	// Transport is used for every request; nil means a new one that Scan
	// closes. Do not share kafka.DefaultTransport: its metadata cache may
	// predate the topic.
	Transport *kafka.Transport
	MaxBytes  int64         // per fetch; default DefaultMaxBytes
	MaxWait   time.Duration // per fetch; default DefaultMaxWait
	Timeout   time.Duration // per request; default DefaultTimeout
}

// Range is the part of one partition a scan visits: [First, End).
type Range struct {
	Partition int
	First     int64 // the log start offset when the scan began
	End       int64 // the high watermark when the scan began
}

// Plan is what a scan will visit, captured before reading.
type Plan struct {
	Topic  string
	Ranges []Range // sorted by partition
}

// Total returns how many offsets the plan spans (an upper bound on the
// number of messages: compaction may leave gaps).
func (p Plan) Total() int64 {
	var n int64
	for _, r := range p.Ranges {
		n += r.End - r.First
	}
	return n
}

// Scanner reads one topic. Create it with New and release it with Close.
type Scanner struct {
	cfg    Config
	client *kafka.Client
	own    bool
}

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("scan: invalid config")

// New checks cfg and returns a Scanner. It does not contact the brokers.
func New(cfg Config) (*Scanner, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("%w: no brokers", ErrConfig)
	}
	if cfg.Topic == "" {
		return nil, fmt.Errorf("%w: no topic", ErrConfig)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	s := &Scanner{cfg: cfg}
	tr := cfg.Transport
	if tr == nil {
		var err error
		if tr, err = (kafkakit.Config{}).Transport(); err != nil { // plaintext: cannot fail
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		s.own = true
	}
	s.cfg.Transport = tr
	s.client = &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.Timeout, Transport: tr}
	return s, nil
}

// Close releases the connections of a Transport that New created.
func (s *Scanner) Close() {
	if s.own {
		s.cfg.Transport.CloseIdleConnections()
	}
}

// Plan reads the topic's partitions and, for each, its first offset and
// high watermark. An unknown topic is an error.
func (s *Scanner) Plan(ctx context.Context) (Plan, error) {
	md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.cfg.Topic}})
	if err != nil {
		return Plan{}, fmt.Errorf("scan %s: metadata: %w", s.cfg.Topic, err)
	}
	var parts []int
	for _, t := range md.Topics {
		if t.Name != s.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return Plan{}, fmt.Errorf("scan %s: metadata: %w", s.cfg.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, p.ID)
		}
	}
	if len(parts) == 0 {
		return Plan{}, fmt.Errorf("scan %s: topic has no partitions (does it exist?)", s.cfg.Topic)
	}
	slices.Sort(parts)
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	lo, err := s.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{s.cfg.Topic: reqs}})
	if err != nil {
		return Plan{}, fmt.Errorf("scan %s: list offsets: %w", s.cfg.Topic, err)
	}
	byPart := make(map[int]kafka.PartitionOffsets)
	for _, po := range lo.Topics[s.cfg.Topic] {
		if po.Error != nil {
			return Plan{}, fmt.Errorf("scan %s: list offsets of partition %d: %w", s.cfg.Topic, po.Partition, po.Error)
		}
		byPart[po.Partition] = po
	}
	plan := Plan{Topic: s.cfg.Topic}
	for _, p := range parts {
		po, ok := byPart[p]
		if !ok {
			return Plan{}, fmt.Errorf("scan %s: no offsets for partition %d", s.cfg.Topic, p)
		}
		plan.Ranges = append(plan.Ranges, Range{Partition: p, First: po.FirstOffset, End: max(po.LastOffset, po.FirstOffset)})
	}
	return plan, nil
}

// Visit is called for each record of a scan. scanned counts the offsets
// visited so far (matching or not). A non-nil error stops the scan and is
// returned by Scan.
type Visit func(r Record, matched bool, scanned int64) error

// Scan reads every range of plan in partition order, offset order within a
// partition, and calls visit for each record. It returns the number of
// records read, or the first error (ctx cancellation included).
func (s *Scanner) Scan(ctx context.Context, plan Plan, f Filter, visit Visit) (int64, error) {
	var scanned int64
	for _, rg := range plan.Ranges {
		off := rg.First
		for off < rg.End {
			recs, next, err := s.fetch(ctx, rg.Partition, off, rg.End)
			if err != nil {
				return scanned, err
			}
			if next <= off { // nothing left below the watermark (a compacted tail)
				break
			}
			for _, r := range recs {
				scanned++
				if err := visit(r, f.Match(r), scanned); err != nil {
					return scanned, err
				}
			}
			off = next
		}
	}
	return scanned, nil
}

// fetch returns the records of partition in [off, end) from one fetch and
// the offset to fetch next (off if the fetch returned nothing new).
func (s *Scanner) fetch(ctx context.Context, partition int, off, end int64) ([]Record, int64, error) {
	res, err := s.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: s.cfg.Topic, Partition: partition, Offset: off,
		MinBytes: 1, MaxBytes: s.cfg.MaxBytes, MaxWait: s.cfg.MaxWait,
	})
	if err != nil {
		return nil, off, fmt.Errorf("scan %s/%d at offset %d: %w", s.cfg.Topic, partition, off, err)
	}
	if res.Error != nil {
		return nil, off, fmt.Errorf("scan %s/%d at offset %d: %w", s.cfg.Topic, partition, off, res.Error)
	}
	var out []Record
	next := off
	for {
		rec, err := res.Records.ReadRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, off, fmt.Errorf("scan %s/%d at offset %d: read record: %w", s.cfg.Topic, partition, off, err)
		}
		if rec.Offset < off || rec.Offset >= end {
			continue
		}
		key, err := kafka.ReadAll(rec.Key)
		if err != nil {
			return nil, off, fmt.Errorf("scan %s/%d: key at offset %d: %w", s.cfg.Topic, partition, rec.Offset, err)
		}
		val, err := kafka.ReadAll(rec.Value)
		if err != nil {
			return nil, off, fmt.Errorf("scan %s/%d: value at offset %d: %w", s.cfg.Topic, partition, rec.Offset, err)
		}
		out = append(out, NewRecord(kafka.Message{
			Topic: s.cfg.Topic, Partition: partition, Offset: rec.Offset, Time: rec.Time,
			Key: key, Value: val, Headers: slices.Clone(rec.Headers),
		}))
		next = rec.Offset + 1
	}
	return out, next, nil
}
