package envconfig_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

func TestAdmin(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"METRICS_ADDR": "127.0.0.1:9090"}
	tests := []struct {
		name    string
		env     map[string]string
		want    envconfig.Admin
		wantErr string // "" means no problem
	}{
		{"defaults", nil, envconfig.Admin{MetricsAddr: "127.0.0.1:9090"}, ""},
		{"metrics off", map[string]string{"METRICS_ADDR": "OFF"}, envconfig.Admin{}, ""},
		{"metrics elsewhere", map[string]string{"METRICS_ADDR": ":9100"}, envconfig.Admin{MetricsAddr: ":9100"}, ""},
		{"bad metrics", map[string]string{"METRICS_ADDR": "9100"}, envconfig.Admin{MetricsAddr: "9100"}, "METRICS_ADDR"},
		{"pprof loopback", map[string]string{"PPROF_ADDR": "127.0.0.1:6060"}, envconfig.Admin{MetricsAddr: "127.0.0.1:9090", PprofAddr: "127.0.0.1:6060"}, ""},
		{"pprof localhost v6", map[string]string{"PPROF_ADDR": "[::1]:6060"}, envconfig.Admin{MetricsAddr: "127.0.0.1:9090", PprofAddr: "[::1]:6060"}, ""},
		{"pprof all interfaces", map[string]string{"PPROF_ADDR": ":6060"}, envconfig.Admin{MetricsAddr: "127.0.0.1:9090", PprofAddr: ":6060"}, "PPROF_ALLOW_REMOTE"},
		{"pprof routable", map[string]string{"PPROF_ADDR": "10.0.0.5:6060"}, envconfig.Admin{MetricsAddr: "127.0.0.1:9090", PprofAddr: "10.0.0.5:6060"}, "not a loopback"},
		{"pprof remote opted in", map[string]string{"PPROF_ADDR": "0.0.0.0:6060", "PPROF_ALLOW_REMOTE": "true"},
			envconfig.Admin{MetricsAddr: "127.0.0.1:9090", PprofAddr: "0.0.0.0:6060", PprofRemote: true}, ""},
		{"bad opt-in", map[string]string{"PPROF_ALLOW_REMOTE": "yes please"}, envconfig.Admin{MetricsAddr: "127.0.0.1:9090"}, "PPROF_ALLOW_REMOTE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := envconfig.New(func(k string) string { return tt.env[k] }, nil, defaults)
			got := p.Admin()
			err := p.Err()
			if got != tt.want {
				t.Errorf("Admin() = %+v, want %+v", got, tt.want)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Err() = %v, want a problem naming %s", err, tt.wantErr)
			}
		})
	}
}
