package config_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/services/command/internal/config"
)

func TestLoadKafkaMaxRecordBytes(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.KafkaMaxRecordBytes != 1_000_000 {
		t.Errorf("default KafkaMaxRecordBytes %d, want 1000000 (below Kafka's default max.message.bytes)", c.KafkaMaxRecordBytes)
	}
	if _, ok := config.Variables()["KAFKA_MAX_RECORD_BYTES"]; !ok {
		t.Error("Variables lacks KAFKA_MAX_RECORD_BYTES")
	}
	for _, ok := range []string{"1024", "16777216"} {
		if _, err := load(env(map[string]string{"KAFKA_MAX_RECORD_BYTES": ok})); err != nil {
			t.Errorf("KAFKA_MAX_RECORD_BYTES=%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"1023", "16777217", "0", "-1", "1MB"} {
		if _, err := load(env(map[string]string{"KAFKA_MAX_RECORD_BYTES": bad})); err == nil || !strings.Contains(err.Error(), "KAFKA_MAX_RECORD_BYTES") {
			t.Errorf("KAFKA_MAX_RECORD_BYTES=%s: %v, want an error naming it", bad, err)
		}
	}
}
