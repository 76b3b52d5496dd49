package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWatchedLogsExist guards the checks against a renamed log message: each
// message the checks count must still be logged, as a string literal, by a
// non-test Go file of libs/ or services/.
func TestWatchedLogsExist(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	var src strings.Builder
	for _, dir := range []string{"libs", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			src.Write(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	msgs := append(append([]string{}, watchedLogs...), logRelayLeading, logRelayLostLease, logRelayLostSession)
	for _, m := range msgs {
		// A prefix of a longer literal is enough: the checks match with strings.Contains.
		if q := strconv.Quote(m); !strings.Contains(src.String(), q[:len(q)-1]) {
			t.Errorf("no service logs %s any more: the checks that count it would count nothing", q)
		}
	}
}
