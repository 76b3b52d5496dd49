package config_test

import (
	"fmt"
	"io/fs"
	"log/slog"
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
	"github.com/propalpes/companias/services/query/internal/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// load is Load with the real file system, as main calls it.
func load(getenv func(string) string) (config.Config, error) { return config.Load(getenv, os.ReadFile) }

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	got, err := load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty env) error = %v, want nil", err)
	}
	want := config.Config{
		Service: envconfig.Service{
			HTTP: envconfig.HTTPServer{Addr: "127.0.0.1:8081", ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
				WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second},
			Admin:           envconfig.Admin{MetricsAddr: "127.0.0.1:9091"},
			Auth:            jwtauth.Settings{Mode: jwtauth.ModeNone},
			Tracing:         config.Tracing{ServiceName: "companias-query", SampleRatio: 1},
			ShutdownTimeout: 10 * time.Second,
			LogLevel:        slog.LevelInfo,
		},
		ReadWaitDefault:        2 * time.Second,
		ReadWaitMax:            10 * time.Second,
		ReadWaitMaxWaits:       1000,
		MongoQueryTimeout:      5 * time.Second,
		Kafka:                  kafkakit.Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "companias-query"},
		KafkaEventsTopic:       "topic-eventos-compania",
		KafkaEventsDLQTopic:    "topic-eventos-compania.dlq",
		KafkaGroupID:           "companias-query",
		KafkaMembership:        kafkakit.DefaultMembership(),
		KafkaTopicPartitions:   6,
		KafkaReplicationFactor: 0,
		KafkaCreateTopics:      true,
		KafkaDLQRetention:      168 * time.Hour,
		MongoURI:               "mongodb://127.0.0.1:27017",
		MongoDatabase:          "propalpes_query",
		ProjectionBatchSize:    500,
		ProjectionLinger:       5 * time.Millisecond,
		ProjectionWriteTimeout: 30 * time.Second,
		ProjectionWriteChunk:   10,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(empty env) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadOverrides(t *testing.T) {
	t.Parallel()
	got, err := load(env(map[string]string{
		"HTTP_ADDR":                "127.0.0.1:9000",
		"HTTP_READ_HEADER_TIMEOUT": "1s",
		"HTTP_READ_TIMEOUT":        "2s",
		"HTTP_WRITE_TIMEOUT":       "20s",
		"HTTP_IDLE_TIMEOUT":        "3s",
		"READ_WAIT_DEFAULT":        "1s",
		"READ_WAIT_MAX":            "5s",
		"READ_WAIT_MAX_WAITS":      "7",
		"MONGO_QUERY_TIMEOUT":      "250ms",
		"METRICS_ADDR":             "127.0.0.1:9191",
		"PPROF_ADDR":               "[::1]:6060",
		"KAFKA_BROKERS":            " a:1 , b:2 ,",
		"KAFKA_EVENTS_TOPIC":       "ev",
		"KAFKA_GROUP_ID":           "g",
		"KAFKA_SESSION_TIMEOUT":    "45s",
		"KAFKA_HEARTBEAT_INTERVAL": "3s",
		"KAFKA_REBALANCE_TIMEOUT":  "1m",
		"KAFKA_TOPIC_PARTITIONS":   "3",
		"KAFKA_REPLICATION_FACTOR": "3",
		"KAFKA_CREATE_TOPICS":      "false",
		"KAFKA_DLQ_RETENTION":      "720h",
		"MONGO_URI":                "mongodb+srv://x",
		"MONGO_DATABASE":           "db1",
		"PROJECTION_BATCH_SIZE":    "7",
		"PROJECTION_LINGER":        "1ms",
		"PROJECTION_WRITE_TIMEOUT": "45s",
		"PROJECTION_WRITE_CHUNK":   "500",
		"SHUTDOWN_TIMEOUT":         "4s",
		"LOG_LEVEL":                "DEBUG",
		"AUTH_MODE":                "JWKS",
		"AUTH_JWKS_URL":            "https://idp.example/.well-known/jwks.json",
		"AUTH_ISSUER":              "https://idp.example",
		"AUTH_AUDIENCE":            "companias-query",
	}))
	if err != nil {
		t.Fatalf("Load error = %v, want nil", err)
	}
	want := config.Config{
		Service: envconfig.Service{
			HTTP: envconfig.HTTPServer{Addr: "127.0.0.1:9000", ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second,
				WriteTimeout: 20 * time.Second, IdleTimeout: 3 * time.Second},
			Admin: envconfig.Admin{MetricsAddr: "127.0.0.1:9191", PprofAddr: "[::1]:6060"},
			Auth: jwtauth.Settings{Mode: jwtauth.ModeJWKS, JWKSURL: "https://idp.example/.well-known/jwks.json",
				Issuer: "https://idp.example", Audience: "companias-query"},
			Tracing:         config.Tracing{ServiceName: "companias-query", SampleRatio: 1},
			ShutdownTimeout: 4 * time.Second,
			LogLevel:        slog.LevelDebug,
		},
		ReadWaitDefault:        time.Second,
		ReadWaitMax:            5 * time.Second,
		ReadWaitMaxWaits:       7,
		MongoQueryTimeout:      250 * time.Millisecond,
		Kafka:                  kafkakit.Config{Brokers: []string{"a:1", "b:2"}, ClientID: "companias-query"},
		KafkaEventsTopic:       "ev",
		KafkaEventsDLQTopic:    "ev.dlq",
		KafkaGroupID:           "g",
		KafkaMembership:        kafkakit.Membership{SessionTimeout: 45 * time.Second, HeartbeatInterval: 3 * time.Second, RebalanceTimeout: time.Minute},
		KafkaTopicPartitions:   3,
		KafkaReplicationFactor: 3,
		KafkaCreateTopics:      false,
		KafkaDLQRetention:      720 * time.Hour,
		MongoURI:               "mongodb+srv://x",
		MongoDatabase:          "db1",
		ProjectionBatchSize:    7,
		ProjectionLinger:       time.Millisecond,
		ProjectionWriteTimeout: 45 * time.Second,
		ProjectionWriteChunk:   500,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load =\n%+v\nwant\n%+v", got, want)
	}
}

func TestLoadExplicitDLQTopic(t *testing.T) {
	t.Parallel()
	got, err := load(env(map[string]string{"KAFKA_EVENTS_DLQ_TOPIC": "my-dlq"}))
	if err != nil {
		t.Fatalf("Load error = %v", err)
	}
	if got.KafkaEventsDLQTopic != "my-dlq" {
		t.Errorf("KafkaEventsDLQTopic = %q, want my-dlq", got.KafkaEventsDLQTopic)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings, each must appear in the joined error
	}{
		{"bad integer", map[string]string{"KAFKA_TOPIC_PARTITIONS": "six"}, []string{"KAFKA_TOPIC_PARTITIONS"}},
		{"bad duration", map[string]string{"SHUTDOWN_TIMEOUT": "10"}, []string{"SHUTDOWN_TIMEOUT"}},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}},
		{"zero partitions", map[string]string{"KAFKA_TOPIC_PARTITIONS": "0"}, []string{`KAFKA_TOPIC_PARTITIONS must be an integer in [1, 1000], got "0"`}},
		{"replication too large", map[string]string{"KAFKA_REPLICATION_FACTOR": "33"}, []string{`KAFKA_REPLICATION_FACTOR must be an integer in [0, 32], got "33"`}},
		{"replication negative", map[string]string{"KAFKA_REPLICATION_FACTOR": "-1"}, []string{`KAFKA_REPLICATION_FACTOR must be an integer in [0, 32], got "-1"`}},
		{"create topics", map[string]string{"KAFKA_CREATE_TOPICS": "maybe"}, []string{`KAFKA_CREATE_TOPICS must be true or false, got "maybe"`}},
		{"dlq retention", map[string]string{"KAFKA_DLQ_RETENTION": "1m"}, []string{`KAFKA_DLQ_RETENTION must be a duration in [1h0m0s, 87600h0m0s], got "1m"`}},
		{"negative timeout", map[string]string{"HTTP_READ_TIMEOUT": "-1s"}, []string{`HTTP_READ_TIMEOUT must be a duration in [1ms, 1h0m0s], got "-1s"`}},
		{"broker without port", map[string]string{"KAFKA_BROKERS": "localhost"}, []string{`KAFKA_BROKERS entry "localhost" must be host:port`}},
		{"broker bad port", map[string]string{"KAFKA_BROKERS": "h:99999"}, []string{`KAFKA_BROKERS entry "h:99999" must be host:port with a port in 1..65535`}},
		{"empty broker list", map[string]string{"KAFKA_BROKERS": ", ,"}, []string{"KAFKA_BROKERS needs at least one host:port"}},
		{"bad topic", map[string]string{"KAFKA_EVENTS_TOPIC": "a b"}, []string{"KAFKA_EVENTS_TOPIC"}},
		{"dot topic", map[string]string{"KAFKA_EVENTS_DLQ_TOPIC": ".."}, []string{"KAFKA_EVENTS_DLQ_TOPIC"}},
		{"dlq equals topic", map[string]string{"KAFKA_EVENTS_TOPIC": "t", "KAFKA_EVENTS_DLQ_TOPIC": "t"}, []string{"must differ"}},
		{"mongo uri", map[string]string{"MONGO_URI": "http://x"}, []string{"MONGO_URI"}},
		{"mongo db", map[string]string{"MONGO_DATABASE": "a.b"}, []string{`MONGO_DATABASE must be a MongoDB database name`, `got "a.b"`}},
		{"mongo db long", map[string]string{"MONGO_DATABASE": strings.Repeat("d", 64)}, []string{"MONGO_DATABASE must be a MongoDB database name"}},
		{"read before headers", map[string]string{"HTTP_READ_HEADER_TIMEOUT": "20s"}, []string{"HTTP_READ_TIMEOUT (10s) must not be shorter than HTTP_READ_HEADER_TIMEOUT (20s)"}},
		// The AUTH_* rules are envconfig's; Load reports them with the rest.
		{"auth", map[string]string{"AUTH_MODE": "jwks", "LOG_LEVEL": "loud"}, []string{"AUTH_JWKS_URL is required", "LOG_LEVEL"}},
		{"open beyond loopback", map[string]string{"HTTP_ADDR": ":8081"}, []string{`AUTH_MODE is not set and HTTP_ADDR ":8081" listens beyond loopback`}},
		{"http addr", map[string]string{"HTTP_ADDR": "localhost"}, []string{`HTTP_ADDR must be host:port, got "localhost"`}},
		{"tracing endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otel:4318"}, []string{"OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL"}},
		{"batch", map[string]string{"PROJECTION_BATCH_SIZE": "0"}, []string{"PROJECTION_BATCH_SIZE"}},
		{"store write timeout", map[string]string{"PROJECTION_WRITE_TIMEOUT": "0s"}, []string{`PROJECTION_WRITE_TIMEOUT must be a duration in [1ms, 1h0m0s], got "0s"`}},
		{"store write chunk zero", map[string]string{"PROJECTION_WRITE_CHUNK": "0"}, []string{`PROJECTION_WRITE_CHUNK must be an integer in [1, 1000], got "0"`}},
		{"store write chunk too big", map[string]string{"PROJECTION_WRITE_CHUNK": "1001"}, []string{`PROJECTION_WRITE_CHUNK must be an integer in [1, 1000], got "1001"`}},
		{"wait order", map[string]string{"READ_WAIT_DEFAULT": "11s"}, []string{"must not exceed READ_WAIT_MAX"}},
		{"write timeout vs wait", map[string]string{"HTTP_WRITE_TIMEOUT": "10s"}, []string{"HTTP_WRITE_TIMEOUT (10s) must exceed READ_WAIT_MAX"}},
		{"session timeout", map[string]string{"KAFKA_SESSION_TIMEOUT": "1s"}, []string{"KAFKA_SESSION_TIMEOUT must be in [6s, 30m0s]"}},
		{"heartbeat vs session", map[string]string{"KAFKA_SESSION_TIMEOUT": "6s", "KAFKA_HEARTBEAT_INTERVAL": "3s"}, []string{"KAFKA_HEARTBEAT_INTERVAL (3s) must be at most a third of KAFKA_SESSION_TIMEOUT (6s)"}},
		{"rebalance timeout", map[string]string{"KAFKA_REBALANCE_TIMEOUT": "soon"}, []string{"KAFKA_REBALANCE_TIMEOUT"}},
		{
			"all at once",
			map[string]string{
				"KAFKA_TOPIC_PARTITIONS": "x",
				"LOG_LEVEL":              "x",
				"MONGO_URI":              "x",
				"KAFKA_GROUP_ID":         " ",
				"PROJECTION_LINGER":      "0s",
			},
			[]string{"KAFKA_TOPIC_PARTITIONS", "LOG_LEVEL", "MONGO_URI", "PROJECTION_LINGER"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(env(tt.env))
			if err == nil {
				t.Fatalf("Load(%v) error = nil, want one mentioning %q", tt.env, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%v) error = %q, want it to contain %q", tt.env, err, w)
				}
			}
		})
	}
}

// TestLoadKafkaSecurity checks that the KAFKA_TLS_* and KAFKA_SASL_*
// variables reach Config.Kafka, and that a bad combination is reported,
// naming its variable, with the service's other problems (kafkakit's rules
// themselves are tested in kafkakit).
func TestLoadKafkaSecurity(t *testing.T) {
	t.Parallel()
	c, err := load(env(map[string]string{
		"KAFKA_TLS_ENABLED": "true", "KAFKA_TLS_INSECURE_SKIP_VERIFY": "true",
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "reader", "KAFKA_SASL_PASSWORD": "pw",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := kafkakit.Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "companias-query",
		TLS:  kafkakit.TLS{Enabled: true, InsecureSkipVerify: true},
		SASL: kafkakit.SASL{Mechanism: kafkakit.MechanismSCRAMSHA256, Username: "reader", Password: "pw"}}
	if !reflect.DeepEqual(c.Kafka, want) {
		t.Errorf("Kafka = %+v, want %+v", c.Kafka, want)
	}
	if len(c.Kafka.Warnings()) != 1 {
		t.Errorf("Warnings() = %q, want the one about skipping verification", c.Kafka.Warnings())
	}

	_, err = load(env(map[string]string{
		"KAFKA_TLS_CERT_FILE": "/c.pem", // without KAFKA_TLS_ENABLED
		"KAFKA_SASL_USERNAME": "reader", // without KAFKA_SASL_MECHANISM
		"MONGO_URI":           "http://x",
	}))
	if err == nil {
		t.Fatal("Load accepted an inconsistent Kafka security configuration")
	}
	for _, name := range []string{"KAFKA_TLS_CERT_FILE", "KAFKA_SASL_USERNAME", "MONGO_URI"} {
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
	// The topic settings have the command service's names and defaults.
	for name, def := range topics.Variables() {
		if v, ok := vars[name]; !ok || v != def {
			t.Errorf("Variables()[%s] = %q, %v; want %q", name, v, ok, def)
		}
	}
	if vars["KAFKA_BROKERS"] != "127.0.0.1:9092" {
		t.Errorf("KAFKA_BROKERS default = %q, want 127.0.0.1:9092", vars["KAFKA_BROKERS"])
	}
}

// TestLoadReplicationFactorZero checks that 0, the default, is valid: the
// topics get min(3, brokers in the cluster), as in the command service.
func TestLoadReplicationFactorZero(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "0", "32"} {
		if _, err := load(env(map[string]string{"KAFKA_REPLICATION_FACTOR": v})); err != nil {
			t.Errorf("KAFKA_REPLICATION_FACTOR=%q: %v", v, err)
		}
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

func TestLoadAuthHS256(t *testing.T) {
	t.Parallel()
	c, err := load(env(map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": secret32, "AUTH_ISSUER": "https://idp.example", "AUTH_AUDIENCE": "companias-query"}))
	if err != nil || c.Auth != (jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: key32, Issuer: "https://idp.example", Audience: "companias-query"}) {
		t.Fatalf("Load = %#v, %v", c.Auth, err)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, secret32) || strings.Contains(s, string(key32)) || !strings.Contains(s, "[redacted]") {
		t.Errorf("printed config leaks the secret: %s", s)
	}
	c, err = load(env(map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET_FILE": writeFile(t, secret32+"\r\n"), "AUTH_ISSUER": "https://idp.example", "AUTH_AUDIENCE": "companias-query"}))
	if err != nil || c.Auth.HS256Secret != key32 {
		t.Errorf("secret from file = %q, %v", string(c.Auth.HS256Secret), err)
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

func TestLoadMongoURIFile(t *testing.T) {
	t.Parallel()
	const uri = "mongodb://companias:s3cret@mongo:27017/?authSource=admin"
	read := files(map[string]string{"/run/secrets/mongo": uri + "\n", "/run/secrets/crlf": uri + "\r\n", "/run/secrets/raw": uri})
	for _, path := range []string{"/run/secrets/mongo", "/run/secrets/crlf", "/run/secrets/raw"} {
		c, err := config.Load(env(map[string]string{"MONGO_URI_FILE": path}), read)
		if err != nil || c.MongoURI != uri {
			t.Errorf("MONGO_URI_FILE=%s: MongoURI = %q, %v; want %q", path, c.MongoURI, err, uri)
		}
	}
	if c, err := load(env(map[string]string{"MONGO_URI_FILE": writeFile(t, uri+"\n")})); err != nil || c.MongoURI != uri {
		t.Errorf("Load with a real file: MongoURI = %q, %v", c.MongoURI, err)
	}
	c, err := config.Load(env(map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET_FILE": "/jwt", "AUTH_ISSUER": "https://idp.example", "AUTH_AUDIENCE": "companias-query"}), files(map[string]string{"/jwt": secret32 + "\n"}))
	if err != nil || c.Auth.HS256Secret != key32 {
		t.Errorf("secret through readFile = %q, %v", string(c.Auth.HS256Secret), err)
	}
}

func TestLoadMongoURIFileErrors(t *testing.T) {
	t.Parallel()
	read := files(map[string]string{"/mongo": "mongodb://u:pw@mongo/", "/pg": "postgres://u:pw@db/x\n", "/empty": "\n"})
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"both set", map[string]string{"MONGO_URI": "mongodb://m/", "MONGO_URI_FILE": "/mongo"}, []string{"MONGO_URI and MONGO_URI_FILE are both set"}},
		{"unreadable", map[string]string{"MONGO_URI_FILE": "/missing", "LOG_LEVEL": "loud"}, []string{"MONGO_URI_FILE cannot be read", "/missing", "LOG_LEVEL"}},
		{"empty", map[string]string{"MONGO_URI_FILE": "/empty"}, []string{`MONGO_URI_FILE names an empty file "/empty"`}},
		{"not mongodb", map[string]string{"MONGO_URI_FILE": "/pg"}, []string{"MONGO_URI_FILE must start with mongodb:// or mongodb+srv://"}},
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
