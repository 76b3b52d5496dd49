// Package config reads the command service's configuration from the
// environment, once, at start-up. It is the only package that reads
// environment variables; Load reports every problem at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// Config is the complete configuration of the command service.
type Config struct {
	// HTTPAddr is the listen address of the HTTP API (HTTP_ADDR).
	HTTPAddr string
	// DatabaseURL is the PostgreSQL connection string: DATABASE_URL, or the
	// content of the file DATABASE_URL_FILE (one trailing newline removed);
	// setting both is an error.
	DatabaseURL string
	// KafkaBrokers are the bootstrap brokers (KAFKA_BROKERS, comma-separated).
	KafkaBrokers []string
	// EventsTopic receives the integration events (KAFKA_EVENTS_TOPIC).
	EventsTopic string
	// CommandsTopic carries CrearCompania commands (KAFKA_COMMANDS_TOPIC).
	CommandsTopic string
	// CommandsDLQTopic receives rejected commands (KAFKA_COMMANDS_DLQ_TOPIC).
	CommandsDLQTopic string
	// CommandsGroupID is the consumer group of the command intake (KAFKA_COMMANDS_GROUP_ID).
	CommandsGroupID string
	// CommandsIntake enables the Kafka command intake (KAFKA_COMMANDS_ENABLED).
	CommandsIntake bool
	// TopicPartitions is the partition count used when the service creates
	// missing topics at start-up (KAFKA_TOPIC_PARTITIONS).
	TopicPartitions int
	// CreateTopics makes the service create missing topics at start-up (KAFKA_CREATE_TOPICS).
	CreateTopics bool
	// OutboxBatchSize is the most outbox rows published per Kafka write (OUTBOX_BATCH_SIZE).
	OutboxBatchSize int
	// OutboxPollInterval is the relay's polling fallback when no NOTIFY arrives (OUTBOX_POLL_INTERVAL).
	OutboxPollInterval time.Duration
	// OutboxBatchTimeout is the kafka-go Writer BatchTimeout (OUTBOX_BATCH_TIMEOUT).
	OutboxBatchTimeout time.Duration
	// OutboxRetention is how long published rows are kept before pruning (OUTBOX_RETENTION).
	OutboxRetention time.Duration
	// IdempotencyRetention is how long idempotency records are kept (IDEMPOTENCY_RETENTION).
	IdempotencyRetention time.Duration
	// ShutdownTimeout bounds the graceful stop (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error (LOG_LEVEL).
	LogLevel slog.Level
	// Auth configures bearer-token authentication of the HTTP API (AUTH_*).
	Auth Auth
	// Tracing configures OpenTelemetry tracing (OTEL_*); off by default.
	Tracing Tracing
}

// Tracing is the OpenTelemetry tracing configuration. Spans are exported
// over OTLP/HTTP only when an endpoint is set.
type Tracing struct {
	// Endpoint is the full OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// as given, or else OTEL_EXPORTER_OTLP_ENDPOINT (a base URL) with
	// "/v1/traces" appended, as the OpenTelemetry specification says. ""
	// (neither set) turns tracing off.
	Endpoint string
	// ServiceName is the service.name of the spans (OTEL_SERVICE_NAME).
	ServiceName string
	// SampleRatio is the share of new traces sampled, in [0, 1]
	// (OTEL_TRACES_SAMPLER_ARG); requests that come with a trace context
	// follow its sampled flag (parent-based sampling).
	SampleRatio float64
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.Endpoint != "" }

// AuthMode selects how the HTTP API authenticates requests.
type AuthMode string

// The authentication modes (AUTH_MODE).
const (
	// AuthNone checks no token: the API is open (development only).
	AuthNone AuthMode = "none"
	// AuthHS256 verifies HS256 tokens with a shared secret.
	AuthHS256 AuthMode = "hs256"
	// AuthJWKS verifies RS256 and ES256 tokens with the keys of a JWKS URL.
	AuthJWKS AuthMode = "jwks"
)

// MinAuthSecretLen is the shortest HS256 secret accepted, in bytes.
const MinAuthSecretLen = 32

// Auth is the bearer-token configuration.
type Auth struct {
	// Mode is none, hs256 or jwks (AUTH_MODE, default none).
	Mode AuthMode
	// HS256Secret is the shared secret of mode hs256: AUTH_HS256_SECRET, or
	// the content of the file AUTH_HS256_SECRET_FILE (one trailing newline
	// removed); at least MinAuthSecretLen bytes.
	HS256Secret Secret
	// JWKSURL is the http(s) URL of the key set of mode jwks (AUTH_JWKS_URL).
	JWKSURL string
	// Issuer, if set, must equal the tokens' iss claim (AUTH_ISSUER).
	Issuer string
	// Audience, if set, must be one of the tokens' aud values (AUTH_AUDIENCE).
	Audience string
}

// Secret is a confidential string. It formats and logs as "[redacted]", so
// that printing a Config does not leak it; convert it to use the value.
type Secret string

// String returns "[redacted]".
func (Secret) String() string { return "[redacted]" }

// GoString returns "[redacted]" (for %#v).
func (Secret) GoString() string { return "[redacted]" }

// LogValue implements slog.LogValuer with "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Defaults are the values used for unset variables.
var defaults = map[string]string{
	"HTTP_ADDR":                ":8080",
	"DATABASE_URL":             "postgres://postgres@127.0.0.1:5432/propalpes?sslmode=disable",
	"DATABASE_URL_FILE":        "",
	"KAFKA_BROKERS":            "127.0.0.1:9092",
	"KAFKA_EVENTS_TOPIC":       companiaevent.DefaultTopic,
	"KAFKA_COMMANDS_TOPIC":     companiacmd.DefaultTopic,
	"KAFKA_COMMANDS_DLQ_TOPIC": "", // derived from KAFKA_COMMANDS_TOPIC
	"KAFKA_COMMANDS_GROUP_ID":  "companias-command",
	"KAFKA_COMMANDS_ENABLED":   "true",
	"KAFKA_TOPIC_PARTITIONS":   "6",
	"KAFKA_CREATE_TOPICS":      "true",
	"OUTBOX_BATCH_SIZE":        "500",
	"OUTBOX_POLL_INTERVAL":     "1s",
	"OUTBOX_BATCH_TIMEOUT":     "1ms",
	"OUTBOX_RETENTION":         "24h",
	"IDEMPOTENCY_RETENTION":    "24h",
	"SHUTDOWN_TIMEOUT":         "10s",
	"LOG_LEVEL":                "info",
	"AUTH_MODE":                string(AuthNone),
	"AUTH_HS256_SECRET":        "",
	"AUTH_HS256_SECRET_FILE":   "",
	"AUTH_JWKS_URL":            "",
	"AUTH_ISSUER":              "",
	"AUTH_AUDIENCE":            "",

	"OTEL_EXPORTER_OTLP_ENDPOINT":        "",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
	"OTEL_SERVICE_NAME":                  "companias-command",
	"OTEL_TRACES_SAMPLER_ARG":            "1.0",
}

// Variables lists every environment variable the service reads
// with its default ("" when it has none or is derived).
func Variables() map[string]string {
	out := make(map[string]string, len(defaults))
	for k, v := range defaults {
		out[k] = v
	}
	return out
}

// Load reads the configuration through getenv (os.Getenv in main) and
// validates it; the *_FILE variables name files read with os.ReadFile. The
// error lists every invalid variable.
func Load(getenv func(string) string) (Config, error) {
	return LoadFiles(getenv, os.ReadFile)
}

// LoadFiles is Load with readFile reading the files named by the *_FILE
// variables (DATABASE_URL_FILE, AUTH_HS256_SECRET_FILE), so that tests need
// no files. A file that cannot be read is reported with the other errors.
func LoadFiles(getenv func(string) string, readFile func(string) ([]byte, error)) (Config, error) {
	p := parser{getenv: getenv, readFile: readFile}
	dbVar := "DATABASE_URL"
	if p.raw("DATABASE_URL_FILE") != "" {
		dbVar = "DATABASE_URL_FILE"
	}
	c := Config{
		HTTPAddr:             p.addr("HTTP_ADDR"),
		DatabaseURL:          p.strOrFile("DATABASE_URL"),
		KafkaBrokers:         p.list("KAFKA_BROKERS"),
		EventsTopic:          p.topic("KAFKA_EVENTS_TOPIC"),
		CommandsTopic:        p.topic("KAFKA_COMMANDS_TOPIC"),
		CommandsGroupID:      p.str("KAFKA_COMMANDS_GROUP_ID"),
		CommandsIntake:       p.boolean("KAFKA_COMMANDS_ENABLED"),
		TopicPartitions:      p.intRange("KAFKA_TOPIC_PARTITIONS", 1, 10000),
		CreateTopics:         p.boolean("KAFKA_CREATE_TOPICS"),
		OutboxBatchSize:      p.intRange("OUTBOX_BATCH_SIZE", 1, 10000),
		OutboxPollInterval:   p.duration("OUTBOX_POLL_INTERVAL", 10*time.Millisecond, time.Hour),
		OutboxBatchTimeout:   p.duration("OUTBOX_BATCH_TIMEOUT", time.Millisecond, 10*time.Second),
		OutboxRetention:      p.duration("OUTBOX_RETENTION", time.Minute, 365*24*time.Hour),
		IdempotencyRetention: p.duration("IDEMPOTENCY_RETENTION", time.Minute, 365*24*time.Hour),
		ShutdownTimeout:      p.duration("SHUTDOWN_TIMEOUT", time.Second, 10*time.Minute),
		LogLevel:             p.level("LOG_LEVEL"),
		Auth:                 p.auth(),
		Tracing:              p.tracing(),
	}
	c.CommandsDLQTopic = deadletter.Topic(c.CommandsTopic)
	if v := getenv("KAFKA_COMMANDS_DLQ_TOPIC"); v != "" {
		c.CommandsDLQTopic = p.topic("KAFKA_COMMANDS_DLQ_TOPIC")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		p.fail(dbVar, "must be a postgres:// URL")
	}
	if c.CommandsTopic != "" && (c.CommandsTopic == c.EventsTopic || c.CommandsDLQTopic == c.CommandsTopic) {
		p.fail("KAFKA_COMMANDS_TOPIC", "must differ from KAFKA_EVENTS_TOPIC and KAFKA_COMMANDS_DLQ_TOPIC")
	}
	if len(p.errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %w", errors.Join(p.errs...))
	}
	return c, nil
}

type parser struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	errs     []error
}

func (p *parser) fail(name, msg string) { p.errs = append(p.errs, fmt.Errorf("%s %s", name, msg)) }

func (p *parser) raw(name string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return defaults[name]
}

func (p *parser) str(name string) string {
	v := p.raw(name)
	if v == "" {
		p.fail(name, "is required")
	}
	return v
}

// strOrFile reads name, or the content of the file named by name+"_FILE"
// with one trailing newline removed. Setting both, an unreadable file and an
// empty value are errors; the value itself is never put in an error.
func (p *parser) strOrFile(name string) string {
	file := p.raw(name + "_FILE")
	if file == "" {
		return p.str(name)
	}
	if strings.TrimSpace(p.getenv(name)) != "" {
		p.fail(name, fmt.Sprintf("and %s_FILE are both set; set one", name))
		return ""
	}
	b, err := p.readFile(file)
	if err != nil {
		p.fail(name+"_FILE", fmt.Sprintf("cannot be read: %v", err))
		return ""
	}
	v := trimNewline(string(b))
	if v == "" {
		p.fail(name+"_FILE", fmt.Sprintf("names an empty file %q", file))
	}
	return v
}

// trimNewline removes one trailing newline ("\n" or "\r\n").
func trimNewline(s string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}

func (p *parser) addr(name string) string {
	v := p.str(name)
	if _, port, err := net.SplitHostPort(v); v != "" && (err != nil || port == "") {
		p.fail(name, fmt.Sprintf("must be host:port, got %q", v))
	}
	return v
}

func (p *parser) list(name string) []string {
	var out []string
	for _, s := range strings.Split(p.str(name), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			p.fail(name, fmt.Sprintf("entry %q must be host:port", s))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		p.fail(name, "needs at least one host:port")
	}
	return out
}

func (p *parser) topic(name string) string {
	v := p.str(name)
	if len(v) > 249 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || v == "." || v == ".." {
		p.fail(name, fmt.Sprintf("is not a valid Kafka topic name: %q", v))
	}
	return v
}

func (p *parser) boolean(name string) bool {
	b, err := strconv.ParseBool(p.raw(name))
	if err != nil {
		p.fail(name, fmt.Sprintf("must be true or false, got %q", p.raw(name)))
	}
	return b
}

func (p *parser) intRange(name string, lo, hi int) int {
	n, err := strconv.Atoi(p.raw(name))
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("must be an integer in [%d, %d], got %q", lo, hi, p.raw(name)))
	}
	return n
}

func (p *parser) duration(name string, lo, hi time.Duration) time.Duration {
	d, err := time.ParseDuration(p.raw(name))
	if err != nil || d < lo || d > hi {
		p.fail(name, fmt.Sprintf("must be a duration in [%s, %s], got %q", lo, hi, p.raw(name)))
	}
	return d
}

func (p *parser) level(name string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(p.raw(name))); err != nil {
		p.fail(name, fmt.Sprintf("must be debug, info, warn or error, got %q", p.raw(name)))
	}
	return l
}

// auth reads the AUTH_* variables and reports every inconsistency: an
// unknown mode, a missing or short secret, both a secret and a secret file,
// a missing or malformed JWKS URL, and settings of another mode.
func (p *parser) auth() Auth {
	a := Auth{
		Mode:     AuthMode(strings.ToLower(p.raw("AUTH_MODE"))),
		JWKSURL:  p.raw("AUTH_JWKS_URL"),
		Issuer:   p.raw("AUTH_ISSUER"),
		Audience: p.raw("AUTH_AUDIENCE"),
	}
	secret, file := p.getenv("AUTH_HS256_SECRET"), p.raw("AUTH_HS256_SECRET_FILE")
	readFailed := false
	switch {
	case secret != "" && file != "":
		p.fail("AUTH_HS256_SECRET", "and AUTH_HS256_SECRET_FILE are both set; set one")
	case file != "":
		b, err := p.readFile(file)
		if err != nil {
			p.fail("AUTH_HS256_SECRET_FILE", fmt.Sprintf("cannot be read: %v", err))
			readFailed = true
		}
		secret = trimNewline(string(b))
	}
	a.HS256Secret = Secret(secret)
	secretName := "AUTH_HS256_SECRET"
	if file != "" {
		secretName = "AUTH_HS256_SECRET_FILE"
	}
	switch a.Mode {
	case AuthNone:
		for _, v := range [][2]string{{secretName, secret + file}, {"AUTH_JWKS_URL", a.JWKSURL}, {"AUTH_ISSUER", a.Issuer}, {"AUTH_AUDIENCE", a.Audience}} {
			if v[1] != "" {
				p.fail(v[0], "is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)")
			}
		}
	case AuthHS256:
		if secret == "" && file == "" {
			p.fail("AUTH_HS256_SECRET", "or AUTH_HS256_SECRET_FILE is required with AUTH_MODE=hs256")
		} else if !readFailed && len(secret) < MinAuthSecretLen {
			p.fail(secretName, fmt.Sprintf("must hold at least %d bytes, got %d", MinAuthSecretLen, len(secret)))
		}
		if a.JWKSURL != "" {
			p.fail("AUTH_JWKS_URL", "is only used with AUTH_MODE=jwks")
		}
	case AuthJWKS:
		if a.JWKSURL == "" {
			p.fail("AUTH_JWKS_URL", "is required with AUTH_MODE=jwks")
		} else if u, err := url.Parse(a.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.fail("AUTH_JWKS_URL", fmt.Sprintf("must be an absolute http(s) URL, got %q", a.JWKSURL))
		}
		if secret != "" || file != "" {
			p.fail(secretName, "is only used with AUTH_MODE=hs256")
		}
	default:
		p.fail("AUTH_MODE", fmt.Sprintf("must be none, hs256 or jwks, got %q", p.raw("AUTH_MODE")))
	}
	return a
}

// tracing reads the OTEL_* variables. Tracing stays off unless an OTLP
// endpoint is set; the endpoints must be absolute http(s) URLs and the
// sampler argument a ratio in [0, 1].
func (p *parser) tracing() Tracing {
	t := Tracing{ServiceName: p.raw("OTEL_SERVICE_NAME")}
	ratio, err := strconv.ParseFloat(p.raw("OTEL_TRACES_SAMPLER_ARG"), 64)
	if err != nil || !(ratio >= 0 && ratio <= 1) {
		p.fail("OTEL_TRACES_SAMPLER_ARG", fmt.Sprintf("must be a ratio in [0, 1], got %q", p.raw("OTEL_TRACES_SAMPLER_ARG")))
	}
	t.SampleRatio = ratio
	if v := p.raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		if otlpURL(v) {
			t.Endpoint = v
		} else {
			p.fail("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", fmt.Sprintf("must be an http(s) URL, got %q", v))
		}
	} else if v := p.raw("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		if otlpURL(v) {
			t.Endpoint = strings.TrimSuffix(v, "/") + "/v1/traces"
		} else {
			p.fail("OTEL_EXPORTER_OTLP_ENDPOINT", fmt.Sprintf("must be an http(s) URL, got %q", v))
		}
	}
	return t
}

// otlpURL reports whether v is an absolute http(s) URL with a host and no
// query or fragment.
func otlpURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
}
