// Package mongowire runs an embedded FerretDB v1 server that speaks the
// MongoDB wire protocol, backed by PostgreSQL or SQLite. It exists for tests
// and for the local `make run` stack; production uses a real MongoDB.
//
// FerretDB v1 (checked with v1.24) is a functional stand-in only:
//
//   - It lacks transactions, change streams, $text search and text, partial
//     and TTL indexes, collations, the $lookup and $facet stages, and every
//     $group accumulator but $sum and $count; they fail with NotImplemented
//     or a parse error. $project and $addFields with a field path such as
//     "$customer" silently return the literal string.
//   - An unordered bulk write stops at its first error (MongoDB goes on):
//     after a BulkWriteException at index i, the operations after i were not
//     applied.
//   - Every single-document lookup scans the whole collection: on the
//     PostgreSQL backend the _id filter is `_jsonb->'_id' @> $1`, which the
//     btree index FerretDB creates cannot serve. EnsureIDIndex adds an index
//     that can.
//   - It logs every stale version-guarded upsert (a duplicate key) at
//     ERROR, hence the quiet default of Options.Logger.
//
// # Update commands and the connection pool
//
// On the PostgreSQL backend, FerretDB v1.24 keeps one pooled PostgreSQL
// connection per statement of an update command that matched a document,
// until the whole command ends (msg_update.go defers each statement's
// cursor Close inside its loop), and takes one more connection to write
// each statement. So an update command of m matching statements needs m+1
// connections at once, and concurrent update commands whose matching
// statements add up to Options.MaxConns or more can all wait for a
// connection that none of them will give back: the server hangs for good
// (a client that times out and disconnects does not release them; FerretDB
// notices a disconnect only between commands). Clients must therefore keep
// (statements per update command) × (concurrent writers) below MaxConns:
// with DefaultMaxConns, chunks of 10 statements leave room for four
// concurrent writers and the reads. Updates that match nothing (inserting
// upserts, stale version-guarded updates) hold no connection.
package mongowire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Handler names accepted in Options.Handler.
const (
	HandlerPostgreSQL = "postgresql"
	HandlerSQLite     = "sqlite"
)

// DefaultAddr is the listen address used when Options.Addr is empty: the
// loopback interface on a free port chosen by the kernel.
const DefaultAddr = "127.0.0.1:0"

// DefaultMaxConns is the PostgreSQL pool size of FerretDB when neither
// Options.MaxConns nor the URL's pool_max_conns sets it (FerretDB's own
// default). The pool opens connections on demand, so an idle server holds
// few, whatever its size; see the package documentation for what the size
// bounds.
const DefaultMaxConns = 50

// metadataTable is the per-database table where FerretDB's PostgreSQL
// backend maps collection names to table names.
const metadataTable = "_ferretdb_database_metadata"

// ErrCollectionNotFound is returned (wrapped) by EnsureIDIndex when the
// database or collection does not exist yet in the backend.
var ErrCollectionNotFound = errors.New("mongowire: collection not found")

// newMu serialises ferretdb.New, which writes the package-level
// version.Get().Package without synchronisation: concurrent calls (parallel
// tests) are a data race, which the race detector reports.
var newMu sync.Mutex

// Options configures Start.
type Options struct {
	// Addr is the host:port to listen on. Port 0 picks a free port; read
	// the result from Server.URI. Empty means DefaultAddr.
	Addr string

	// Handler selects the storage backend: HandlerPostgreSQL (the default
	// when empty) or HandlerSQLite.
	Handler string

	// PostgreSQLURL is the postgres:// URL of the backing database; required
	// for HandlerPostgreSQL. Its role needs CREATE on that database, since
	// FerretDB creates one schema per MongoDB database. Start adds
	// plan_cache_mode=force_custom_plan unless the URL sets it.
	PostgreSQLURL string

	// MaxConns is the most PostgreSQL connections FerretDB opens (its
	// pool_max_conns); it bounds the matching statements that concurrent
	// update commands may hold (see the package documentation). Zero means
	// the URL's pool_max_conns if it has one, else DefaultMaxConns; a
	// positive value overrides the URL. Each connection counts against the
	// PostgreSQL server's max_connections, which many test servers share.
	// Unused with HandlerSQLite.
	MaxConns int

	// SQLiteDir is the directory of the SQLite files (one per MongoDB
	// database); required for HandlerSQLite and created if missing.
	SQLiteDir string

	// Logger receives FerretDB's logs. Nil means a stderr logger at level
	// slog.LevelError+4, which silences FerretDB's routine ERROR lines (it
	// logs every stale conditional upsert, a duplicate key, at ERROR).
	Logger *slog.Logger
}

// Server is a running embedded FerretDB. Its methods are safe for
// concurrent use.
type Server struct {
	uri  string
	pool *pgxpool.Pool // PostgreSQL backend only; used by EnsureIDIndex

	cancel    context.CancelFunc
	done      chan struct{}
	runErr    error // written before done is closed
	closeOnce sync.Once
}

// Start validates opts, checks that the backend is reachable, and starts
// FerretDB listening on opts.Addr. ctx bounds the start-up work only; the
// server runs until Close. The caller must call Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	handler := opts.Handler
	if handler == "" {
		handler = HandlerPostgreSQL
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	}

	// ferretdb.New binds the listener only after it has opened the backend,
	// and on a listen error it returns without closing that backend: the
	// leaked object's finalizer later panics the whole process ("... has not
	// been finalized", seen with the sqlite handler). Probe the address
	// first so the usual failures (bad host, port in use) never reach New.
	if err := probeListen(addr); err != nil {
		return nil, fmt.Errorf("mongowire: %w", err)
	}

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		Logger:   logger,
		Handler:  handler,
	}
	s := &Server{done: make(chan struct{})}

	switch handler {
	case HandlerPostgreSQL:
		pgURL, err := backendURL(opts.PostgreSQLURL, opts.MaxConns)
		if err != nil {
			return nil, fmt.Errorf("mongowire: %w", err)
		}
		pool, err := openPool(ctx, pgURL)
		if err != nil {
			return nil, fmt.Errorf("mongowire: %w", err)
		}
		s.pool = pool
		cfg.PostgreSQLURL = pgURL
	case HandlerSQLite:
		sqliteURL, err := sqliteDirURL(opts.SQLiteDir)
		if err != nil {
			return nil, fmt.Errorf("mongowire: %w", err)
		}
		cfg.SQLiteURL = sqliteURL
	default:
		return nil, fmt.Errorf("mongowire: unknown handler %q: want %q or %q", handler, HandlerPostgreSQL, HandlerSQLite)
	}

	newMu.Lock()
	fdb, err := ferretdb.New(cfg)
	newMu.Unlock()
	if err != nil {
		if s.pool != nil {
			s.pool.Close()
		}
		return nil, fmt.Errorf("mongowire: start FerretDB on %s: %w", addr, err)
	}
	// New has bound the listener, so the address is known; connections
	// queue in the backlog until Run accepts them.
	s.uri = dialableURI(fdb.MongoDBURI())

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.runErr = fdb.Run(runCtx)
	}()
	return s, nil
}

// URI returns the mongodb:// URI of the server, e.g.
// "mongodb://127.0.0.1:41234/".
func (s *Server) URI() string { return s.uri }

// Close stops the server and waits until it has shut down and released its
// backend. FerretDB gives still-connected clients up to 3 seconds to go
// away, so disconnect clients first for a fast Close. Close is idempotent;
// every call returns the same result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.done
		if s.pool != nil {
			s.pool.Close()
		}
	})
	<-s.done
	if s.runErr != nil {
		return fmt.Errorf("mongowire: run: %w", s.runErr)
	}
	return nil
}

// EnsureIDIndex makes lookups by _id in collection db.collection use an
// index on the PostgreSQL backend. FerretDB filters _id with
// `_jsonb->'_id' @> $1`, which its own btree index cannot serve, so every
// findOne or versioned upsert scans the whole table; this adds a GIN
// jsonb_path_ops index on _jsonb->'_id' that can (measured when it was
// added: about 8x faster versioned upserts and 16x faster findOne at 20k
// documents; it relies on plan_cache_mode=force_custom_plan, which Start
// sets, and neither change helps without the other).
//
// The collection must already exist (create it with the driver's
// CreateCollection or an insert); otherwise the error wraps
// ErrCollectionNotFound. The call is idempotent and safe to run
// concurrently. The index is invisible to listIndexes and is dropped with
// the collection. On the SQLite backend EnsureIDIndex does nothing.
func (s *Server) EnsureIDIndex(ctx context.Context, db, collection string) error {
	if s.pool == nil {
		return nil
	}
	q := fmt.Sprintf(`SELECT _jsonb->>'table' FROM %s WHERE _jsonb->>'_id' = $1`,
		pgx.Identifier{db, metadataTable}.Sanitize())
	var table string
	err := s.pool.QueryRow(ctx, q, collection).Scan(&table)
	switch {
	case errors.Is(err, pgx.ErrNoRows), isGone(err): // no such collection, or no such database (schema)
		return fmt.Errorf("%w: %s.%s", ErrCollectionNotFound, db, collection)
	case err != nil:
		return fmt.Errorf("mongowire: ensure _id index on %s.%s: find table: %w", db, collection, err)
	}

	if err := s.ensureTableIDIndex(ctx, db, table); err != nil {
		return fmt.Errorf("mongowire: ensure _id index on %s.%s: %w", db, collection, err)
	}
	return nil
}

// EnsureIDIndexes applies EnsureIDIndex to every collection that exists in
// every database of the PostgreSQL backend at the time of the call; it
// suits a periodic loop in a dev stack where collections appear lazily.
// Collections dropped meanwhile are skipped; other failures are joined. On
// the SQLite backend it does nothing.
func (s *Server) EnsureIDIndexes(ctx context.Context) error {
	if s.pool == nil {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT schemaname FROM pg_tables WHERE tablename = $1 ORDER BY 1`, metadataTable)
	if err != nil {
		return fmt.Errorf("mongowire: ensure _id indexes: list databases: %w", err)
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("mongowire: ensure _id indexes: list databases: %w", err)
	}
	var errs []error
	for _, db := range dbs {
		q := fmt.Sprintf(`SELECT _jsonb->>'_id', _jsonb->>'table' FROM %s ORDER BY 1`,
			pgx.Identifier{db, metadataTable}.Sanitize())
		rows, err := s.pool.Query(ctx, q)
		if err != nil {
			if !isGone(err) {
				errs = append(errs, fmt.Errorf("list collections of %s: %w", db, err))
			}
			continue
		}
		colls, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Name, Table string }])
		if err != nil {
			if !isGone(err) {
				errs = append(errs, fmt.Errorf("list collections of %s: %w", db, err))
			}
			continue
		}
		for _, c := range colls {
			if err := s.ensureTableIDIndex(ctx, db, c.Table); err != nil && !isGone(err) {
				errs = append(errs, fmt.Errorf("%s.%s: %w", db, c.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mongowire: ensure _id indexes: %w", err)
	}
	return nil
}

// ensureTableIDIndex creates the GIN _id index on schema.table if missing.
func (s *Server) ensureTableIDIndex(ctx context.Context, schema, table string) error {
	if table == "" {
		return errors.New("metadata has no table name")
	}
	const suffix = "_id_gin"
	index := table
	if len(index) > 63-len(suffix) { // PostgreSQL truncates identifiers to 63 bytes
		index = index[:63-len(suffix)]
	}
	index += suffix
	q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s USING gin ((_jsonb->'_id') jsonb_path_ops) WITH (fastupdate = off)`,
		pgx.Identifier{index}.Sanitize(), pgx.Identifier{schema, table}.Sanitize())
	if _, err := s.pool.Exec(ctx, q); err != nil {
		// A concurrent creator of the same index wins the race on pg_class.
		if code := pgCode(err); code == "23505" || code == "42P07" {
			return nil
		}
		return fmt.Errorf("create index: %w", err)
	}
	return s.disableGINPendingList(ctx, schema, index)
}

// disableGINPendingList turns fastupdate off on an _id index created with
// it on (by an earlier version), and merges its pending list. With
// fastupdate, GIN appends new entries to an unsorted pending list that every
// lookup scans until VACUUM or the list's 4 MB limit merges it: under a
// steady stream of inserts each _id lookup grows slower and the readers
// fall behind in waves (measured: a soak at 230 creates/s let the reader
// group's lag grow to 3,600 and freshness to 12 s; with fastupdate off, lag
// stayed under 20 and freshness p50 under 90 ms). A no-op, one catalog
// read, when the index is already right.
func (s *Server) disableGINPendingList(ctx context.Context, schema, index string) error {
	var fastupdateOff bool
	err := s.pool.QueryRow(ctx, `SELECT coalesce('fastupdate=off' = ANY(c.reloptions), false)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, schema, index).Scan(&fastupdateOff)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // dropped meanwhile
		return nil
	case err != nil:
		return fmt.Errorf("read index options: %w", err)
	case fastupdateOff:
		return nil
	}
	id := pgx.Identifier{schema, index}.Sanitize()
	if _, err := s.pool.Exec(ctx, fmt.Sprintf(`ALTER INDEX %s SET (fastupdate = off)`, id)); err != nil {
		return fmt.Errorf("turn fastupdate off: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `SELECT gin_clean_pending_list($1::regclass)`, id); err != nil {
		return fmt.Errorf("merge pending list: %w", err)
	}
	return nil
}

// isGone reports whether err says the schema or table no longer exists.
func isGone(err error) bool {
	code := pgCode(err)
	return code == "42P01" || code == "3F000" // undefined_table, invalid_schema_name
}

// backendURL validates a postgres URL and returns the one FerretDB gets: it
// adds plan_cache_mode=force_custom_plan unless plan_cache_mode is already
// set, and sets pool_max_conns to maxConns if positive, else keeps the
// URL's or sets DefaultMaxConns.
func backendURL(pgURL string, maxConns int) (string, error) {
	if pgURL == "" {
		return "", errors.New("PostgreSQLURL is required for the postgresql handler")
	}
	if maxConns < 0 {
		return "", fmt.Errorf("MaxConns %d is negative", maxConns)
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		return "", errors.New("PostgreSQLURL is not a valid URL") // url.Error would print the password
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("PostgreSQLURL scheme %q is not postgres or postgresql", u.Scheme)
	}
	q := u.Query()
	if !q.Has("plan_cache_mode") {
		q.Set("plan_cache_mode", "force_custom_plan")
	}
	switch {
	case maxConns > 0:
		q.Set("pool_max_conns", strconv.Itoa(maxConns))
	case q.Has("pool_max_conns"):
		if n, err := strconv.Atoi(q.Get("pool_max_conns")); err != nil || n < 1 {
			return "", fmt.Errorf("PostgreSQLURL: pool_max_conns %q is not a positive integer", q.Get("pool_max_conns"))
		}
	default:
		q.Set("pool_max_conns", strconv.Itoa(DefaultMaxConns))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// openPool opens a small pool on pgURL for EnsureIDIndex and pings it so a
// missing server or database fails Start with a clear error.
func openPool(ctx context.Context, pgURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		return nil, fmt.Errorf("parse PostgreSQLURL: %w", err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reach PostgreSQL at %s: %w", redact(pgURL), err)
	}
	return pool, nil
}

// sqliteDirURL creates dir if needed and returns the file: URL FerretDB
// expects: an absolute directory path ending in a slash.
func sqliteDirURL(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("SQLiteDir is required for the sqlite handler")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("SQLiteDir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create SQLiteDir: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs) + "/"}
	return u.String(), nil
}

// probeListen checks that addr can be bound, then releases it.
func probeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if err := ln.Close(); err != nil {
		return fmt.Errorf("release probe listener on %s: %w", addr, err)
	}
	return nil
}

// dialableURI replaces a wildcard listen host (0.0.0.0, ::) in uri with
// 127.0.0.1, which clients can dial.
func dialableURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return uri
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		u.Host = net.JoinHostPort("127.0.0.1", port)
	}
	return u.String()
}

// pgCode returns the SQLSTATE of err, or "" if it carries none.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// redact hides the password of a URL for error messages.
func redact(pgURL string) string {
	u, err := url.Parse(pgURL)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}
