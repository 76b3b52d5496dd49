// Command pgcheck is the first step of `make test`: it checks that the
// local PostgreSQL server has connections enough for the test suite to run
// with -p packages at once, and otherwise says exactly what to do.
//
// The suite's connections are mostly FerretDB pools (libs/devinfra/mongowire,
// up to 50 each, opened on demand) and the pgx pools of the tests running at
// once. Measured on a 2-core machine (go test -p 2, the FerretDB packages of
// the reader and libs/devinfra/mongowire): 57 connections at the peak, 55 of
// them from one package (mongoview's test that fills FerretDB's default pool
// on purpose); the chaos test's processes took 26. The estimate is
// perPackage connections for each package running at once plus a fixed
// headroom: 95 for 2 packages, which fits PostgreSQL's default
// max_connections of 100 (3 reserved), where the whole suite passed on 2
// cores.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
)

// The estimate of the suite's connections: perPackage for each test binary
// running at once, plus headroom for the rest (admin connections of
// pgtest, a running `make run`, psql sessions).
const (
	perPackage = 40
	headroom   = 15
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgcheck:", err)
		os.Exit(1)
	}
}

// need is the estimated peak of connections with p packages at once.
func need(p int) int { return perPackage*p + headroom }

// fitting is the largest -p whose estimate fits in avail connections (at
// least 1).
func fitting(avail int) int { return max(1, (avail-headroom)/perPackage) }

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pgcheck", flag.ContinueOnError)
	p := fs.Int("p", 0, "packages go test runs at once (its -p); 0: the number of CPUs, go test's default")
	adminURL := fs.String("pg-admin-url", pgtest.AdminURL(), "PostgreSQL admin URL of the tests (PGTEST_ADMIN_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *p <= 0 {
		*p = runtime.NumCPU()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, *adminURL)
	if err != nil {
		return fmt.Errorf("`make test` needs PostgreSQL on %s (set %s to use another server): %w", redact(*adminURL), pgtest.AdminURLEnv, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var maxConns, reserved, inUse int
	err = conn.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())`).Scan(&maxConns, &reserved, &inUse)
	if err != nil {
		return fmt.Errorf("read max_connections: %w", err)
	}
	return verdict(out, *p, maxConns, reserved, inUse)
}

// errTooFew reports a server with too few connections for the suite.
var errTooFew = errors.New("too few PostgreSQL connections for make test")

// verdict compares the estimate for p packages at once with what the
// server has left, and says what to do when it does not fit.
func verdict(out io.Writer, p, maxConns, reserved, inUse int) error {
	avail := maxConns - reserved - inUse
	n := need(p)
	if n <= avail {
		fmt.Fprintf(out, "pgcheck: PostgreSQL has %d connections free (max_connections %d, %d reserved, %d in use); "+
			"make test with %d packages at once needs about %d\n", avail, maxConns, reserved, inUse, p, n)
		return nil
	}
	return fmt.Errorf("%w: PostgreSQL has %d free (max_connections %d, %d reserved for superusers, %d in use by other sessions), "+
		"make test with %d packages at once (go test -p, default: the number of CPUs) needs about %d. Either\n"+
		"  - run fewer packages at once:  make test TEST_P=%d\n"+
		"  - or raise the limit:          psql -U postgres -c 'ALTER SYSTEM SET max_connections = %d', then restart PostgreSQL",
		errTooFew, avail, maxConns, reserved, inUse, p, n, fitting(avail), n+reserved+inUse)
}

// redact hides the password of a URL DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
