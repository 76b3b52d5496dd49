package main

import (
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// defaultBrokers is used when neither -brokers nor KAFKA_BROKERS is set.
const defaultBrokers = "127.0.0.1:9092"

// clientID is the Kafka client id of the tool's connections.
const clientID = "companias-dlq"

// loadKafka reads the Kafka settings the services read (KAFKA_BROKERS,
// KAFKA_TLS_*, KAFKA_SASL_*, see kafkakit.Load) through getenv, files
// through readFile; brokers, the -brokers flag, replaces KAFKA_BROKERS when
// not empty. The error names every bad variable.
func loadKafka(getenv func(string) string, readFile func(string) ([]byte, error), brokers string) (kafkakit.Config, error) {
	defaults := kafkakit.Variables()
	defaults[kafkakit.BrokersVar] = defaultBrokers
	env := getenv
	if brokers != "" {
		env = func(name string) string {
			if name == kafkakit.BrokersVar {
				return brokers
			}
			return getenv(name)
		}
	}
	p := envconfig.New(env, readFile, defaults)
	c := kafkakit.Load(p)
	if err := p.Err(); err != nil {
		return kafkakit.Config{}, err
	}
	c.ClientID = clientID
	return c, nil
}
