package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/services/command/internal/config"
)

func TestLoadOutboxLeaseTTL(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.OutboxLeaseTTL != 5*time.Second {
		t.Errorf("default OutboxLeaseTTL %v, want 5s", c.OutboxLeaseTTL)
	}
	if _, ok := config.Variables()["OUTBOX_LEASE_TTL"]; !ok {
		t.Error("Variables lacks OUTBOX_LEASE_TTL")
	}
	for in, want := range map[string]time.Duration{"1s": time.Second, "2s": 2 * time.Second, "5m": 5 * time.Minute} {
		c, err = load(env(map[string]string{"OUTBOX_LEASE_TTL": in}))
		if err != nil || c.OutboxLeaseTTL != want {
			t.Errorf("OUTBOX_LEASE_TTL=%s: %v, %v; want %v", in, c.OutboxLeaseTTL, err, want)
		}
	}
	for _, bad := range []string{"999ms", "0", "6m", "-1s", "soon"} {
		if _, err := load(env(map[string]string{"OUTBOX_LEASE_TTL": bad})); err == nil || !strings.Contains(err.Error(), "OUTBOX_LEASE_TTL") {
			t.Errorf("OUTBOX_LEASE_TTL=%s: %v, want an error naming it", bad, err)
		}
	}
}
