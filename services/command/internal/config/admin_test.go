package config_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
	"github.com/propalpes/companias/services/command/internal/config"
)

func TestLoadAdmin(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := (envconfig.Admin{MetricsAddr: "127.0.0.1:9090"}); c.Admin != want {
		t.Errorf("default Admin %+v, want %+v (metrics on loopback, profiler off)", c.Admin, want)
	}
	for _, v := range []string{"METRICS_ADDR", "PPROF_ADDR", "PPROF_ALLOW_REMOTE"} {
		if _, ok := config.Variables()[v]; !ok {
			t.Errorf("Variables lacks %s", v)
		}
	}
	c, err = load(env(map[string]string{"PPROF_ADDR": "127.0.0.1:6060", "METRICS_ADDR": "off"}))
	if err != nil || c.Admin.PprofAddr != "127.0.0.1:6060" || c.Admin.MetricsAddr != "" {
		t.Errorf("PPROF_ADDR=127.0.0.1:6060 METRICS_ADDR=off: %+v, %v", c.Admin, err)
	}
	for _, bad := range []string{"localhost", "127.0.0.1:", ":6060", "0.0.0.0:6060"} {
		if _, err := load(env(map[string]string{"PPROF_ADDR": bad})); err == nil || !strings.Contains(err.Error(), "PPROF_ADDR") {
			t.Errorf("PPROF_ADDR=%s: %v, want an error naming it", bad, err)
		}
	}
	c, err = load(env(map[string]string{"PPROF_ADDR": "0.0.0.0:6060", "PPROF_ALLOW_REMOTE": "true"}))
	if err != nil || !c.Admin.PprofRemote {
		t.Errorf("PPROF_ADDR=0.0.0.0:6060 with PPROF_ALLOW_REMOTE=true: %+v, %v", c.Admin, err)
	}
}
