package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/services/command/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatalf("Load with defaults: %v", err)
	}
	if c.HTTPAddr != ":8080" || c.EventsTopic != "topic-eventos-compania" ||
		c.CommandsTopic != "topic-comando-crear-compania" || c.CommandsDLQTopic != "topic-comando-crear-compania.dlq" {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if c.OutboxBatchTimeout != time.Millisecond || c.TopicPartitions != 6 || !c.CreateTopics || !c.CommandsIntake {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if len(c.KafkaBrokers) != 1 || c.KafkaBrokers[0] != "127.0.0.1:9092" {
		t.Errorf("brokers = %v", c.KafkaBrokers)
	}
}

func TestLoadOverrides(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"KAFKA_BROKERS":        "a:1, b:2",
		"KAFKA_COMMANDS_TOPIC": "cmds",
		"OUTBOX_BATCH_SIZE":    "50",
		"LOG_LEVEL":            "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "b:2" || c.CommandsDLQTopic != "cmds.dlq" || c.OutboxBatchSize != 50 {
		t.Errorf("got %+v", c)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{
		"HTTP_ADDR":              "nope",
		"DATABASE_URL":           "mysql://x",
		"KAFKA_BROKERS":          "host-without-port",
		"KAFKA_EVENTS_TOPIC":     "bad topic",
		"KAFKA_TOPIC_PARTITIONS": "0",
		"OUTBOX_POLL_INTERVAL":   "soon",
		"KAFKA_CREATE_TOPICS":    "maybe",
		"LOG_LEVEL":              "loud",
	}))
	if err == nil {
		t.Fatal("Load accepted an invalid configuration")
	}
	for _, name := range []string{"HTTP_ADDR", "DATABASE_URL", "KAFKA_BROKERS", "KAFKA_EVENTS_TOPIC",
		"KAFKA_TOPIC_PARTITIONS", "OUTBOX_POLL_INTERVAL", "KAFKA_CREATE_TOPICS", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
