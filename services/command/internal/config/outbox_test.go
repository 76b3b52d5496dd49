package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/services/command/internal/config"
)

func TestLoadOutboxLinger(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.OutboxLinger != 5*time.Millisecond {
		t.Errorf("default OutboxLinger %v, want 5ms", c.OutboxLinger)
	}
	if _, ok := config.Variables()["OUTBOX_LINGER"]; !ok {
		t.Error("Variables lacks OUTBOX_LINGER")
	}
	c, err = load(env(map[string]string{"OUTBOX_LINGER": "0"}))
	if err != nil || c.OutboxLinger != 0 {
		t.Errorf("OUTBOX_LINGER=0: %v, %v; want 0 (no linger)", c.OutboxLinger, err)
	}
	for _, bad := range []string{"2s", "-1ms", "soon"} {
		if _, err := load(env(map[string]string{"OUTBOX_LINGER": bad})); err == nil || !strings.Contains(err.Error(), "OUTBOX_LINGER") {
			t.Errorf("OUTBOX_LINGER=%s: %v, want an error naming it", bad, err)
		}
	}
}
