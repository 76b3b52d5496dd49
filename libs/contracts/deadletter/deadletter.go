// Package deadletter is the contract of the dead-letter topics of the
// companias services: a message that a consumer cannot process is copied,
// with its original key, value and headers, to "<topic>.dlq" together with
// the headers below, and the consumer moves on.
//
// A dead letter carries exactly one set of these headers: the consumer drops
// every header of the original message whose name starts with HeaderPrefix
// (a message replayed from a dead-letter topic, or re-sent by hand, still
// carries the old ones) before it adds its own. Headers does both.
//
// This package depends on the standard library only.
package deadletter

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Topic returns the dead-letter topic for messages read from topic.
func Topic(topic string) string { return topic + topicSuffix }

const topicSuffix = ".dlq"

// SourceTopic is the inverse of Topic: the topic whose dead letters dlqTopic
// holds by this naming, and false when dlqTopic is not named that way. A
// replay tool trusts this name, which the operator chose, over the
// HeaderTopic of a record, which anyone who can write to the dead-letter
// topic can set.
func SourceTopic(dlqTopic string) (string, bool) {
	t, ok := strings.CutSuffix(dlqTopic, topicSuffix)
	if !ok || t == "" {
		return "", false
	}
	return t, true
}

// HeaderPrefix starts the name of every header of this contract, including
// the ones tools add (such as a replay's provenance).
const HeaderPrefix = "dlq_"

// IsHeader reports whether key names a dead-letter header (HeaderPrefix).
func IsHeader(key string) bool { return strings.HasPrefix(key, HeaderPrefix) }

// MaxErrorLen bounds the HeaderError value, in bytes; a longer error text is
// cut at a UTF-8 character boundary.
const MaxErrorLen = 1024

// Bounds of the original headers a dead letter copies, so that a message
// the broker accepted always fits in its dead letter: a header whose key and
// value together are over MaxCopiedHeaderBytes is dropped, and copying stops
// (that header and every later one are dropped) once the headers copied
// would pass MaxCopiedHeadersBytes in total. HeaderDroppedHeaders then lists
// the dropped ones.
const (
	MaxCopiedHeaderBytes  = 4 << 10
	MaxCopiedHeadersBytes = 32 << 10
)

// Bounds of the HeaderDroppedHeaders list: its first MaxDroppedListed
// dropped headers are named, each key cut to MaxDroppedKeyLen bytes.
const (
	MaxDroppedListed = 16
	MaxDroppedKeyLen = 64
)

// Header names added to a dead-lettered message.
const (
	HeaderReason    = "dlq_reason"             // one of the Reason constants
	HeaderError     = "dlq_error"              // human-readable error text
	HeaderTopic     = "dlq_original_topic"     // where the message was read
	HeaderPartition = "dlq_original_partition" // decimal
	HeaderOffset    = "dlq_original_offset"    // decimal
	HeaderTime      = "dlq_time"               // RFC 3339 time of dead-lettering
	HeaderConsumer  = "dlq_consumer_group"     // the consumer group that gave up
	// HeaderDroppedHeaders is present only when original headers were
	// dropped (see MaxCopiedHeaderBytes): a JSON object
	// {"count": n, "bytes": b, "headers": [{"key": k, "size": s}, …]} with
	// the number of dropped headers, their total size (keys and values),
	// and the first MaxDroppedListed of them in order, each with its key
	// (cut to MaxDroppedKeyLen bytes) and size. Never a value.
	HeaderDroppedHeaders = "dlq_dropped_headers"
)

// Reasons (values of HeaderReason).
const (
	// ReasonMalformed: the value is not JSON of the expected shape, or a
	// required header is missing or malformed.
	ReasonMalformed = "malformed"
	// ReasonInvalid: well-formed, but the content broke a rule (a domain
	// validation, or the event's JSON Schema).
	ReasonInvalid = "invalid"
	// ReasonConflict: refused by the current state (e.g. a duplicate company,
	// a command id reused with another body).
	ReasonConflict = "conflict"
	// ReasonUnsupportedVersion: an event of a major version this consumer does not speak.
	ReasonUnsupportedVersion = "unsupported_version"
	// ReasonPanic: the consumer panicked while handling the message (a bug
	// in the consumer, not necessarily in the message); the panic was
	// recovered and the consumer went on with the next message.
	ReasonPanic = "panic"
)

// Header is one Kafka record header, as every Go Kafka client spells it
// (kafka-go's kafka.Header, franz-go's kgo.RecordHeader): Headers works on
// any type with this underlying structure.
type Header interface {
	~struct {
		Key   string
		Value []byte
	}
}

// Info is why and where a consumer gave up on a message.
type Info struct {
	Reason        string    // a Reason* constant
	Err           error     // the cause; its text becomes HeaderError
	Topic         string    // the topic the message was read from
	Partition     int       // its partition
	Offset        int64     // its offset
	Time          time.Time // when it was dead-lettered; written in UTC
	ConsumerGroup string    // the consumer group that gave up
}

// Headers returns the headers of the dead-letter copy of a message whose
// own headers are original: original minus every dead-letter header (see
// IsHeader), in their order and bounded (see MaxCopiedHeaderBytes),
// followed by this contract's headers for info in a fixed order, then
// HeaderDroppedHeaders if any header was dropped for its size. original is
// not modified.
func Headers[H Header](info Info, original []H) []H {
	type kv = struct {
		Key   string
		Value []byte
	}
	out := make([]H, 0, min(len(original), 64)+8)
	var dropped droppedList
	total := 0
	for _, h := range original {
		key, value := kv(h).Key, kv(h).Value
		if IsHeader(key) {
			continue
		}
		size := len(key) + len(value)
		if dropped.full || size > MaxCopiedHeaderBytes || total+size > MaxCopiedHeadersBytes {
			// Once the total is reached, later headers are dropped too,
			// even small ones: copying stops there.
			dropped.full = dropped.full || size <= MaxCopiedHeaderBytes
			dropped.add(key, size)
			continue
		}
		total += size
		out = append(out, h)
	}
	errText := ""
	if info.Err != nil {
		errText = truncate(info.Err.Error(), MaxErrorLen)
	}
	out = append(out,
		H(kv{HeaderReason, []byte(info.Reason)}),
		H(kv{HeaderError, []byte(errText)}),
		H(kv{HeaderTopic, []byte(info.Topic)}),
		H(kv{HeaderPartition, strconv.AppendInt(nil, int64(info.Partition), 10)}),
		H(kv{HeaderOffset, strconv.AppendInt(nil, info.Offset, 10)}),
		H(kv{HeaderTime, info.Time.UTC().AppendFormat(nil, time.RFC3339Nano)}),
		H(kv{HeaderConsumer, []byte(info.ConsumerGroup)}),
	)
	if dropped.Count > 0 {
		out = append(out, H(kv{HeaderDroppedHeaders, dropped.json()}))
	}
	return out
}

// droppedList is the value of HeaderDroppedHeaders.
type droppedList struct {
	Count   int             `json:"count"`
	Bytes   int             `json:"bytes"`
	Headers []droppedHeader `json:"headers"`
	full    bool            // the total bound was reached
}

type droppedHeader struct {
	Key  string `json:"key"`
	Size int    `json:"size"`
}

func (d *droppedList) add(key string, size int) {
	d.Count++
	d.Bytes += size
	if len(d.Headers) < MaxDroppedListed {
		d.Headers = append(d.Headers, droppedHeader{Key: truncate(key, MaxDroppedKeyLen), Size: size})
	}
}

func (d *droppedList) json() []byte {
	b, err := json.Marshal(d)
	if err != nil {
		panic("deadletter: marshal dropped headers: " + err.Error()) // strings and ints always marshal
	}
	return b
}

// truncate cuts s to at most n bytes without splitting a UTF-8 character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
