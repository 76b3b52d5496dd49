package main

import (
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
)

// localKafka is the plaintext configuration of the bench's embedded broker;
// its clients are built by kafkakit like every Kafka client of the
// workspace.
var localKafka = kafkakit.Config{ClientID: "companias-benchrun"}

// localTransport returns a new Transport for localKafka.
func localTransport() *kafka.Transport {
	tr, err := localKafka.Transport()
	if err != nil {
		panic("plaintext kafka transport: " + err.Error()) // no TLS or SASL to fail
	}
	return tr
}

// localDialer returns a new Dialer for localKafka.
func localDialer() *kafka.Dialer {
	d, err := localKafka.Dialer()
	if err != nil {
		panic("plaintext kafka dialer: " + err.Error()) // no TLS or SASL to fail
	}
	return d
}
