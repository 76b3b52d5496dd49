package envconfig_test

import (
	"errors"
	"io/fs"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// files is a hermetic readFile: the content of each known path, fs.ErrNotExist otherwise.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if v, ok := m[name]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func newParser(vars map[string]string, defaults map[string]string) *envconfig.Parser {
	return envconfig.New(env(vars), files(map[string]string{
		"/s/nl": "value\n", "/s/crlf": "value\r\n", "/s/empty": "\n",
	}), defaults)
}

func TestParserValues(t *testing.T) {
	t.Parallel()
	defs := map[string]string{"D": "def", "N": "7", "B": "true", "DUR": "1s", "L": "info", "F": "0.5", "LIST": "a:1"}
	tests := []struct {
		name string
		vars map[string]string
		get  func(p *envconfig.Parser) any
		want any
	}{
		{"raw trims", map[string]string{"X": "  v  "}, func(p *envconfig.Parser) any { return p.Raw("X") }, "v"},
		{"raw default", map[string]string{"D": "  "}, func(p *envconfig.Parser) any { return p.Raw("D") }, "def"},
		{"raw no default", nil, func(p *envconfig.Parser) any { return p.Raw("X") }, ""},
		{"is set", map[string]string{"X": "v"}, func(p *envconfig.Parser) any { return p.IsSet("X") }, true},
		{"default is not set", nil, func(p *envconfig.Parser) any { return p.IsSet("D") }, false},
		{"str", map[string]string{"X": "v"}, func(p *envconfig.Parser) any { return p.Str("X") }, "v"},
		{"addr", map[string]string{"X": ":8080"}, func(p *envconfig.Parser) any { return p.Addr("X") }, ":8080"},
		{"list", map[string]string{"X": " a:1 , b:2 ,"}, func(p *envconfig.Parser) any { return p.List("X") }, []string{"a:1", "b:2"}},
		{"topic", map[string]string{"X": "a.b_c-D9"}, func(p *envconfig.Parser) any { return p.Topic("X") }, "a.b_c-D9"},
		{"bool", map[string]string{"X": "FALSE"}, func(p *envconfig.Parser) any { return p.Bool("X") }, false},
		{"bool default", nil, func(p *envconfig.Parser) any { return p.Bool("B") }, true},
		{"int", map[string]string{"X": "-3"}, func(p *envconfig.Parser) any { return p.Int("X") }, -3},
		{"int range", map[string]string{"X": "10"}, func(p *envconfig.Parser) any { return p.IntRange("X", 1, 10) }, 10},
		{"float", map[string]string{"X": "2.5"}, func(p *envconfig.Parser) any { return p.Float("X") }, 2.5},
		{"ratio", map[string]string{"X": "0"}, func(p *envconfig.Parser) any { return p.Ratio("X") }, 0.0},
		{"duration", map[string]string{"X": "-1s"}, func(p *envconfig.Parser) any { return p.Duration("X") }, -time.Second},
		{"duration range", map[string]string{"X": "1m"}, func(p *envconfig.Parser) any { return p.DurationRange("X", time.Second, time.Minute) }, time.Minute},
		{"level", map[string]string{"X": "DEBUG"}, func(p *envconfig.Parser) any { return p.Level("X") }, slog.LevelDebug},
		{"level warning", map[string]string{"X": "Warning"}, func(p *envconfig.Parser) any { return p.Level("X") }, slog.LevelWarn},
		{"secret url", map[string]string{"X": "postgresql://db/x"}, func(p *envconfig.Parser) any { return p.SecretURL("X", "postgres://", "postgresql://") }, "postgresql://db/x"},
		{"level offset", map[string]string{"X": "info+2"}, func(p *envconfig.Parser) any { return p.Level("X") }, slog.Level(2)},
		{"secret", map[string]string{"X": "v"}, func(p *envconfig.Parser) any { return p.Secret("X") }, "v"},
		{"secret file", map[string]string{"X_FILE": "/s/nl"}, func(p *envconfig.Parser) any { return p.Secret("X") }, "value"},
		{"secret file crlf", map[string]string{"X_FILE": "/s/crlf"}, func(p *envconfig.Parser) any { return p.Secret("X") }, "value"},
		{"otlp none", nil, func(p *envconfig.Parser) any { return p.OTLPTracesEndpoint() }, ""},
		{"otlp base", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, func(p *envconfig.Parser) any { return p.OTLPTracesEndpoint() }, "http://c:4318/v1/traces"},
		{"otlp traces wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t/x"},
			func(p *envconfig.Parser) any { return p.OTLPTracesEndpoint() }, "https://t/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newParser(tt.vars, defs)
			if got := tt.get(p); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if err := p.Err(); err != nil {
				t.Errorf("Err() = %v, want nil", err)
			}
		})
	}
}

func TestParserProblems(t *testing.T) {
	t.Parallel()
	defs := map[string]string{"N": "7", "DUR": "1s", "S": "fallback"}
	tests := []struct {
		name     string
		vars     map[string]string
		get      func(p *envconfig.Parser) any
		want     string // the whole problem, after the prefix
		fallback any
	}{
		{"required", nil, func(p *envconfig.Parser) any { return p.Str("X") }, "X is required", ""},
		{"addr without port", map[string]string{"X": "host"}, func(p *envconfig.Parser) any { return p.Addr("X") }, `X must be host:port, got "host"`, "host"},
		{"list entry", map[string]string{"X": "a:1,b"}, func(p *envconfig.Parser) any { return p.List("X") }, `X entry "b" must be host:port with a port in 1..65535`, []string{"a:1", "b"}},
		{"list port", map[string]string{"X": "a:1,h:99999,:9"}, func(p *envconfig.Parser) any { return p.List("X") },
			"X entry \"h:99999\" must be host:port with a port in 1..65535\nX entry \":9\" must be host:port with a port in 1..65535", []string{"a:1", "h:99999", ":9"}},
		{"empty list", map[string]string{"X": " , "}, func(p *envconfig.Parser) any { return p.List("X") }, "X needs at least one host:port", []string(nil)},
		{"topic chars", map[string]string{"X": "a b"}, func(p *envconfig.Parser) any { return p.Topic("X") }, `X is not a valid Kafka topic name: "a b"`, "a b"},
		{"topic dots", map[string]string{"X": ".."}, func(p *envconfig.Parser) any { return p.Topic("X") }, `X is not a valid Kafka topic name: ".."`, ".."},
		{"topic long", map[string]string{"X": strings.Repeat("a", 250)}, func(p *envconfig.Parser) any { return len(p.Topic("X")) }, "X is not a valid Kafka topic name: \"" + strings.Repeat("a", 250) + "\"", 250},
		{"bool", map[string]string{"X": "yes"}, func(p *envconfig.Parser) any { return p.Bool("X") }, `X must be true or false, got "yes"`, false},
		{"int", map[string]string{"N": "six"}, func(p *envconfig.Parser) any { return p.Int("N") }, `N must be an integer, got "six"`, 7},
		{"int range", map[string]string{"N": "0"}, func(p *envconfig.Parser) any { return p.IntRange("N", 1, 9) }, `N must be an integer in [1, 9], got "0"`, 7},
		{"int no default", map[string]string{"X": "x"}, func(p *envconfig.Parser) any { return p.Int("X") }, `X must be an integer, got "x"`, 0},
		{"float", map[string]string{"X": "x"}, func(p *envconfig.Parser) any { return p.Float("X") }, `X must be a number, got "x"`, 0.0},
		{"ratio", map[string]string{"X": "1.5"}, func(p *envconfig.Parser) any { return p.Ratio("X") }, `X must be a ratio in [0, 1], got "1.5"`, 0.0},
		{"ratio nan", map[string]string{"X": "NaN"}, func(p *envconfig.Parser) any { return p.Ratio("X") }, `X must be a ratio in [0, 1], got "NaN"`, 0.0},
		{"duration", map[string]string{"DUR": "10"}, func(p *envconfig.Parser) any { return p.Duration("DUR") }, `DUR must be a duration such as 500ms or 10s, got "10"`, time.Second},
		{"duration range", map[string]string{"DUR": "2h"}, func(p *envconfig.Parser) any { return p.DurationRange("DUR", time.Second, time.Hour) }, `DUR must be a duration in [1s, 1h0m0s], got "2h"`, time.Second},
		{"level", map[string]string{"X": "loud"}, func(p *envconfig.Parser) any { return p.Level("X") }, `X must be debug, info, warn or error, got "loud"`, slog.LevelInfo},
		{"secret both", map[string]string{"S": "v", "S_FILE": "/s/nl"}, func(p *envconfig.Parser) any { return p.Secret("S") }, "S and S_FILE are both set; set one", "fallback"},
		{"secret unreadable", map[string]string{"S_FILE": "/missing"}, func(p *envconfig.Parser) any { return p.Secret("S") }, "S_FILE cannot be read: open /missing: file does not exist", "fallback"},
		{"secret empty file", map[string]string{"S_FILE": "/s/empty"}, func(p *envconfig.Parser) any { return p.Secret("S") }, `S_FILE names an empty file "/s/empty"`, "fallback"},
		{"secret url scheme", map[string]string{"S": "mysql://u:pw@db/x"}, func(p *envconfig.Parser) any { return p.SecretURL("S", "postgres://", "postgresql://") },
			"S must start with postgres:// or postgresql://", "mysql://u:pw@db/x"},
		{"secret url from file", map[string]string{"S_FILE": "/s/nl"}, func(p *envconfig.Parser) any { return p.SecretURL("S", "mongodb://") },
			"S_FILE must start with mongodb://", "value"},
		{"tracing without service name", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER_ARG": "1"}, func(p *envconfig.Parser) any { return p.Tracing().ServiceName },
			"OTEL_SERVICE_NAME is required when tracing is on", ""},
		{"otlp traces", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "c:4318"}, func(p *envconfig.Parser) any { return p.OTLPTracesEndpoint() },
			`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http(s) URL, got "c:4318"`, ""},
		{"otlp base", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/?q=1"}, func(p *envconfig.Parser) any { return p.OTLPTracesEndpoint() },
			`OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, got "http://c:4318/?q=1"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newParser(tt.vars, defs)
			if got := tt.get(p); !reflect.DeepEqual(got, tt.fallback) {
				t.Errorf("got %#v, want the fallback %#v", got, tt.fallback)
			}
			err := p.Err()
			if err == nil || err.Error() != "invalid configuration: "+tt.want {
				t.Errorf("Err() = %v, want %q", err, "invalid configuration: "+tt.want)
			}
		})
	}
}

func TestParserCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	p := newParser(map[string]string{"A": "x", "B": "y"}, nil)
	p.Int("A")
	p.Bool("B")
	p.Str("C")
	p.Fail("D", "is wrong")
	p.Add(nil)
	cause := errors.New("E is wrong too")
	p.Add(cause)
	err := p.Err()
	want := "invalid configuration: A must be an integer, got \"x\"\nB must be true or false, got \"y\"\nC is required\nD is wrong\nE is wrong too"
	if err == nil || err.Error() != want {
		t.Fatalf("Err() = %q, want %q", err, want)
	}
	if !errors.Is(err, cause) {
		t.Errorf("Err() does not wrap the added error")
	}
}

func TestSecretNeverInProblems(t *testing.T) {
	t.Parallel()
	p := envconfig.New(env(map[string]string{"S": "pw@host", "S_FILE": "/f"}), files(map[string]string{"/f": "pw@file"}), nil)
	p.Secret("S")
	if err := p.Err(); err == nil || strings.Contains(err.Error(), "pw@") {
		t.Errorf("Err() = %v, want a problem without the secret", err)
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want []string
	}{{"", nil}, {" , ,", nil}, {"a", []string{"a"}}, {" a ,b,, c ", []string{"a", "b", "c"}}} {
		if got := envconfig.SplitList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitList(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
	for in, want := range map[string]string{"a": "a", "a\n": "a", "a\r\n": "a", "a\n\n": "a\n", "a\r": "a"} {
		if got := envconfig.TrimNewline(in); got != want {
			t.Errorf("TrimNewline(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]bool{"t": true, "A.b_C-9": true, "": false, ".": false, "..": false, "a/b": false, strings.Repeat("x", 249): true, strings.Repeat("x", 250): false} {
		if got := envconfig.ValidTopic(in); got != want {
			t.Errorf("ValidTopic(%q) = %v, want %v", in, got, want)
		}
	}
	for in, want := range map[string]bool{"http://c:4318": true, "https://c/v1/traces": true, "c:4318": false, "ftp://c": false, "http://": false, "http://c?x=1": false, "http://c#f": false} {
		if got := envconfig.OTLPURL(in); got != want {
			t.Errorf("OTLPURL(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestHostPort(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"a:1": true, "kafka:9092": true, "[::1]:65535": true, "10.0.0.1:9092": true,
		"": false, "kafka": false, ":9092": false, "h:0": false, "h:65536": false, "h:http": false, "h:-1": false,
	} {
		if got := envconfig.HostPort(in); got != want {
			t.Errorf("HostPort(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestTracing(t *testing.T) {
	t.Parallel()
	defs := map[string]string{"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_SAMPLER_ARG": "1.0"}
	p := newParser(nil, defs)
	if got, want := p.Tracing(), (envconfig.Tracing{ServiceName: "svc", SampleRatio: 1}); got != want || got.Enabled() {
		t.Errorf("Tracing() = %+v (enabled %v), want %+v, off", got, got.Enabled(), want)
	}
	p = newParser(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, defs)
	if got, want := p.Tracing(), (envconfig.Tracing{Endpoint: "http://c:4318/v1/traces", ServiceName: "x", SampleRatio: 0.25}); got != want || !got.Enabled() {
		t.Errorf("Tracing() = %+v (enabled %v), want %+v, on", got, got.Enabled(), want)
	}
	if err := p.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
	p = newParser(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c", "OTEL_TRACES_SAMPLER_ARG": "2"}, defs)
	if got, want := p.Tracing(), (envconfig.Tracing{ServiceName: "svc", SampleRatio: 1}); got != want {
		t.Errorf("Tracing() = %+v, want %+v", got, want)
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER_ARG") {
		t.Errorf("Err() = %v, want both variables named", err)
	}
}

func TestTracingEndpoints(t *testing.T) {
	t.Parallel()
	defs := map[string]string{"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_SAMPLER_ARG": "1.0"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"base endpoint gets the traces path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, "http://otel:4318/v1/traces"},
		{"base endpoint with a slash", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel:4318/prefix/"}, "https://otel:4318/prefix/v1/traces"},
		{"traces endpoint as given", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel:4318/custom"}, "http://otel:4318/custom"},
		{"traces endpoint wins", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces",
		}, "http://b:4318/v1/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newParser(tc.env, defs)
			got := p.Tracing()
			if err := p.Err(); err != nil {
				t.Fatal(err)
			}
			if got.Endpoint != tc.want || !got.Enabled() {
				t.Errorf("Endpoint = %q (enabled %v), want %q", got.Endpoint, got.Enabled(), tc.want)
			}
		})
	}
}

func TestTracingRejectsBadValues(t *testing.T) {
	t.Parallel()
	defs := map[string]string{"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_SAMPLER_ARG": "1.0"}
	for _, tc := range []struct{ name, value string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "otel:4318"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://otel:4317"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http:///v1/traces"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://otel:4318/v1/traces?x=1"},
		{"OTEL_TRACES_SAMPLER_ARG", "1.5"},
		{"OTEL_TRACES_SAMPLER_ARG", "-0.1"},
		{"OTEL_TRACES_SAMPLER_ARG", "NaN"},
		{"OTEL_TRACES_SAMPLER_ARG", "half"},
	} {
		p := newParser(map[string]string{tc.name: tc.value}, defs)
		p.Tracing()
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%q: err = %v, want one naming %s", tc.name, tc.value, err, tc.name)
		}
	}
}
