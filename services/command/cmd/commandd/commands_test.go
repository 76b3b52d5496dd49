package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

// unreachableEnv is a configuration whose database cannot be reached (and
// whose HTTP address is invalid): a command that read it and tried to
// serve or connect would fail, not print help.
func unreachableEnv(k string) string {
	return map[string]string{
		"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
		"HTTP_ADDR":    "not an address",
	}[k]
}

// help prints the usage and neither serves nor touches the database; nor
// does version.
func TestHelpTouchesNothing(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"help"}, {"-h"}, {"-help"}, {"--help"}, {"serve", "--help"}, {"serve", "-h"}, {"migrate", "--help"},
		{"version", "-h"}, {"outbox", "help"}, {"outbox", "--help"}, {"outbox", "list", "-h"}, {"outbox", "discard", "--reason", "r", "1", "--help"},
	} {
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		code := cli.Main(ctx, program(unreachableEnv), args, &out, &errOut)
		cancel()
		if code != cli.ExitOK || errOut.Len() > 0 {
			t.Errorf("%v = exit %d, stderr %q; want 0 and nothing", args, code, errOut.String())
		}
		if out.String() != usage {
			t.Errorf("%v printed %q, want the usage", args, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := cli.Main(t.Context(), program(unreachableEnv), []string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("version = exit %d, stderr %q", code, errOut.String())
	}
	if want := "companias-command: " + buildinfo.Read().String() + "\n"; out.String() != want {
		t.Errorf("version printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if code := cli.Main(t.Context(), program(unreachableEnv), []string{"version", "-json"}, &out, &errOut); code != 0 {
		t.Fatalf("version -json = exit %d, stderr %q", code, errOut.String())
	}
	var got buildinfo.Info
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got != buildinfo.Read() {
		t.Errorf("version -json printed %q (%v), want %+v", out.String(), err, buildinfo.Read())
	}
}

// Usage errors print the usage on stderr and exit 2, before reading the
// configuration (here empty) or touching anything.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"frobnicate"}, {"--verbose"}, {"serve", "now"}, {"migrate", "up"}, {"version", "now"}, {"version", "-yaml"},
		{"outbox"}, {"outbox", "purge"},
		{"outbox", "retry"}, {"outbox", "retry", "--all", "3"}, {"outbox", "retry", "x"}, {"outbox", "list", "--frob"},
		{"outbox", "discard", "3"}, {"outbox", "discard", "--reason", "r"}, {"outbox", "list", "3"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, unreachableEnv, &out, &errOut); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%v = %v, want a usage error", args, err)
		}
		if !strings.HasPrefix(errOut.String(), "companias-command: ") || !strings.HasSuffix(errOut.String(), usage) || out.Len() > 0 {
			t.Errorf("%v printed stdout %q, stderr %q; want the error and the usage on stderr", args, out.String(), errOut.String())
		}
		errOut.Reset()
		if code := cli.Main(context.Background(), program(unreachableEnv), args, &out, &errOut); code != cli.ExitUsage {
			t.Errorf("%v exits %d, want %d", args, code, cli.ExitUsage)
		}
	}
}

// A bad configuration fails serve and migrate with exit 1, naming the
// variable, before anything is opened.
func TestBadConfiguration(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		return map[string]string{"MIGRATE_ON_START": "sometimes", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}[k]
	}
	for _, args := range [][]string{nil, {"serve"}, {"migrate"}} {
		var out, errOut bytes.Buffer
		code := cli.Main(t.Context(), program(env), args, &out, &errOut)
		if code != cli.ExitError || !strings.Contains(errOut.String(), "MIGRATE_ON_START") {
			t.Errorf("%v = exit %d, stderr %q; want 1 naming MIGRATE_ON_START", args, code, errOut.String())
		}
	}
}

func TestMigrateUnreachableDatabase(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	env := func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}[k]
	}
	code := cli.Main(t.Context(), program(env), []string{"migrate"}, &out, &errOut)
	if code != cli.ExitError || !strings.Contains(errOut.String(), "open database") {
		t.Errorf("migrate = exit %d, stderr %q; want 1 and the open error", code, errOut.String())
	}
}

// migrate brings an empty database up to date and is idempotent; a writer
// with MIGRATE_ON_START=false then finds the schema ready.
func TestIntegrationMigrateCommand(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	env := func(k string) string { return map[string]string{"DATABASE_URL": dsn, "MIGRATE_ON_START": "false"}[k] }
	for i := range 2 {
		var out, errOut bytes.Buffer
		if code := cli.Main(t.Context(), program(env), []string{"migrate"}, &out, &errOut); code != 0 {
			t.Fatalf("migrate #%d = exit %d, stderr %q", i+1, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), "database schema is up to date") || !strings.Contains(errOut.String(), `"command":"migrate"`) {
			t.Errorf("migrate #%d logged %q, want the done line", i+1, errOut.String())
		}
	}
	pool, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.NewChecker(pool).Ready(t.Context()); err != nil {
		t.Errorf("Ready after migrate = %v", err)
	}
}
