package mongowire

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
)

func TestBackendURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		maxConns int
		want     string
		wantErr  bool
	}{
		{in: "postgres://u@h:5432/db", want: "postgres://u@h:5432/db?plan_cache_mode=force_custom_plan&pool_max_conns=50"},
		{in: "postgresql://u@h/db?sslmode=disable", want: "postgresql://u@h/db?plan_cache_mode=force_custom_plan&pool_max_conns=50&sslmode=disable"},
		{in: "postgres://h/db?plan_cache_mode=auto", want: "postgres://h/db?plan_cache_mode=auto&pool_max_conns=50"},
		{in: "postgres://h/db", maxConns: 12, want: "postgres://h/db?plan_cache_mode=force_custom_plan&pool_max_conns=12"},
		{in: "postgres://h/db?pool_max_conns=20", want: "postgres://h/db?plan_cache_mode=force_custom_plan&pool_max_conns=20"},
		{in: "postgres://h/db?pool_max_conns=20", maxConns: 8, want: "postgres://h/db?plan_cache_mode=force_custom_plan&pool_max_conns=8"},
		{in: "postgres://h/db?pool_max_conns=0", wantErr: true},
		{in: "postgres://h/db?pool_max_conns=many", wantErr: true},
		{in: "postgres://h/db", maxConns: -1, wantErr: true},
		{in: "", wantErr: true},
		{in: "host=h dbname=db", wantErr: true},
		{in: "postgres://u:p@%zz", wantErr: true},
	} {
		got, err := backendURL(tc.in, tc.maxConns)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("backendURL(%q, %d) = %q, %v; want %q, err=%v", tc.in, tc.maxConns, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSQLiteDirURL(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "with space", "nested")
	got, err := sqliteDirURL(dir)
	if err != nil {
		t.Fatalf("sqliteDirURL: %v", err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatalf("parse %q: %v", got, err)
	}
	if u.Scheme != "file" || u.Host != "" || u.Path != dir+"/" {
		t.Fatalf("sqliteDirURL(%q) = %q (path %q), want file URL of the directory with a trailing slash", dir, got, u.Path)
	}
}

func TestDialableURI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mongodb://127.0.0.1:27017/": "mongodb://127.0.0.1:27017/",
		"mongodb://0.0.0.0:27017/":   "mongodb://127.0.0.1:27017/",
		"mongodb://[::]:27017/":      "mongodb://127.0.0.1:27017/",
		"mongodb://localhost:1/":     "mongodb://localhost:1/",
	} {
		if got := dialableURI(in); got != want {
			t.Errorf("dialableURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPostgreSQLSessionSettings checks that the URL Start derives reaches
// PostgreSQL with plan_cache_mode=force_custom_plan.
func TestPostgreSQLSessionSettings(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{PostgreSQLURL: pgtest.NewDatabase(t)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	var mode string
	if err := s.pool.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
		t.Fatalf("SHOW: %v", err)
	}
	if mode != "force_custom_plan" {
		t.Fatalf("plan_cache_mode = %q, want force_custom_plan", mode)
	}
	if !strings.HasPrefix(s.URI(), "mongodb://127.0.0.1:") {
		t.Fatalf("URI = %q", s.URI())
	}
}
