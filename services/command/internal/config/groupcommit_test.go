package config_test

import (
	"strings"
	"testing"

	"github.com/propalpes/companias/services/command/internal/config"
)

func TestLoadWriterGroupCommit(t *testing.T) {
	t.Parallel()
	c, err := load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.WriterGroupCommit || c.WriterGroupCommitMax != 64 {
		t.Errorf("defaults: WriterGroupCommit %v, max %d; want true, 64", c.WriterGroupCommit, c.WriterGroupCommitMax)
	}
	for _, v := range []string{"WRITER_GROUP_COMMIT", "WRITER_GROUP_COMMIT_MAX"} {
		if _, ok := config.Variables()[v]; !ok {
			t.Errorf("Variables lacks %s", v)
		}
	}
	c, err = load(env(map[string]string{"WRITER_GROUP_COMMIT": "false", "WRITER_GROUP_COMMIT_MAX": "1000"}))
	if err != nil || c.WriterGroupCommit || c.WriterGroupCommitMax != 1000 {
		t.Errorf("off, 1000: %v, %d, %v", c.WriterGroupCommit, c.WriterGroupCommitMax, err)
	}
	for k, bad := range map[string]string{"WRITER_GROUP_COMMIT": "yes please", "WRITER_GROUP_COMMIT_MAX": "1"} {
		if _, err := load(env(map[string]string{k: bad})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v, want an error naming it", k, bad, err)
		}
	}
	for _, bad := range []string{"0", "1001", "x"} {
		if _, err := load(env(map[string]string{"WRITER_GROUP_COMMIT_MAX": bad})); err == nil {
			t.Errorf("WRITER_GROUP_COMMIT_MAX=%s accepted", bad)
		}
	}
}
