package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationLockKey is the pg_advisory_xact_lock key that Migrate holds
// while it checks and applies one migration, so that replicas starting
// together apply each migration exactly once. It never changes. (Until
// 0003_outbox_relay_lease the outbox relay held a session advisory lock of
// its own, 0x636f6d70616e6961, "compania"; the two keys never coincided.)
const MigrationLockKey int64 = 0x636f6d702d6d6967 // "comp-mig" in ASCII

// ErrMigrationsPending is matched (errors.Is) by the Checker.Ready error
// when the database lacks embedded migrations.
var ErrMigrationsPending = errors.New("postgres: schema migrations pending")

// createSchemaMigrations creates the migration record table. checksum is the
// hex SHA-256 of the migration file as it was applied.
const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    bigint      PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

type migration struct {
	version  int64
	name     string // file name without version and extension
	file     string
	sql      string
	checksum string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("embedded migration %q: name is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		body, err := fs.ReadFile(migrationFiles, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		ms = append(ms, migration{version: v, name: m[2], file: e.Name(), sql: string(body), checksum: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(ms, func(a, b migration) int { return int(a.version - b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("embedded migrations %s and %s share a version", ms[i-1].file, ms[i].file)
		}
	}
	return ms, nil
}

// Migrate brings the schema up to date with the migrations embedded in the
// binary (migrations/NNNN_name.sql), in version order. Each migration runs
// in its own transaction that first takes the advisory lock
// MigrationLockKey, then applies the migration unless schema_migrations
// already records it, and records it; so several replicas may call Migrate
// at once and each migration is applied exactly once, and a failed migration
// leaves the ones before it applied and nothing of itself.
//
// It fails if an applied migration's recorded SHA-256 differs from the
// embedded file: applied migrations must never be edited, only followed by
// new ones. Migrations unknown to this binary (applied by a newer release)
// are left alone. Migrations run through the simple protocol and may hold
// several statements, but cannot use statements that refuse to run in a
// transaction (CREATE INDEX CONCURRENTLY).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		err := runInTx(ctx, pool, func(b *pgx.Batch) {
			b.Queue("SELECT pg_advisory_xact_lock($1)", MigrationLockKey)
			b.Queue(createSchemaMigrations)
		}, func(tx pgx.Tx) error { return applyMigration(ctx, tx, m) })
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.file, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, tx pgx.Tx, m migration) error {
	var sum string
	err := tx.QueryRow(ctx, "SELECT checksum FROM schema_migrations WHERE version = $1", m.version).Scan(&sum)
	switch {
	case err == nil:
		if sum != m.checksum {
			return fmt.Errorf("applied with checksum %s, embedded file has %s: applied migrations must not change", sum, m.checksum)
		}
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	// No arguments: pgx sends it with the simple protocol, several statements allowed.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
		m.version, m.name, m.checksum); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

// Checker answers readiness probes (GET /readyz) of a service that uses the
// database. It is safe for concurrent use.
type Checker struct {
	pool     *pgxpool.Pool
	migrated atomic.Bool
}

// NewChecker returns a Checker of pool.
func NewChecker(pool *pgxpool.Pool) *Checker {
	if pool == nil {
		panic("postgres: NewChecker needs a pool")
	}
	return &Checker{pool: pool}
}

// Ready returns nil when PostgreSQL answers and every embedded migration is
// applied; an error matching ErrMigrationsPending when some are not (yet);
// another error when the server cannot be reached. Once it has seen every
// migration applied it only pings, since migrations are never undone. The
// caller bounds it with ctx (a probe timeout).
func (c *Checker) Ready(ctx context.Context) error {
	if c.migrated.Load() {
		if err := c.pool.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: ping: %w", err)
		}
		return nil
	}
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	applied := map[int64]bool{}
	rows, err := c.pool.Query(ctx, "SELECT version FROM schema_migrations")
	if err == nil {
		var v int64
		_, err = pgx.ForEachRow(rows, []any{&v}, func() error { applied[v] = true; return nil })
	}
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P01") { // 42P01: no schema_migrations yet
		return fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	var pending []string
	for _, m := range ms {
		if !applied[m.version] {
			pending = append(pending, m.file)
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w: %s", ErrMigrationsPending, strings.Join(pending, ", "))
	}
	c.migrated.Store(true)
	return nil
}
