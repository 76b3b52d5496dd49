package outbox

import (
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

// decodeHeaders turns the outbox.headers column into Kafka record headers,
// in stored order.
func decodeHeaders(raw []byte) ([]kafka.Header, error) {
	hs, err := postgres.DecodeHeaders(raw)
	if err != nil {
		return nil, err
	}
	out := make([]kafka.Header, len(hs))
	for i, h := range hs {
		out[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return out, nil
}
