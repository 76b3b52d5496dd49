package kafkakit_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/kafkakit"
)

// fmt_ formats c the ways a program might print or log it.
func fmt_(c kafkakit.Config) string {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "kafka", c, "password", c.SASL.Password)
	return fmt.Sprintf("%v %+v %#v %s", c, c, c, buf.String())
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  kafkakit.Config
		want string // "" for valid
	}{
		{"plaintext", kafkakit.Config{Brokers: []string{"k:9092"}}, ""},
		{"no brokers", kafkakit.Config{}, "KAFKA_BROKERS needs at least one host:port"},
		{"SCRAM without password", kafkakit.Config{Brokers: []string{"k:9092"}, SASL: kafkakit.SASL{Mechanism: kafkakit.MechanismSCRAMSHA256, Username: "u"}}, "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required"},
		{"unknown mechanism", kafkakit.Config{Brokers: []string{"k:9092"}, SASL: kafkakit.SASL{Mechanism: "scram-sha-1"}}, "KAFKA_SASL_MECHANISM must be"},
		{"CA without TLS", kafkakit.Config{Brokers: []string{"k:9092"}, TLS: kafkakit.TLS{CAFile: "/ca"}}, "KAFKA_TLS_CA_FILE is set but KAFKA_TLS_ENABLED is false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  kafkakit.Config
		want []string // each a prefix of one warning, in order
	}{
		{"plaintext", kafkakit.Config{}, nil},
		{"verified TLS with SCRAM", kafkakit.Config{TLS: kafkakit.TLS{Enabled: true}, SASL: kafkakit.SASL{Mechanism: kafkakit.MechanismSCRAMSHA512}}, nil},
		{"skip verify", kafkakit.Config{TLS: kafkakit.TLS{Enabled: true, InsecureSkipVerify: true}}, []string{"KAFKA_TLS_INSECURE_SKIP_VERIFY=true"}},
		{"PLAIN in clear", kafkakit.Config{SASL: kafkakit.SASL{Mechanism: kafkakit.MechanismPlain}}, []string{"KAFKA_SASL_MECHANISM=PLAIN without KAFKA_TLS_ENABLED=true"}},
		{"PLAIN over TLS", kafkakit.Config{TLS: kafkakit.TLS{Enabled: true}, SASL: kafkakit.SASL{Mechanism: kafkakit.MechanismPlain}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.cfg.Warnings()
			if len(got) != len(tt.want) {
				t.Fatalf("Warnings() = %q, want %d warnings starting %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("warning %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
