package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                         string
		p, maxConns, reserved, inUse int
		wantErr                      []string // nil: fits
	}{
		{name: "2 CPUs on the default 100", p: 2, maxConns: 100, reserved: 3},
		{name: "8 CPUs on 300", p: 8, maxConns: 350, reserved: 3, inUse: 5},
		{name: "8 CPUs on the default 100", p: 8, maxConns: 100, reserved: 3,
			wantErr: []string{"97 free", "about 335", "make test TEST_P=2", "max_connections = 338"}},
		{name: "others use connections", p: 2, maxConns: 100, reserved: 3, inUse: 40,
			wantErr: []string{"40 in use", "TEST_P=1", "max_connections = 138"}},
		{name: "4 CPUs on 150", p: 4, maxConns: 150, reserved: 3,
			wantErr: []string{"TEST_P=3", "max_connections = 178"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := verdict(&out, tt.p, tt.maxConns, tt.reserved, tt.inUse)
			if tt.wantErr == nil {
				if err != nil || !strings.Contains(out.String(), "needs about") {
					t.Fatalf("verdict = %v, printed %q; want it to fit", err, out.String())
				}
				return
			}
			if !errors.Is(err, errTooFew) {
				t.Fatalf("verdict = %v; want errTooFew", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("verdict error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestRun checks the query against the local server (max_connections is
// whatever it is: one -p that fits and one that cannot) and an unreachable
// server.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	t.Parallel()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"-p", "1"}, &out); err != nil && !errors.Is(err, errTooFew) {
		t.Fatalf("run -p 1: %v", err)
	}
	if err := run(t.Context(), []string{"-p", "100000"}, &out); !errors.Is(err, errTooFew) {
		t.Fatalf("run -p 100000: %v; want errTooFew", err)
	}
	err := run(t.Context(), []string{"-pg-admin-url", "postgres://postgres:secret@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"}, &out)
	if err == nil || !strings.Contains(err.Error(), "needs PostgreSQL") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("run on an unreachable server: %v; want an error naming the server without its password", err)
	}
}
