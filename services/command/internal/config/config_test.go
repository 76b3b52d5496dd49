package config_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/topics"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
	"github.com/propalpes/companias/services/command/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// load is Load with the real file system, as main calls it.
func load(getenv func(string) string) (config.Config, error) { return config.Load(getenv, os.ReadFile) }

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil {
		t.Fatalf("Load with defaults: %v", err)
	}
	if c.EventsTopic != "topic-eventos-compania" ||
		c.CommandsTopic != "topic-comando-crear-compania" || c.CommandsDLQTopic != "topic-comando-crear-compania.dlq" {
		t.Errorf("unexpected defaults: %+v", c)
	}
	if c.OutboxBatchTimeout != time.Millisecond || c.TopicPartitions != 6 || !c.CreateTopics || !c.CommandsIntake || !c.MigrateOnStart ||
		c.TopicReplicationFactor != 0 || c.DLQRetention != 168*time.Hour {
		t.Errorf("unexpected defaults: %+v", c)
	}
	// The writer's HTTP timeouts, once hard-coded in commandd.
	wantHTTP := envconfig.HTTPServer{Addr: "127.0.0.1:8080", ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if c.HTTP != wantHTTP {
		t.Errorf("HTTP = %+v, want %+v", c.HTTP, wantHTTP)
	}
	want := kafkakit.Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "companias-command"}
	if !reflect.DeepEqual(c.Kafka, want) {
		t.Errorf("Kafka = %+v, want %+v", c.Kafka, want)
	}
	if c.KafkaMembership != kafkakit.DefaultMembership() {
		t.Errorf("KafkaMembership = %+v, want %+v", c.KafkaMembership, kafkakit.DefaultMembership())
	}
}

func TestLoadOverrides(t *testing.T) {
	t.Parallel()
	c, err := load(env(map[string]string{
		"KAFKA_BROKERS":        "a:1, b:2",
		"KAFKA_COMMANDS_TOPIC": "cmds",
		"OUTBOX_BATCH_SIZE":    "50",
		"LOG_LEVEL":            "debug",
		"MIGRATE_ON_START":     "false",

		"KAFKA_REPLICATION_FACTOR": "3",
		"KAFKA_DLQ_RETENTION":      "720h",

		"KAFKA_SESSION_TIMEOUT":    "45s",
		"KAFKA_HEARTBEAT_INTERVAL": "3s",
		"KAFKA_REBALANCE_TIMEOUT":  "1m",

		"HTTP_ADDR":                "127.0.0.1:9000",
		"HTTP_READ_HEADER_TIMEOUT": "1s",
		"HTTP_READ_TIMEOUT":        "2s",
		"HTTP_WRITE_TIMEOUT":       "3s",
		"HTTP_IDLE_TIMEOUT":        "4s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (envconfig.HTTPServer{Addr: "127.0.0.1:9000", ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second}); c.HTTP != want {
		t.Errorf("HTTP = %+v, want %+v", c.HTTP, want)
	}
	if want := (kafkakit.Membership{SessionTimeout: 45 * time.Second, HeartbeatInterval: 3 * time.Second, RebalanceTimeout: time.Minute}); c.KafkaMembership != want {
		t.Errorf("KafkaMembership = %+v, want %+v", c.KafkaMembership, want)
	}
	if c.TopicReplicationFactor != 3 || c.DLQRetention != 720*time.Hour {
		t.Errorf("replication factor %d, DLQ retention %s", c.TopicReplicationFactor, c.DLQRetention)
	}
	if len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "b:2" || c.CommandsDLQTopic != "cmds.dlq" || c.OutboxBatchSize != 50 || c.MigrateOnStart {
		t.Errorf("got %+v", c)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := load(env(map[string]string{
		"HTTP_ADDR":              "nope",
		"HTTP_IDLE_TIMEOUT":      "0s",
		"DATABASE_URL":           "mysql://x",
		"KAFKA_BROKERS":          "host-without-port",
		"KAFKA_EVENTS_TOPIC":     "bad topic",
		"KAFKA_TOPIC_PARTITIONS": "0",
		"OUTBOX_POLL_INTERVAL":   "soon",
		"KAFKA_CREATE_TOPICS":    "maybe",
		"LOG_LEVEL":              "loud",
		"MIGRATE_ON_START":       "sometimes",
		"AUTH_MODE":              "jwks", // the AUTH_* rules are envconfig's; Load reports them with the rest

		"KAFKA_REPLICATION_FACTOR": "33",
		"KAFKA_DLQ_RETENTION":      "1m",

		"KAFKA_SESSION_TIMEOUT":    "7s",
		"KAFKA_HEARTBEAT_INTERVAL": "5s",
		"KAFKA_REBALANCE_TIMEOUT":  "0s",
	}))
	if err == nil {
		t.Fatal("Load accepted an invalid configuration")
	}
	for _, name := range []string{"HTTP_ADDR", "HTTP_IDLE_TIMEOUT", "DATABASE_URL", "KAFKA_BROKERS", "KAFKA_EVENTS_TOPIC",
		"KAFKA_TOPIC_PARTITIONS", "OUTBOX_POLL_INTERVAL", "KAFKA_CREATE_TOPICS", "LOG_LEVEL", "MIGRATE_ON_START",
		"AUTH_JWKS_URL is required", "KAFKA_REPLICATION_FACTOR", "KAFKA_DLQ_RETENTION",
		"KAFKA_HEARTBEAT_INTERVAL (5s) must be at most a third of KAFKA_SESSION_TIMEOUT (7s)", "KAFKA_REBALANCE_TIMEOUT must be in"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// TestLoadReplicationFactor checks KAFKA_REPLICATION_FACTOR's range, 0..32
// as in the query service, and that the old name is no longer read.
func TestLoadReplicationFactor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  int
		ok    bool
	}{{"0", 0, true}, {"1", 1, true}, {"32", 32, true}, {"33", 0, false}, {"-1", 0, false}, {"three", 0, false}} {
		c, err := load(env(map[string]string{"KAFKA_REPLICATION_FACTOR": tt.value}))
		if tt.ok && (err != nil || c.TopicReplicationFactor != tt.want) {
			t.Errorf("KAFKA_REPLICATION_FACTOR=%s: %d, %v; want %d", tt.value, c.TopicReplicationFactor, err, tt.want)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), "KAFKA_REPLICATION_FACTOR must be an integer in [0, 32]")) {
			t.Errorf("KAFKA_REPLICATION_FACTOR=%s: error %v, want the range", tt.value, err)
		}
	}
	c, err := load(env(map[string]string{"KAFKA_TOPIC_REPLICATION_FACTOR": "3"}))
	if err != nil || c.TopicReplicationFactor != 0 {
		t.Errorf("KAFKA_TOPIC_REPLICATION_FACTOR=3: %d, %v; want it ignored (0)", c.TopicReplicationFactor, err)
	}
}

// TestLoadKafkaSecurity checks that the KAFKA_TLS_* and KAFKA_SASL_*
// variables reach Config.Kafka, and that a bad combination is reported,
// naming its variable, with the service's other problems (kafkakit's rules
// themselves are tested in kafkakit).
func TestLoadKafkaSecurity(t *testing.T) {
	t.Parallel()
	c, err := load(env(map[string]string{
		"KAFKA_TLS_ENABLED": "true", "KAFKA_TLS_CA_FILE": "/ca.pem",
		"KAFKA_SASL_MECHANISM": "scram-sha-512", "KAFKA_SASL_USERNAME": "writer", "KAFKA_SASL_PASSWORD": "pw",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := kafkakit.Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "companias-command",
		TLS:  kafkakit.TLS{Enabled: true, CAFile: "/ca.pem"},
		SASL: kafkakit.SASL{Mechanism: kafkakit.MechanismSCRAMSHA512, Username: "writer", Password: "pw"}}
	if !reflect.DeepEqual(c.Kafka, want) {
		t.Errorf("Kafka = %+v, want %+v", c.Kafka, want)
	}

	_, err = load(env(map[string]string{
		"KAFKA_TLS_CA_FILE":    "/ca.pem", // without KAFKA_TLS_ENABLED
		"KAFKA_SASL_MECHANISM": "PLAIN",   // without a username and password
		"LOG_LEVEL":            "loud",
	}))
	if err == nil {
		t.Fatal("Load accepted an inconsistent Kafka security configuration")
	}
	for _, name := range []string{"KAFKA_TLS_CA_FILE", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestVariablesListKafka(t *testing.T) {
	t.Parallel()
	vars := config.Variables()
	for name := range kafkakit.Variables() {
		if _, ok := vars[name]; !ok {
			t.Errorf("Variables() lacks %s", name)
		}
	}
	for name, def := range kafkakit.MembershipVariables() {
		if v, ok := vars[name]; !ok || v != def {
			t.Errorf("Variables()[%s] = %q, %v; want %q", name, v, ok, def)
		}
	}
	// The topic settings have the query service's names and defaults.
	for name, def := range topics.Variables() {
		if v, ok := vars[name]; !ok || v != def {
			t.Errorf("Variables()[%s] = %q, %v; want %q", name, v, ok, def)
		}
	}
	if _, ok := vars["KAFKA_TOPIC_REPLICATION_FACTOR"]; ok {
		t.Error("Variables() still lists KAFKA_TOPIC_REPLICATION_FACTOR, now KAFKA_REPLICATION_FACTOR")
	}
	if vars["KAFKA_BROKERS"] != "127.0.0.1:9092" {
		t.Errorf("KAFKA_BROKERS default = %q, want 127.0.0.1:9092", vars["KAFKA_BROKERS"])
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// secret32 is a valid AUTH_HS256_SECRET (32 random bytes in base64), key32
// its key: the one the service verifies with.
const (
	secret32 = "base64:cbyAhwUVWvYEmpdoZmXe2mLGtdJE1j1gE2tVEd9zmIk="
	key32    = jwtauth.Secret("\x71\xbc\x80\x87\x05\x15\x5a\xf6\x04\x9a\x97\x68\x66\x65\xde\xda" +
		"\x62\xc6\xb5\xd2\x44\xd6\x3d\x60\x13\x6b\x55\x11\xdf\x73\x98\x89")
)

func TestLoadAuth(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil || c.Auth != (jwtauth.Settings{Mode: jwtauth.ModeNone}) {
		t.Fatalf("default auth = %+v, %v; want mode none", c.Auth, err)
	}
	c, err = load(env(map[string]string{"AUTH_MODE": "HS256", "AUTH_HS256_SECRET": secret32,
		"AUTH_ISSUER": "https://idp", "AUTH_AUDIENCE": "companias-command"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth != (jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: key32, Issuer: "https://idp", Audience: "companias-command"}) {
		t.Errorf("hs256 auth = %#v", c.Auth)
	}
	// The secret never shows when the configuration is printed.
	if s := fmt.Sprintf("%v %+v %#v %s", c, c, c, c.Auth.HS256Secret); strings.Contains(s, secret32) || strings.Contains(s, string(key32)) || !strings.Contains(s, "[redacted]") {
		t.Errorf("printed config leaks the secret: %s", s)
	}
	c, err = load(env(map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET_FILE": writeFile(t, secret32+"\n"), "AUTH_ISSUER": "https://idp.example", "AUTH_AUDIENCE": "companias-command"}))
	if err != nil || c.Auth.HS256Secret != key32 {
		t.Errorf("secret from file = %q, %v", string(c.Auth.HS256Secret), err)
	}
	c, err = load(env(map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "https://idp.example/.well-known/jwks.json", "AUTH_ISSUER": "https://idp.example", "AUTH_AUDIENCE": "companias-command"}))
	if err != nil || c.Auth.Mode != jwtauth.ModeJWKS || c.Auth.JWKSURL != "https://idp.example/.well-known/jwks.json" {
		t.Errorf("jwks auth = %+v, %v", c.Auth, err)
	}
}

func TestVariablesListAuth(t *testing.T) {
	t.Parallel()
	v := config.Variables()
	for _, name := range []string{"AUTH_MODE", "AUTH_HS256_SECRET", "AUTH_HS256_SECRET_FILE", "AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE"} {
		if _, ok := v[name]; !ok {
			t.Errorf("Variables() lacks %s", name)
		}
	}
	if v["AUTH_MODE"] != "" {
		t.Errorf("AUTH_MODE default = %q, want unset (none on a loopback HTTP_ADDR only)", v["AUTH_MODE"])
	}
}

// files is a hermetic readFile: the content of each known path, fs.ErrNotExist otherwise.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if v, ok := m[name]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func TestLoadDatabaseURLFile(t *testing.T) {
	t.Parallel()
	const dsn = "postgres://companias:s3cret@db:5432/propalpes?sslmode=require"
	read := files(map[string]string{"/run/secrets/db": dsn + "\n", "/run/secrets/crlf": dsn + "\r\n", "/run/secrets/two": dsn + "\n\n"})
	for _, path := range []string{"/run/secrets/db", "/run/secrets/crlf"} {
		c, err := config.Load(env(map[string]string{"DATABASE_URL_FILE": path}), read)
		if err != nil || c.DatabaseURL != dsn {
			t.Errorf("DATABASE_URL_FILE=%s: DatabaseURL = %q, %v; want %q", path, c.DatabaseURL, err, dsn)
		}
	}
	// Only one trailing newline is removed; the rest belongs to the value.
	if c, err := config.Load(env(map[string]string{"DATABASE_URL_FILE": "/run/secrets/two"}), read); err != nil || c.DatabaseURL != dsn+"\n" {
		t.Errorf("two newlines: DatabaseURL = %q, %v", c.DatabaseURL, err)
	}
	// Load reads real files.
	if c, err := load(env(map[string]string{"DATABASE_URL_FILE": writeFile(t, dsn+"\n")})); err != nil || c.DatabaseURL != dsn {
		t.Errorf("Load with a real file: DatabaseURL = %q, %v", c.DatabaseURL, err)
	}
}

func TestLoadDatabaseURLFileErrors(t *testing.T) {
	t.Parallel()
	read := files(map[string]string{"/db": "postgres://u:pw@db/x", "/mysql": "mysql://u:pw@db/x\n", "/empty": "\n"})
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"both set", map[string]string{"DATABASE_URL": "postgres://db/x", "DATABASE_URL_FILE": "/db"}, []string{"DATABASE_URL and DATABASE_URL_FILE are both set"}},
		{"unreadable", map[string]string{"DATABASE_URL_FILE": "/missing", "LOG_LEVEL": "loud"}, []string{"DATABASE_URL_FILE cannot be read", "/missing", "LOG_LEVEL"}},
		{"empty", map[string]string{"DATABASE_URL_FILE": "/empty"}, []string{`DATABASE_URL_FILE names an empty file "/empty"`}},
		{"not postgres", map[string]string{"DATABASE_URL_FILE": "/mysql"}, []string{"DATABASE_URL_FILE must start with postgres:// or postgresql://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tt.env), read)
			if err == nil {
				t.Fatalf("Load(%v) accepted an invalid configuration", tt.env)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error leaks the credentials: %v", err)
			}
		})
	}
}

func TestLoadReadsSecretFile(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET_FILE": "/jwt", "AUTH_ISSUER": "https://idp.example", "AUTH_AUDIENCE": "companias-command"}), files(map[string]string{"/jwt": secret32 + "\n"}))
	if err != nil || c.Auth.HS256Secret != key32 {
		t.Errorf("secret through readFile = %q, %v", string(c.Auth.HS256Secret), err)
	}
}
