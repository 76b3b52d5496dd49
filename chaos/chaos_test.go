package chaos_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestChaosShort builds chaosrun and runs its CI short form (a few hundred
// commands, one fault of each kind) against real processes; it fails unless
// every invariant holds. CHAOS_SEED fixes the seed (default: the clock, and
// the seed is logged either way); CHAOS_ARGS adds flags, e.g.
// "-race" to build the services with the race detector.
func TestChaosShort(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "chaosrun")
	build := exec.Command("go", "build", "-o", bin, "./cmd/chaosrun")
	// The runner's module may not be in go.work yet; its go.mod replaces
	// the workspace libraries, so it builds on its own either way.
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build chaosrun: %v\n%s", err, out)
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED: %v", err)
		}
		seed = v
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-short", "-seed", strconv.FormatUint(seed, 10), "-repo", repo, "-logs", filepath.Join(dir, "logs")}
	args = append(args, strings.Fields(os.Getenv("CHAOS_ARGS"))...)
	t.Logf("chaosrun %s", strings.Join(args, " "))
	start := time.Now()
	out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
	t.Logf("chaosrun output (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("chaosrun -short -seed %d failed: %v", seed, err)
	}
}
