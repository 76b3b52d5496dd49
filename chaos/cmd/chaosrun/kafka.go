package main

import (
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
)

// localTransport returns a new plaintext Transport for the run's embedded
// broker, built by kafkakit like every Kafka client of the workspace; each
// producer has its own (kafka-go's DefaultTransport shares a metadata cache
// that may predate a topic).
func localTransport() *kafka.Transport {
	tr, err := (kafkakit.Config{ClientID: "companias-chaosrun"}).Transport()
	if err != nil {
		panic("plaintext kafka transport: " + err.Error()) // no TLS or SASL to fail
	}
	return tr
}

// localDialer returns a new plaintext Dialer for the run's embedded broker,
// built by kafkakit.
func localDialer() *kafka.Dialer {
	d, err := (kafkakit.Config{ClientID: "companias-chaosrun"}).Dialer()
	if err != nil {
		panic("plaintext kafka dialer: " + err.Error()) // no TLS or SASL to fail
	}
	return d
}
