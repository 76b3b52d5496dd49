package config_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/services/query/internal/config"
)

func TestLoadTracingOffByDefault(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Tracing{ServiceName: "companias-query", SampleRatio: 1}
	if c.Tracing != want || c.Tracing.Enabled() {
		t.Errorf("Tracing = %+v (enabled %v), want %+v, off", c.Tracing, c.Tracing.Enabled(), want)
	}
}

func TestLoadTracingEndpoints(t *testing.T) {
	t.Parallel()
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
			c, err := config.Load(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Tracing.Endpoint != tc.want || !c.Tracing.Enabled() {
				t.Errorf("Endpoint = %q (enabled %v), want %q", c.Tracing.Endpoint, c.Tracing.Enabled(), tc.want)
			}
		})
	}
}

func TestLoadTracingOverrides(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_SERVICE_NAME": "reader-eu", "OTEL_TRACES_SAMPLER_ARG": "0.25",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.ServiceName != "reader-eu" || c.Tracing.SampleRatio != 0.25 {
		t.Errorf("Tracing = %+v", c.Tracing)
	}
}

func TestLoadTracingRejectsBadValues(t *testing.T) {
	t.Parallel()
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
		_, err := config.Load(env(map[string]string{tc.name: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%q: err = %v, want one naming %s", tc.name, tc.value, err, tc.name)
		}
	}
}

func TestValidateTracing(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Tracing = config.Tracing{Endpoint: "http://otel:4318/v1/traces", ServiceName: " ", SampleRatio: 1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "OTEL_SERVICE_NAME") {
		t.Errorf("Validate(blank service name) = %v", err)
	}
	c.Tracing = config.Tracing{Endpoint: "otel:4318", ServiceName: "q", SampleRatio: 1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "endpoint") {
		t.Errorf("Validate(bad endpoint) = %v", err)
	}
}
