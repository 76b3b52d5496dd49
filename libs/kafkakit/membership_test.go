package kafkakit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

func loadMembership(env map[string]string) (kafkakit.Membership, error) {
	p := envconfig.New(func(k string) string { return env[k] }, nil, kafkakit.MembershipVariables())
	m := kafkakit.LoadMembership(p)
	return m, p.Err()
}

func TestLoadMembershipDefaults(t *testing.T) {
	t.Parallel()
	got, err := loadMembership(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := kafkakit.DefaultMembership(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if err := kafkakit.DefaultMembership().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestLoadMembershipValid(t *testing.T) {
	t.Parallel()
	got, err := loadMembership(map[string]string{
		"KAFKA_SESSION_TIMEOUT": "45s", "KAFKA_HEARTBEAT_INTERVAL": "15s", "KAFKA_REBALANCE_TIMEOUT": "2m",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := kafkakit.Membership{SessionTimeout: 45 * time.Second, HeartbeatInterval: 15 * time.Second, RebalanceTimeout: 2 * time.Minute}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLoadMembershipInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"malformed session", map[string]string{"KAFKA_SESSION_TIMEOUT": "ten"}, []string{"KAFKA_SESSION_TIMEOUT"}},
		{"session below the brokers' minimum", map[string]string{"KAFKA_SESSION_TIMEOUT": "5s", "KAFKA_HEARTBEAT_INTERVAL": "1s"}, []string{"KAFKA_SESSION_TIMEOUT must be in [6s, 30m0s]"}},
		{"session above the brokers' maximum", map[string]string{"KAFKA_SESSION_TIMEOUT": "31m"}, []string{"KAFKA_SESSION_TIMEOUT must be in"}},
		{"heartbeat over a third of the session", map[string]string{"KAFKA_SESSION_TIMEOUT": "9s", "KAFKA_HEARTBEAT_INTERVAL": "3001ms"}, []string{"KAFKA_HEARTBEAT_INTERVAL (3.001s) must be at most a third of KAFKA_SESSION_TIMEOUT (9s)"}},
		{"heartbeat too small", map[string]string{"KAFKA_HEARTBEAT_INTERVAL": "10ms"}, []string{"KAFKA_HEARTBEAT_INTERVAL must be at least 100ms"}},
		{"negative heartbeat", map[string]string{"KAFKA_HEARTBEAT_INTERVAL": "-1s"}, []string{"KAFKA_HEARTBEAT_INTERVAL must be at least"}},
		{"rebalance too short", map[string]string{"KAFKA_REBALANCE_TIMEOUT": "500ms"}, []string{"KAFKA_REBALANCE_TIMEOUT must be in [1s, 30m0s]"}},
		{"rebalance too long", map[string]string{"KAFKA_REBALANCE_TIMEOUT": "1h"}, []string{"KAFKA_REBALANCE_TIMEOUT must be in"}},
		{
			"every problem at once",
			map[string]string{"KAFKA_SESSION_TIMEOUT": "1s", "KAFKA_HEARTBEAT_INTERVAL": "1ms", "KAFKA_REBALANCE_TIMEOUT": "0s"},
			[]string{"KAFKA_SESSION_TIMEOUT", "KAFKA_HEARTBEAT_INTERVAL", "KAFKA_REBALANCE_TIMEOUT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadMembership(tt.env)
			if err == nil {
				t.Fatal("got nil error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
