package topics_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

func TestLoadSettings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		env     map[string]string
		want    topics.Settings
		wantErr string // "" means none
	}{
		{"defaults", nil, topics.Settings{Create: true, ReplicationFactor: 0}, ""},
		{"set", map[string]string{"KAFKA_CREATE_TOPICS": "false", "KAFKA_REPLICATION_FACTOR": " 3 "}, topics.Settings{ReplicationFactor: 3}, ""},
		{"largest", map[string]string{"KAFKA_REPLICATION_FACTOR": "32"}, topics.Settings{Create: true, ReplicationFactor: 32}, ""},
		{"too large", map[string]string{"KAFKA_REPLICATION_FACTOR": "33"}, topics.Settings{Create: true},
			`KAFKA_REPLICATION_FACTOR must be an integer in [0, 32], got "33"`},
		{"negative", map[string]string{"KAFKA_REPLICATION_FACTOR": "-1"}, topics.Settings{Create: true},
			`KAFKA_REPLICATION_FACTOR must be an integer in [0, 32], got "-1"`},
		{"not a boolean", map[string]string{"KAFKA_CREATE_TOPICS": "maybe"}, topics.Settings{Create: true},
			`KAFKA_CREATE_TOPICS must be true or false, got "maybe"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := envconfig.New(func(k string) string { return tt.env[k] }, nil, topics.Variables())
			got := topics.LoadSettings(p)
			if got != tt.want {
				t.Errorf("LoadSettings = %+v, want %+v", got, tt.want)
			}
			err := p.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
