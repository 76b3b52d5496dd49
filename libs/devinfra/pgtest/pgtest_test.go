package pgtest_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	return runtest.Context(t, 30*time.Second)
}

func connect(ctx context.Context, t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

func databaseExists(ctx context.Context, t *testing.T, name string) bool {
	t.Helper()
	conn := connect(ctx, t, pgtest.AdminURL())
	defer conn.Close(ctx)
	var exists bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if err != nil {
		t.Fatalf("look up database %s: %v", name, err)
	}
	return exists
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

var tempName = regexp.MustCompile(`^t_[0-9a-f]{16}$`)

func TestNewDatabaseCreatesAndDrops(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	var name string
	var held *pgx.Conn
	t.Run("user", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		name = dbName(t, dsn)
		if !tempName.MatchString(name) {
			t.Fatalf("database name %q does not match %s", name, tempName)
		}
		held = connect(ctx, t, dsn) // left open on purpose: the drop must force it
		var current string
		if err := held.QueryRow(ctx, `SELECT current_database()`).Scan(&current); err != nil {
			t.Fatalf("current_database: %v", err)
		}
		if current != name {
			t.Fatalf("connected to %q, want %q", current, name)
		}
		if _, err := held.Exec(ctx, `CREATE TABLE x (id int PRIMARY KEY); CREATE SCHEMA s`); err != nil {
			t.Fatalf("DDL in fresh database: %v", err)
		}
	})
	defer held.Close(context.Background())

	if databaseExists(ctx, t, name) {
		t.Fatalf("database %s still exists after the test's cleanup", name)
	}
}

func TestNewDatabaseParallel(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.NewDatabase(t)
			ctx := testContext(t)
			conn := connect(ctx, t, dsn)
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `CREATE TABLE x (id int)`); err != nil {
				t.Fatalf("create table: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[dsn] {
				t.Errorf("DSN %s handed out twice", dsn)
			}
			seen[dsn] = true
		})
	}
}

// fatalTB captures Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()               {}
func (f *fatalTB) Cleanup(func())        {}
func (f *fatalTB) Errorf(string, ...any) {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Not parallel: it changes the environment.
func TestNewDatabaseFailsLoudlyWhenUnreachable(t *testing.T) {
	t.Setenv(pgtest.AdminURLEnv, "postgres://postgres:secret@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5")
	ftb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pgtest.NewDatabase(ftb)
	}()
	<-done
	if ftb.msg == "" {
		t.Fatal("NewDatabase returned against an unreachable server, want Fatalf")
	}
	if !strings.Contains(ftb.msg, "127.0.0.1:1") || !strings.Contains(ftb.msg, pgtest.AdminURLEnv) {
		t.Errorf("Fatalf message lacks the address or the env hint: %s", ftb.msg)
	}
	if strings.Contains(ftb.msg, "secret") {
		t.Errorf("Fatalf message leaks the password: %s", ftb.msg)
	}
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	admin := pgtest.AdminURL()
	name := fmt.Sprintf("ensure_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("cleanup connect: %v", err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("cleanup drop: %v", err)
		}
	})

	// Concurrent creators of the same database all succeed.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = pgtest.EnsureDatabase(ctx, admin, name) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("EnsureDatabase #%d: %v", i, err)
		}
	}
	if !databaseExists(ctx, t, name) {
		t.Fatalf("database %s missing after EnsureDatabase", name)
	}

	// An existing database keeps its contents.
	dsn, err := pgtest.WithDatabase(admin, name)
	if err != nil {
		t.Fatalf("WithDatabase: %v", err)
	}
	conn := connect(ctx, t, dsn)
	if _, err := conn.Exec(ctx, `CREATE TABLE keep (id int)`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	_ = conn.Close(ctx)
	if err := pgtest.EnsureDatabase(ctx, admin, name); err != nil {
		t.Fatalf("EnsureDatabase again: %v", err)
	}
	conn = connect(ctx, t, dsn)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT * FROM keep`); err != nil {
		t.Fatalf("table lost after second EnsureDatabase: %v", err)
	}
}

func TestEnsureDatabaseRejectsBadNames(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	for _, name := range []string{"", "bad-name", "1abc", `x"; DROP DATABASE postgres; --`, strings.Repeat("a", 64)} {
		if err := pgtest.EnsureDatabase(ctx, pgtest.AdminURL(), name); err == nil {
			t.Errorf("EnsureDatabase(%q) succeeded, want an error", name)
		}
	}
}

func TestEnsureDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	err := pgtest.EnsureDatabase(ctx, "postgres://postgres:secret@127.0.0.1:1/postgres?sslmode=disable", "propalpes")
	if err == nil {
		t.Fatal("EnsureDatabase against an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"propalpes", true},
		{"_x1", true},
		{"Mixed_Case9", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{"9lives", false},
		{"with space", false},
		{"dash-ed", false},
		{"dollar$", false},
		{"ünï", false},
		{strings.Repeat("a", 64), false},
	} {
		if err := pgtest.ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dsn, name, want string
		wantErr         bool
	}{
		{dsn: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", name: "t_1",
			want: "postgres://postgres@127.0.0.1:5432/t_1?sslmode=disable"},
		{dsn: "postgresql://u:p%40ss@h/", name: "db",
			want: "postgresql://u:p%40ss@h/db"},
		{dsn: "postgres://h:5432", name: "db", want: "postgres://h:5432/db"},
		{dsn: "postgres://h/old?application_name=x&pool_max_conns=4", name: "new",
			want: "postgres://h/new?application_name=x&pool_max_conns=4"},
		{dsn: "host=h dbname=x", name: "db", wantErr: true},
		{dsn: "mysql://h/x", name: "db", wantErr: true},
		{dsn: "postgres://h/x", name: "", wantErr: true},
		{dsn: "postgres://%zz", name: "db", wantErr: true},
	} {
		got, err := pgtest.WithDatabase(tc.dsn, tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("WithDatabase(%q, %q) = %q, %v; want %q, err=%v", tc.dsn, tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
