package envconfig_test

import (
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

func TestService(t *testing.T) {
	t.Parallel()
	defs := maps.Clone(serverDefaults)
	maps.Copy(defs, map[string]string{"METRICS_ADDR": "127.0.0.1:9090", "SHUTDOWN_TIMEOUT": "10s", "LOG_LEVEL": "info",
		"OTEL_SERVICE_NAME": "svc", "OTEL_TRACES_SAMPLER_ARG": "1"})
	p := newParser(map[string]string{"SHUTDOWN_TIMEOUT": "3s", "LOG_LEVEL": "debug"}, defs)
	got := p.Service()
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	want := envconfig.Service{
		HTTP: envconfig.HTTPServer{Addr: "127.0.0.1:8080", ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute},
		Admin:           envconfig.Admin{MetricsAddr: "127.0.0.1:9090"},
		Auth:            envconfig.AuthSettings{Mode: envconfig.AuthModeNone},
		Tracing:         envconfig.Tracing{ServiceName: "svc", SampleRatio: 1},
		ShutdownTimeout: 3 * time.Second,
		LogLevel:        slog.LevelDebug,
	}
	if got != want {
		t.Errorf("Service() =\n%+v\nwant\n%+v", got, want)
	}

	p = newParser(map[string]string{"SHUTDOWN_TIMEOUT": "500ms", "LOG_LEVEL": "loud", "HTTP_ADDR": "x"}, defs)
	p.Service()
	err := p.Err()
	for _, w := range []string{`SHUTDOWN_TIMEOUT must be a duration in [1s, 10m0s], got "500ms"`, "LOG_LEVEL", "HTTP_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Err() = %v, want it to contain %q", err, w)
		}
	}
}
