package mongowire_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	return runtest.Context(t, 60*time.Second)
}

// backendOptions returns Options for handler with a fresh backing store.
func backendOptions(t *testing.T, handler string) mongowire.Options {
	t.Helper()
	switch handler {
	case mongowire.HandlerPostgreSQL:
		return mongowire.Options{Handler: handler, PostgreSQLURL: pgtest.NewDatabase(t)}
	case mongowire.HandlerSQLite:
		return mongowire.Options{Handler: handler, SQLiteDir: t.TempDir()}
	}
	t.Fatalf("unknown handler %q", handler)
	return mongowire.Options{}
}

// startServer starts a server and registers its Close; register client
// cleanups after this so clients disconnect first.
func startServer(ctx context.Context, t *testing.T, opts mongowire.Options) *mongowire.Server {
	t.Helper()
	s, err := mongowire.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func connect(ctx context.Context, t *testing.T, uri string) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(20 * time.Second))
	if err != nil {
		t.Fatalf("mongo.Connect: %v", err)
	}
	t.Cleanup(func() {
		if err := client.Disconnect(context.Background()); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
	})
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("ping %s: %v", uri, err)
	}
	return client
}

type view struct {
	ID      string `bson:"_id"`
	Name    string `bson:"name"`
	City    string `bson:"city"`
	Version int64  `bson:"version"`
}

// upsertIfNewer writes v unless the stored document already has a version
// >= v.Version. It reports whether the write was applied.
func upsertIfNewer(ctx context.Context, coll *mongo.Collection, v view) (bool, error) {
	filter := bson.D{{Key: "_id", Value: v.ID}, {Key: "version", Value: bson.D{{Key: "$lt", Value: v.Version}}}}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "name", Value: v.Name}, {Key: "city", Value: v.City}, {Key: "version", Value: v.Version},
	}}}
	_, err := coll.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return false, nil // the stored version is newer or equal: stale event
	}
	return err == nil, err
}

func TestServer(t *testing.T) {
	t.Parallel()
	for _, handler := range []string{mongowire.HandlerPostgreSQL, mongowire.HandlerSQLite} {
		t.Run(handler, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			opts := backendOptions(t, handler)
			s := startServer(ctx, t, opts)
			if !strings.HasPrefix(s.URI(), "mongodb://127.0.0.1:") {
				t.Fatalf("URI = %q, want mongodb://127.0.0.1:<port>/", s.URI())
			}
			coll := connect(ctx, t, s.URI()).Database("propalpes").Collection("companias")

			t.Run("insert and find", func(t *testing.T) {
				docs := []any{
					view{ID: "c1", Name: "Alfa", City: "Grenoble", Version: 1},
					view{ID: "c2", Name: "Beta", City: "Annecy", Version: 1},
					view{ID: "c3", Name: "Gamma", City: "Grenoble", Version: 1},
				}
				if _, err := coll.InsertMany(ctx, docs); err != nil {
					t.Fatalf("InsertMany: %v", err)
				}
				_, err := coll.InsertOne(ctx, view{ID: "c1", Name: "dup"})
				if !mongo.IsDuplicateKeyError(err) {
					t.Fatalf("duplicate InsertOne = %v, want a duplicate key error", err)
				}

				var got view
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "c2"}}).Decode(&got); err != nil {
					t.Fatalf("FindOne: %v", err)
				}
				if got.Name != "Beta" || got.City != "Annecy" {
					t.Fatalf("FindOne = %+v", got)
				}
				err = coll.FindOne(ctx, bson.D{{Key: "_id", Value: "nope"}}).Err()
				if !errors.Is(err, mongo.ErrNoDocuments) {
					t.Fatalf("FindOne missing = %v, want ErrNoDocuments", err)
				}

				cur, err := coll.Find(ctx, bson.D{{Key: "city", Value: "Grenoble"}},
					options.Find().SetSort(bson.D{{Key: "name", Value: -1}}))
				if err != nil {
					t.Fatalf("Find: %v", err)
				}
				var list []view
				if err := cur.All(ctx, &list); err != nil {
					t.Fatalf("cursor: %v", err)
				}
				if len(list) != 2 || list[0].ID != "c3" || list[1].ID != "c1" {
					t.Fatalf("Find sorted = %+v, want c3, c1", list)
				}
			})

			t.Run("conditional versioned upsert", func(t *testing.T) {
				steps := []struct {
					v       view
					applied bool
				}{
					{view{ID: "u1", Name: "v3", Version: 3}, true},   // absent: inserted
					{view{ID: "u1", Name: "v5", Version: 5}, true},   // newer: applied
					{view{ID: "u1", Name: "v4", Version: 4}, false},  // older: dropped
					{view{ID: "u1", Name: "v5b", Version: 5}, false}, // equal: dropped
				}
				for _, st := range steps {
					applied, err := upsertIfNewer(ctx, coll, st.v)
					if err != nil {
						t.Fatalf("upsert %+v: %v", st.v, err)
					}
					if applied != st.applied {
						t.Fatalf("upsert %+v applied=%v, want %v", st.v, applied, st.applied)
					}
				}
				var got view
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "u1"}}).Decode(&got); err != nil {
					t.Fatalf("FindOne: %v", err)
				}
				if got.Version != 5 || got.Name != "v5" {
					t.Fatalf("after upserts = %+v, want version 5 named v5", got)
				}
			})

			t.Run("EnsureIDIndex", func(t *testing.T) {
				if err := s.EnsureIDIndex(ctx, "propalpes", "companias"); err != nil {
					t.Fatalf("EnsureIDIndex: %v", err)
				}
				if err := s.EnsureIDIndex(ctx, "propalpes", "companias"); err != nil {
					t.Fatalf("EnsureIDIndex again: %v", err)
				}
				err := s.EnsureIDIndex(ctx, "propalpes", "missing")
				err2 := s.EnsureIDIndex(ctx, "nodb", "missing")
				if handler == mongowire.HandlerSQLite {
					if err != nil || err2 != nil {
						t.Fatalf("EnsureIDIndex on sqlite = %v, %v; want nil (no-op)", err, err2)
					}
					return
				}
				if !errors.Is(err, mongowire.ErrCollectionNotFound) || !errors.Is(err2, mongowire.ErrCollectionNotFound) {
					t.Fatalf("EnsureIDIndex on missing = %v, %v; want ErrCollectionNotFound", err, err2)
				}
				// The index is on the collection's table, and reads still work.
				if n := ginIndexes(ctx, t, opts.PostgreSQLURL, "propalpes"); n != 1 {
					t.Fatalf("found %d GIN _id indexes in schema propalpes, want 1", n)
				}
				if plan := explainIDLookup(ctx, t, opts.PostgreSQLURL, "propalpes"); !strings.Contains(plan, "_id_gin") {
					t.Fatalf("the _id lookup cannot use the GIN index; plan:\n%s", plan)
				}
				applied, err := upsertIfNewer(ctx, coll, view{ID: "u1", Name: "v6", Version: 6})
				if err != nil || !applied {
					t.Fatalf("upsert after index = %v, %v", applied, err)
				}
				if n, err := coll.CountDocuments(ctx, bson.D{}); err != nil || n != 4 {
					t.Fatalf("CountDocuments = %d, %v; want 4", n, err)
				}
			})
		})
	}
}

// pgConnect connects to pgURL or fails the test; the caller closes the
// connection.
func pgConnect(ctx context.Context, t *testing.T, pgURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

func ginIndexes(ctx context.Context, t *testing.T, pgURL, schema string) int {
	t.Helper()
	conn := pgConnect(ctx, t, pgURL)
	defer conn.Close(ctx)
	var n int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_indexes
		WHERE schemaname = $1 AND indexdef LIKE '%USING gin%jsonb_path_ops%WITH (fastupdate=off)%'`, schema).Scan(&n)
	if err != nil {
		t.Fatalf("pg_indexes: %v", err)
	}
	return n
}

// enableFastupdate turns fastupdate on for every GIN index of schema, as an
// earlier version created them.
func enableFastupdate(ctx context.Context, t *testing.T, pgURL, schema string) {
	t.Helper()
	conn := pgConnect(ctx, t, pgURL)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexdef LIKE '%USING gin%'`, schema)
	if err != nil {
		t.Fatalf("pg_indexes: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("pg_indexes: %v", err)
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, `ALTER INDEX `+pgx.Identifier{schema, n}.Sanitize()+` SET (fastupdate = on)`); err != nil {
			t.Fatalf("alter %s: %v", n, err)
		}
	}
}

// explainIDLookup plans FerretDB's _id lookup shape (`_jsonb->'_id' @> $1`)
// on the only collection table in schema with sequential scans disabled,
// and returns the plan text: it names the index when the index can serve
// the lookup.
func explainIDLookup(ctx context.Context, t *testing.T, pgURL, schema string) string {
	t.Helper()
	conn := pgConnect(ctx, t, pgURL)
	defer conn.Close(ctx)
	var table string
	err := conn.QueryRow(ctx, `SELECT tablename FROM pg_tables
		WHERE schemaname = $1 AND tablename NOT LIKE '\_ferretdb\_%'`, schema).Scan(&table)
	if err != nil {
		t.Fatalf("find collection table: %v", err)
	}
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off; SET plan_cache_mode = force_custom_plan`); err != nil {
		t.Fatalf("set: %v", err)
	}
	q := fmt.Sprintf(`EXPLAIN SELECT _jsonb FROM %s WHERE _jsonb->'_id' @> $1`, pgx.Identifier{schema, table}.Sanitize())
	rows, err := conn.Query(ctx, q, `"u1"`)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("explain rows: %v", err)
	}
	return strings.Join(lines, "\n")
}

func TestEnsureIDIndexes(t *testing.T) {
	t.Parallel()
	for _, handler := range []string{mongowire.HandlerPostgreSQL, mongowire.HandlerSQLite} {
		t.Run(handler, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			opts := backendOptions(t, handler)
			s := startServer(ctx, t, opts)
			if err := s.EnsureIDIndexes(ctx); err != nil {
				t.Fatalf("EnsureIDIndexes with no databases: %v", err)
			}
			client := connect(ctx, t, s.URI())
			for _, ns := range [][2]string{{"a", "one"}, {"a", "two"}, {"b", "one"}} {
				if _, err := client.Database(ns[0]).Collection(ns[1]).InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
					t.Fatalf("insert into %s.%s: %v", ns[0], ns[1], err)
				}
			}
			for range 2 { // idempotent
				if err := s.EnsureIDIndexes(ctx); err != nil {
					t.Fatalf("EnsureIDIndexes: %v", err)
				}
			}
			if handler == mongowire.HandlerSQLite {
				return
			}
			if a, b := ginIndexes(ctx, t, opts.PostgreSQLURL, "a"), ginIndexes(ctx, t, opts.PostgreSQLURL, "b"); a != 2 || b != 1 {
				t.Fatalf("GIN _id indexes without a pending list: a=%d b=%d, want 2 and 1", a, b)
			}
			// Indexes an earlier version made with fastupdate on are switched off.
			enableFastupdate(ctx, t, opts.PostgreSQLURL, "a")
			if a := ginIndexes(ctx, t, opts.PostgreSQLURL, "a"); a != 0 {
				t.Fatalf("after turning fastupdate on: %d indexes still off", a)
			}
			if err := s.EnsureIDIndexes(ctx); err != nil {
				t.Fatalf("EnsureIDIndexes: %v", err)
			}
			if a := ginIndexes(ctx, t, opts.PostgreSQLURL, "a"); a != 2 {
				t.Fatalf("GIN _id indexes of a with fastupdate off after EnsureIDIndexes: %d, want 2", a)
			}
		})
	}
}

func TestParallelServers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	opts := []mongowire.Options{
		backendOptions(t, mongowire.HandlerPostgreSQL),
		backendOptions(t, mongowire.HandlerPostgreSQL),
		backendOptions(t, mongowire.HandlerSQLite),
		backendOptions(t, mongowire.HandlerSQLite),
	}
	servers := make([]*mongowire.Server, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Go(func() { servers[i], errs[i] = mongowire.Start(ctx, opts[i]) })
	}
	wg.Wait()
	for i, s := range servers {
		if s != nil {
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		if errs[i] != nil {
			t.Fatalf("Start #%d: %v", i, errs[i])
		}
	}
	seen := map[string]bool{}
	for i, s := range servers {
		if seen[s.URI()] {
			t.Fatalf("URI %s handed out twice", s.URI())
		}
		seen[s.URI()] = true
		coll := connect(ctx, t, s.URI()).Database("db").Collection("c")
		wg.Go(func() {
			_, errs[i] = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprint("server-", i)}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("insert on server #%d: %v", i, err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	for name, tc := range map[string]struct {
		opts mongowire.Options
		want string
	}{
		"unknown handler":    {mongowire.Options{Handler: "mysql"}, "unknown handler"},
		"no postgres URL":    {mongowire.Options{}, "PostgreSQLURL is required"},
		"not a postgres URL": {mongowire.Options{PostgreSQLURL: "mysql://h/db"}, "scheme"},
		"no sqlite dir":      {mongowire.Options{Handler: mongowire.HandlerSQLite}, "SQLiteDir is required"},
		"negative MaxConns":  {mongowire.Options{PostgreSQLURL: "postgres://h/db", MaxConns: -1}, "MaxConns"},
		"unreachable postgres": {mongowire.Options{
			PostgreSQLURL: "postgres://postgres:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=5",
		}, "127.0.0.1:1"},
		"address in use":     {mongowire.Options{Addr: busyAddr(t), Handler: mongowire.HandlerSQLite, SQLiteDir: t.TempDir()}, "listen"},
		"bad listen address": {mongowire.Options{Addr: "256.0.0.1:0", Handler: mongowire.HandlerSQLite, SQLiteDir: t.TempDir()}, "listen"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := mongowire.Start(ctx, tc.opts)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Start(%+v) succeeded, want an error", tc.opts)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Start error leaks the password: %v", err)
			}
		})
	}
}

// busyAddr returns the address of a listener held open for the test.
func busyAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

func TestWildcardAddrAndIdempotentClose(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	opts := backendOptions(t, mongowire.HandlerSQLite)
	opts.Addr = "0.0.0.0:0"
	s, err := mongowire.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !strings.HasPrefix(s.URI(), "mongodb://127.0.0.1:") {
		t.Errorf("URI = %q, want a 127.0.0.1 host", s.URI())
	}
	client, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
	if err != nil {
		t.Fatalf("mongo.Connect: %v", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := client.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}

// TestMaxConnsBoundsMatchingStatements pins down the FerretDB behaviour the
// package documentation describes, and that MaxConns reaches FerretDB's
// pool: an update command needs one pooled connection per statement that
// matched, plus one; commands that fit in the pool together complete, and
// one that does not hangs the server.
func TestMaxConnsBoundsMatchingStatements(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const maxConns = 6
	opts := backendOptions(t, mongowire.HandlerPostgreSQL)
	opts.MaxConns = maxConns
	s := startServer(ctx, t, opts)
	db := connect(ctx, t, s.URI()).Database("pool")
	coll := db.Collection("docs")
	var docs []any
	for i := range 2 * maxConns {
		docs = append(docs, view{ID: fmt.Sprintf("d%02d", i), Version: 1})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("InsertMany: %v", err)
	}
	// update returns an ordered bulk write of one version-guarded update
	// per document of ids (each one matches) on a client of its own.
	version := int64(1)
	update := func(ctx context.Context, ids ...int) error {
		version++
		models := make([]mongo.WriteModel, len(ids))
		for i, id := range ids {
			models[i] = mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: fmt.Sprintf("d%02d", id)}, {Key: "version", Value: bson.D{{Key: "$lt", Value: version}}}}).
				SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: version}}}})
		}
		res, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
		if err == nil && res.MatchedCount != int64(len(ids)) {
			return fmt.Errorf("matched %d statements, want %d", res.MatchedCount, len(ids))
		}
		return err
	}

	// maxConns-1 matching statements: maxConns connections at the peak.
	if err := update(ctx, 0, 1, 2, 3, 4); err != nil {
		t.Fatalf("update of %d matching statements: %v", maxConns-1, err)
	}
	// Two concurrent commands of 2 matching statements: at most 3+3.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		other := connect(ctx, t, s.URI()).Database("pool").Collection("docs")
		ids := []int{2 * i, 2*i + 1}
		wg.Go(func() {
			models := make([]mongo.WriteModel, len(ids))
			for j, id := range ids {
				models[j] = mongo.NewUpdateOneModel().
					SetFilter(bson.D{{Key: "_id", Value: fmt.Sprintf("d%02d", id)}}).
					SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "concurrent"}}}})
			}
			_, errs[i] = other.BulkWrite(ctx, models)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent updates within the pool: %v", err)
	}

	// maxConns matching statements: the last one waits for a connection
	// the command itself holds. The server never answers.
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := update(hctx, 0, 1, 2, 3, 4, 5)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("update of %d matching statements = %v, want a client timeout (the server hangs)", maxConns, err)
	}
}
