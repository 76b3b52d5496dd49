package main

import (
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
)

// benchClientID is the Kafka client id of the bench's own clients (the raw
// ceilings, the watchers, the preloads).
const benchClientID = "companias-benchrun"

// kafkaSide is one broker of the run as the bench's own clients reach it:
// the plaintext one, or the secured one (TLS + SCRAM-SHA-512 as the
// benchrun principal). Its clients are built by kafkakit like every Kafka
// client of the workspace.
type kafkaSide struct {
	addr string
	cfg  kafkakit.Config
}

// transport returns a new Transport for the side.
func (k kafkaSide) transport() (*kafka.Transport, error) {
	tr, err := k.cfg.Transport()
	if err != nil {
		return nil, fmt.Errorf("kafka transport: %w", err)
	}
	return tr, nil
}

// dialer returns a new Dialer for the side.
func (k kafkaSide) dialer() (*kafka.Dialer, error) {
	d, err := k.cfg.Dialer()
	if err != nil {
		return nil, fmt.Errorf("kafka dialer: %w", err)
	}
	return d, nil
}
