package config_test

import (
	"testing"

	"github.com/propalpes/companias/services/query/internal/config"
)

// The parsing rules of the OTEL_* variables are tested in libs/seedwork/envconfig;
// these tests check this service's defaults and that Load applies them.

func TestLoadTracingOffByDefault(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Tracing{ServiceName: "companias-query", SampleRatio: 1}
	if c.Tracing != want || c.Tracing.Enabled() {
		t.Errorf("Tracing = %+v (enabled %v), want %+v, off", c.Tracing, c.Tracing.Enabled(), want)
	}
}

func TestLoadTracingOverrides(t *testing.T) {
	t.Parallel()
	c, err := load(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_SERVICE_NAME": "reader-eu", "OTEL_TRACES_SAMPLER_ARG": "0.25",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.ServiceName != "reader-eu" || c.Tracing.SampleRatio != 0.25 {
		t.Errorf("Tracing = %+v", c.Tracing)
	}
}
