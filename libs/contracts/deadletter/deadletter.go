// Package deadletter is the contract of the dead-letter topics of the
// companias services: a message that a consumer cannot process is copied,
// with its original key, value and headers, to "<topic>.dlq" together with
// the headers below, and the consumer moves on.
//
// This package depends on the standard library only.
package deadletter

// Topic returns the dead-letter topic for messages read from topic.
func Topic(topic string) string { return topic + ".dlq" }

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
