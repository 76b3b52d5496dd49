package chaos_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSoakSmoke builds chaosrun and runs its soak mode briefly (20 s at a
// fixed, low rate, a sample every 2 s) against real processes. It checks the
// mechanics — the load is answered, every process is sampled, views become
// visible, the report is written — not growth, which 20 s cannot decide
// (-soak-check=false); `make soak` decides growth.
func TestSoakSmoke(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "chaosrun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/chaosrun")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build chaosrun: %v\n%s", err, out)
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "SOAK.md")
	args := []string{"-soak", "-faults", "none", "-repo", repo, "-logs", filepath.Join(dir, "logs"),
		"-duration", "20s", "-every", "2s", "-rate", "20", "-soak-check=false", "-soak-out", report}
	start := time.Now()
	out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
	t.Logf("chaosrun %s (%s):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("chaosrun -soak failed: %v", err)
	}
	md, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("read the report: %v", err)
	}
	for _, want := range []string{"## Load, lag and freshness", "## RSS (MiB, VmRSS)", "## Goroutines (go_goroutines)", "## Growth",
		"| writer1 | RSS |", "| reader3 | goroutines |", "VERDICT:"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "no data") {
		t.Errorf("a service was never sampled:\n%s", md)
	}
	// Some freshness probes were seen by a reader: the pipeline moved.
	if !strings.Contains(string(out), "fresh p50") {
		t.Errorf("no freshness probe became visible on a reader")
	}
}
