// Package config is the only place where the query service reads its
// environment. Load reads every variable once into a typed Config with
// explicit defaults; Validate reports every problem at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// Defaults of every setting. An unset or empty variable takes its default.
const (
	DefaultHTTPAddr              = ":8081"
	DefaultHTTPReadHeaderTimeout = 5 * time.Second
	DefaultHTTPReadTimeout       = 10 * time.Second
	DefaultHTTPWriteTimeout      = 30 * time.Second
	DefaultHTTPIdleTimeout       = 120 * time.Second
	DefaultReadWaitDefault       = 2 * time.Second
	DefaultReadWaitMax           = 10 * time.Second
	DefaultKafkaBrokers          = "127.0.0.1:9092"
	DefaultKafkaEventsTopic      = companiaevent.DefaultTopic
	DefaultKafkaGroupID          = "companias-query"
	DefaultKafkaTopicPartitions  = 6
	DefaultKafkaReplication      = 1
	DefaultMongoURI              = "mongodb://127.0.0.1:27017"
	DefaultMongoDatabase         = "propalpes_query"
	DefaultProjectionBatchSize   = 500
	DefaultProjectionLinger      = 5 * time.Millisecond
	DefaultShutdownTimeout       = 10 * time.Second
	DefaultLogLevel              = slog.LevelInfo
	DefaultOTELServiceName       = "companias-query"
	DefaultOTELSampleRatio       = 1.0
)

// Config is the whole configuration of the query service. Build it with
// Load; the zero value is not valid.
type Config struct {
	// HTTPAddr is the listen address of the HTTP API (HTTP_ADDR).
	HTTPAddr string
	// HTTPReadHeaderTimeout, HTTPReadTimeout, HTTPWriteTimeout and
	// HTTPIdleTimeout are the http.Server timeouts (HTTP_READ_HEADER_TIMEOUT,
	// HTTP_READ_TIMEOUT, HTTP_WRITE_TIMEOUT, HTTP_IDLE_TIMEOUT). The write
	// timeout must exceed ReadWaitMax, or a read-your-writes wait would be
	// cut off before it can answer.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPWriteTimeout      time.Duration
	HTTPIdleTimeout       time.Duration
	// ReadWaitDefault is how long GET /v1/companias/{id}?min_version=N waits
	// when the request gives no wait (READ_WAIT_DEFAULT); ReadWaitMax is the
	// largest wait a request may ask for (READ_WAIT_MAX).
	ReadWaitDefault time.Duration
	ReadWaitMax     time.Duration

	// KafkaBrokers are the bootstrap brokers (KAFKA_BROKERS, comma-separated).
	KafkaBrokers []string
	// KafkaEventsTopic is the integration-event topic (KAFKA_EVENTS_TOPIC).
	KafkaEventsTopic string
	// KafkaEventsDLQTopic is the dead-letter topic of the projection
	// (KAFKA_EVENTS_DLQ_TOPIC, default deadletter.Topic(KafkaEventsTopic)).
	KafkaEventsDLQTopic string
	// KafkaGroupID is the consumer group of the projection (KAFKA_GROUP_ID).
	KafkaGroupID string
	// KafkaTopicPartitions is the partition count used when the service
	// creates a missing topic (KAFKA_TOPIC_PARTITIONS); existing topics are
	// left as they are.
	KafkaTopicPartitions int
	// KafkaReplicationFactor is the replication factor used when the service
	// creates a missing topic (KAFKA_REPLICATION_FACTOR).
	KafkaReplicationFactor int

	// MongoURI is the MongoDB connection string: MONGO_URI, or the content
	// of the file MONGO_URI_FILE (one trailing newline removed); setting
	// both is an error.
	MongoURI string
	// MongoDatabase holds the view collections (MONGO_DATABASE).
	MongoDatabase string

	// ProjectionBatchSize is the most events the consumer applies in one
	// store write (PROJECTION_BATCH_SIZE).
	ProjectionBatchSize int
	// ProjectionLinger is how long the consumer waits to fill a batch once it
	// holds at least one event (PROJECTION_LINGER).
	ProjectionLinger time.Duration

	// ShutdownTimeout bounds the graceful shutdown (SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// LogLevel is the slog level: debug, info, warn or error (LOG_LEVEL).
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
	// (OTEL_TRACES_SAMPLER_ARG); spans with a parent follow its sampled flag
	// (parent-based sampling).
	SampleRatio float64
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.Endpoint != "" }

// AuthMode selects how the HTTP API authenticates requests.
type AuthMode string

// The authentication modes (AUTH_MODE).
const (
	// AuthNone checks no token: the API is open (the default).
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

// Load reads the configuration through getenv (os.Getenv in main, a map in
// tests) and validates it; the *_FILE variables name files read with
// os.ReadFile. It returns the Config together with an error that joins
// every unparsable or invalid setting.
func Load(getenv func(string) string) (Config, error) {
	return LoadFiles(getenv, os.ReadFile)
}

// LoadFiles is Load with readFile reading the files named by the *_FILE
// variables (MONGO_URI_FILE, AUTH_HS256_SECRET_FILE), so that tests need no
// files. A file that cannot be read is reported with the other errors.
func LoadFiles(getenv func(string) string, readFile func(string) ([]byte, error)) (Config, error) {
	p := parser{getenv: getenv, readFile: readFile}
	c := Config{
		HTTPAddr:               p.str("HTTP_ADDR", DefaultHTTPAddr),
		HTTPReadHeaderTimeout:  p.duration("HTTP_READ_HEADER_TIMEOUT", DefaultHTTPReadHeaderTimeout),
		HTTPReadTimeout:        p.duration("HTTP_READ_TIMEOUT", DefaultHTTPReadTimeout),
		HTTPWriteTimeout:       p.duration("HTTP_WRITE_TIMEOUT", DefaultHTTPWriteTimeout),
		HTTPIdleTimeout:        p.duration("HTTP_IDLE_TIMEOUT", DefaultHTTPIdleTimeout),
		ReadWaitDefault:        p.duration("READ_WAIT_DEFAULT", DefaultReadWaitDefault),
		ReadWaitMax:            p.duration("READ_WAIT_MAX", DefaultReadWaitMax),
		KafkaBrokers:           p.list("KAFKA_BROKERS", DefaultKafkaBrokers),
		KafkaEventsTopic:       p.str("KAFKA_EVENTS_TOPIC", DefaultKafkaEventsTopic),
		KafkaGroupID:           p.str("KAFKA_GROUP_ID", DefaultKafkaGroupID),
		KafkaTopicPartitions:   p.integer("KAFKA_TOPIC_PARTITIONS", DefaultKafkaTopicPartitions),
		KafkaReplicationFactor: p.integer("KAFKA_REPLICATION_FACTOR", DefaultKafkaReplication),
		MongoURI:               p.str("MONGO_URI", DefaultMongoURI),
		MongoDatabase:          p.str("MONGO_DATABASE", DefaultMongoDatabase),
		ProjectionBatchSize:    p.integer("PROJECTION_BATCH_SIZE", DefaultProjectionBatchSize),
		ProjectionLinger:       p.duration("PROJECTION_LINGER", DefaultProjectionLinger),
		ShutdownTimeout:        p.duration("SHUTDOWN_TIMEOUT", DefaultShutdownTimeout),
		LogLevel:               p.level("LOG_LEVEL", DefaultLogLevel),
		Auth:                   p.auth(),
		Tracing: Tracing{
			Endpoint:    p.otlpEndpoint(),
			ServiceName: p.str("OTEL_SERVICE_NAME", DefaultOTELServiceName),
			SampleRatio: p.float("OTEL_TRACES_SAMPLER_ARG", DefaultOTELSampleRatio),
		},
	}
	if file, ok := p.raw("MONGO_URI_FILE"); ok {
		c.MongoURI = p.fromFile("MONGO_URI", file, c.MongoURI)
	}
	c.KafkaEventsDLQTopic = p.str("KAFKA_EVENTS_DLQ_TOPIC", deadletter.Topic(c.KafkaEventsTopic))
	return c, errors.Join(append(p.errs, c.Validate())...)
}

// Validate reports every invalid setting, joined into one error, or nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(c.HTTPAddr) == "" {
		bad("HTTP_ADDR must not be empty")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HTTP_READ_HEADER_TIMEOUT", c.HTTPReadHeaderTimeout},
		{"HTTP_READ_TIMEOUT", c.HTTPReadTimeout},
		{"HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout},
		{"HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout},
		{"READ_WAIT_DEFAULT", c.ReadWaitDefault},
		{"READ_WAIT_MAX", c.ReadWaitMax},
		{"PROJECTION_LINGER", c.ProjectionLinger},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
	} {
		if d.v <= 0 {
			bad("%s must be positive, got %s", d.name, d.v)
		}
	}
	if c.ReadWaitDefault > c.ReadWaitMax {
		bad("READ_WAIT_DEFAULT (%s) must not exceed READ_WAIT_MAX (%s)", c.ReadWaitDefault, c.ReadWaitMax)
	}
	if c.HTTPWriteTimeout > 0 && c.HTTPWriteTimeout <= c.ReadWaitMax {
		bad("HTTP_WRITE_TIMEOUT (%s) must exceed READ_WAIT_MAX (%s)", c.HTTPWriteTimeout, c.ReadWaitMax)
	}
	if len(c.KafkaBrokers) == 0 {
		bad("KAFKA_BROKERS must list at least one broker")
	}
	for _, b := range c.KafkaBrokers {
		if !validHostPort(b) {
			bad("KAFKA_BROKERS: %q is not host:port", b)
		}
	}
	for _, t := range []struct{ name, v string }{
		{"KAFKA_EVENTS_TOPIC", c.KafkaEventsTopic},
		{"KAFKA_EVENTS_DLQ_TOPIC", c.KafkaEventsDLQTopic},
	} {
		if err := checkTopic(t.v); err != nil {
			bad("%s: %w", t.name, err)
		}
	}
	if c.KafkaEventsTopic != "" && c.KafkaEventsTopic == c.KafkaEventsDLQTopic {
		bad("KAFKA_EVENTS_DLQ_TOPIC must differ from KAFKA_EVENTS_TOPIC")
	}
	if strings.TrimSpace(c.KafkaGroupID) == "" {
		bad("KAFKA_GROUP_ID must not be empty")
	}
	if c.KafkaTopicPartitions < 1 || c.KafkaTopicPartitions > 1000 {
		bad("KAFKA_TOPIC_PARTITIONS must be in 1..1000, got %d", c.KafkaTopicPartitions)
	}
	if c.KafkaReplicationFactor < 1 || c.KafkaReplicationFactor > 32 {
		bad("KAFKA_REPLICATION_FACTOR must be in 1..32, got %d", c.KafkaReplicationFactor)
	}
	if !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		bad("MONGO_URI must start with mongodb:// or mongodb+srv://")
	}
	if err := checkDatabase(c.MongoDatabase); err != nil {
		bad("MONGO_DATABASE: %w", err)
	}
	if c.ProjectionBatchSize < 1 || c.ProjectionBatchSize > 10000 {
		bad("PROJECTION_BATCH_SIZE must be in 1..10000, got %d", c.ProjectionBatchSize)
	}
	switch c.LogLevel {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		bad("LOG_LEVEL %s is not one of debug, info, warn, error", c.LogLevel)
	}
	errs = append(errs, c.Auth.validate()...)
	if !(c.Tracing.SampleRatio >= 0 && c.Tracing.SampleRatio <= 1) {
		bad("OTEL_TRACES_SAMPLER_ARG must be a ratio in [0, 1], got %v", c.Tracing.SampleRatio)
	}
	if c.Tracing.Enabled() && strings.TrimSpace(c.Tracing.ServiceName) == "" {
		bad("OTEL_SERVICE_NAME must not be empty")
	}
	if c.Tracing.Enabled() && !otlpURL(c.Tracing.Endpoint) {
		bad("the OTLP traces endpoint must be an http(s) URL, got %q", c.Tracing.Endpoint)
	}
	return errors.Join(errs...)
}

// validate reports every inconsistency of the AUTH_* settings: an unknown
// mode, a missing or short secret, a missing or malformed JWKS URL, and
// settings that belong to another mode.
func (a Auth) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch a.Mode {
	case AuthNone:
		for _, v := range [][2]string{{"AUTH_HS256_SECRET", string(a.HS256Secret)}, {"AUTH_JWKS_URL", a.JWKSURL}, {"AUTH_ISSUER", a.Issuer}, {"AUTH_AUDIENCE", a.Audience}} {
			if v[1] != "" {
				bad("%s is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)", v[0])
			}
		}
	case AuthHS256:
		if a.HS256Secret == "" {
			bad("AUTH_HS256_SECRET or AUTH_HS256_SECRET_FILE is required with AUTH_MODE=hs256")
		} else if len(a.HS256Secret) < MinAuthSecretLen {
			bad("AUTH_HS256_SECRET must hold at least %d bytes, got %d", MinAuthSecretLen, len(a.HS256Secret))
		}
		if a.JWKSURL != "" {
			bad("AUTH_JWKS_URL is only used with AUTH_MODE=jwks")
		}
	case AuthJWKS:
		if a.JWKSURL == "" {
			bad("AUTH_JWKS_URL is required with AUTH_MODE=jwks")
		} else if u, err := url.Parse(a.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("AUTH_JWKS_URL must be an absolute http(s) URL, got %q", a.JWKSURL)
		}
		if a.HS256Secret != "" {
			bad("AUTH_HS256_SECRET is only used with AUTH_MODE=hs256")
		}
	default:
		bad("AUTH_MODE must be none, hs256 or jwks, got %q", string(a.Mode))
	}
	return errs
}

// parser collects every parse error instead of stopping at the first.
type parser struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	errs     []error
}

func (p *parser) raw(name string) (string, bool) {
	v := strings.TrimSpace(p.getenv(name))
	return v, v != ""
}

func (p *parser) str(name, def string) string {
	if v, ok := p.raw(name); ok {
		return v
	}
	return def
}

// fromFile returns the content of file, with one trailing newline removed,
// as the value of the variable name, whose name+"_FILE" variable named the
// file. Setting name too, an unreadable file and an empty file are errors
// (and return def); the value itself is never put in an error.
func (p *parser) fromFile(name, file, def string) string {
	if _, set := p.raw(name); set {
		p.errs = append(p.errs, fmt.Errorf("%s and %s_FILE are both set; set one", name, name))
		return def
	}
	b, err := p.readFile(file)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s_FILE cannot be read: %w", name, err))
		return def
	}
	v := trimNewline(string(b))
	if v == "" {
		p.errs = append(p.errs, fmt.Errorf("%s_FILE names an empty file %q", name, file))
		return def
	}
	return v
}

// trimNewline removes one trailing newline ("\n" or "\r\n").
func trimNewline(s string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}

func (p *parser) list(name, def string) []string {
	v := p.str(name, def)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) integer(name string, def int) int {
	v, ok := p.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not an integer", name, v))
		return def
	}
	return n
}

func (p *parser) float(name string, def float64) float64 {
	v, ok := p.raw(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not a number", name, v))
		return def
	}
	return f
}

// otlpEndpoint returns the OTLP/HTTP traces URL:
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or else
// OTEL_EXPORTER_OTLP_ENDPOINT with "/v1/traces" appended, or "" (tracing
// off). A value that is not an http(s) URL is an error naming its variable.
func (p *parser) otlpEndpoint() string {
	traces, _ := p.raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	base, _ := p.raw("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case traces != "":
		if !otlpURL(traces) {
			p.errs = append(p.errs, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s) URL, got %q", traces))
			return ""
		}
		return traces
	case base != "":
		if !otlpURL(base) {
			p.errs = append(p.errs, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got %q", base))
			return ""
		}
		return strings.TrimSuffix(base, "/") + "/v1/traces"
	}
	return ""
}

// otlpURL reports whether v is an absolute http(s) URL with a host and no
// query or fragment.
func otlpURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v, ok := p.raw(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("%s: %q is not a duration such as 500ms or 10s", name, v))
		return def
	}
	return d
}

func (p *parser) level(name string, def slog.Level) slog.Level {
	v, ok := p.raw(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %q is not one of debug, info, warn, error", name, v))
	return def
}

func validHostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return false
	}
	port, err := strconv.Atoi(s[i+1:])
	return err == nil && port > 0 && port < 65536
}

// checkTopic applies Kafka's topic-name rules: 1..249 characters of
// [a-zA-Z0-9._-], and not "." or "..".
func checkTopic(t string) error {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return fmt.Errorf("topic name %q must have 1 to 249 characters and must not be a dot or two dots", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q may only contain letters, digits, '.', '_' and '-'", t)
		}
	}
	return nil
}

// checkDatabase applies MongoDB's database-name rules.
func checkDatabase(db string) error {
	if db == "" || len(db) > 63 {
		return fmt.Errorf("database name %q must have 1..63 characters", db)
	}
	if strings.ContainsAny(db, "/\\. \"$*<>:|?\x00") {
		return fmt.Errorf("database name %q contains a character MongoDB forbids", db)
	}
	return nil
}

// auth reads the AUTH_* variables; Validate checks them. The secret comes
// from AUTH_HS256_SECRET or from the file AUTH_HS256_SECRET_FILE, not both.
func (p *parser) auth() Auth {
	a := Auth{
		Mode:     AuthMode(strings.ToLower(p.str("AUTH_MODE", string(AuthNone)))),
		JWKSURL:  p.str("AUTH_JWKS_URL", ""),
		Issuer:   p.str("AUTH_ISSUER", ""),
		Audience: p.str("AUTH_AUDIENCE", ""),
	}
	secret := p.getenv("AUTH_HS256_SECRET")
	if file, ok := p.raw("AUTH_HS256_SECRET_FILE"); ok {
		if secret != "" {
			p.errs = append(p.errs, errors.New("AUTH_HS256_SECRET and AUTH_HS256_SECRET_FILE are both set; set one"))
		}
		b, err := p.readFile(file)
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("AUTH_HS256_SECRET_FILE cannot be read: %w", err))
		}
		secret = trimNewline(string(b))
	}
	a.HS256Secret = Secret(secret)
	return a
}
