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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Topic returns the dead-letter topic for messages read from topic.
func Topic(topic string) string { return topic + ".dlq" }

// HeaderPrefix starts the name of every header of this contract, including
// the ones tools add (such as a replay's provenance).
const HeaderPrefix = "dlq_"

// IsHeader reports whether key names a dead-letter header (HeaderPrefix).
func IsHeader(key string) bool { return strings.HasPrefix(key, HeaderPrefix) }

// MaxErrorLen bounds the HeaderError value, in bytes; a longer error text is
// cut at a UTF-8 character boundary.
const MaxErrorLen = 1024

// Header names added to a dead-lettered message.
const (
	HeaderReason    = "dlq_reason"             // one of the Reason constants
	HeaderError     = "dlq_error"              // human-readable error text
	HeaderTopic     = "dlq_original_topic"     // where the message was read
	HeaderPartition = "dlq_original_partition" // decimal
	HeaderOffset    = "dlq_original_offset"    // decimal
	HeaderTime      = "dlq_time"               // RFC 3339 time of dead-lettering
	HeaderConsumer  = "dlq_consumer_group"     // the consumer group that gave up
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
// IsHeader), in their order, followed by this contract's headers for info
// in a fixed order. original is not modified.
func Headers[H Header](info Info, original []H) []H {
	type kv = struct {
		Key   string
		Value []byte
	}
	out := make([]H, 0, len(original)+7)
	for _, h := range original {
		if !IsHeader(kv(h).Key) {
			out = append(out, h)
		}
	}
	errText := ""
	if info.Err != nil {
		errText = truncate(info.Err.Error(), MaxErrorLen)
	}
	return append(out,
		H(kv{HeaderReason, []byte(info.Reason)}),
		H(kv{HeaderError, []byte(errText)}),
		H(kv{HeaderTopic, []byte(info.Topic)}),
		H(kv{HeaderPartition, strconv.AppendInt(nil, int64(info.Partition), 10)}),
		H(kv{HeaderOffset, strconv.AppendInt(nil, info.Offset, 10)}),
		H(kv{HeaderTime, info.Time.UTC().AppendFormat(nil, time.RFC3339Nano)}),
		H(kv{HeaderConsumer, []byte(info.ConsumerGroup)}),
	)
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
