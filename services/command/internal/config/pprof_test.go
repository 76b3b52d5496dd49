package config_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/services/command/internal/config"
)

func TestLoadPprofAddr(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.PprofAddr != "" {
		t.Errorf("default PprofAddr %q, want \"\" (profiler off)", c.PprofAddr)
	}
	if _, ok := config.Variables()["PPROF_ADDR"]; !ok {
		t.Error("Variables lacks PPROF_ADDR")
	}
	c, err = config.Load(env(map[string]string{"PPROF_ADDR": "127.0.0.1:6060"}))
	if err != nil || c.PprofAddr != "127.0.0.1:6060" {
		t.Errorf("PPROF_ADDR=127.0.0.1:6060: %q, %v", c.PprofAddr, err)
	}
	for _, bad := range []string{"localhost", "127.0.0.1:"} {
		if _, err := config.Load(env(map[string]string{"PPROF_ADDR": bad})); err == nil || !strings.Contains(err.Error(), "PPROF_ADDR") {
			t.Errorf("PPROF_ADDR=%s: %v, want an error naming it", bad, err)
		}
	}
}
