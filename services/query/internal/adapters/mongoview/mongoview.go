// Package mongoview stores the companias read model (view.Compania) in
// MongoDB, or in FerretDB speaking the MongoDB protocol.
//
// # Layout
//
// The views live in one collection per generation, "companias_<gen>". A
// small collection "vistas" holds the pointer to the active generation (the
// document {_id: "companias", generation: <gen>}) and the rebuild lock. A
// rebuild fills a new generation while the active one keeps serving, then
// switches the pointer with one update of that document. Readers and writers
// re-read the pointer at most every Options.PointerTTL.
//
// One document per company: _id is the company id; it holds every snapshot
// field, nombre_lower and email_lower (for case-insensitive queries),
// version, event_time and historial. Times are stored as fixed-width RFC 3339
// strings with nanoseconds in UTC ("2026-11-27T10:00:00.123456789Z"): they
// keep the exact event time (a BSON date keeps milliseconds only) and sort
// lexicographically in time order. historial is an embedded document keyed
// by "v<version>" of the event that changed the estado, so each entry can be
// $set by a dotted path, idempotently, without reading the document; Get and
// List render it as a list sorted by version.
//
// # Writes
//
// Apply writes the output of projection.CollapseRuns (one run per company:
// its view and its first version) without reading in the normal path, with
// the rules of projection.Merge. The fast path is a version-guarded
// statement per run: a run from version 1 upserts {_id, version: {$lt: v}}
// with {$set: snapshot, historial.v<n>…}; a later run updates, without
// upsert, {_id, version: {$gte: first-1, $lt: v}}, which matches only when
// no event is missing between the stored view and the run. When the stored
// version is not lower, the upsert collides with the existing _id (E11000):
// the snapshot is stale. The server stops the bulk write there, and FerretDB
// v1 reports the wrong index (always 0) and no counts, so the rest of that
// chunk, and its later runs that matched nothing, are sent again in a form
// that cannot collide: an upsert on {_id} with $setOnInsert of the snapshot
// and $set of the historial entries, followed by a version-guarded update
// without upsert. That form first reads the stored versions of its later
// runs to report version gaps (see ApplyTo).
//
// Writes go out as ordered BulkWrite calls of at most Options.ChunkSize (10)
// statements. FerretDB v1 holds one PostgreSQL connection per statement of
// an update command that matched a document until the command ends, so
// concurrent update commands whose matching statements reach its pool size
// (50 by default) hang it for good (see package mongowire): small chunks let
// several readers and a rebuild write to one FerretDB at once.
//
// # Reads
//
// Get, List (keyset pagination), Estadisticas (computed from the documents
// at query time with $group/$sum, so it cannot drift) and Ping. Every value
// that comes from a user is passed as a BSON string value, never as a key, so
// it cannot become a query operator; the nombre prefix is anchored and
// escaped with regexp.QuoteMeta. Sorting by nombre compares the lower-cased
// UTF-8 bytes (no collation: FerretDB v1 has none), so "ñ" sorts after "z".
//
// Each generation gets secondary indexes for those queries, created one per
// call: FerretDB v1.24 panics on a createIndexes command that lists two or
// more indexes that all exist already.
//
// The package avoids what FerretDB v1 gets wrong or lacks: $project and
// $addFields field paths (wrong values), transactions and change streams.
package mongoview

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/query/internal/view"
)

// Collection names and documents of the store.
const (
	// PointerCollection holds the active-generation pointer and the rebuild lock.
	PointerCollection = "vistas"
	// CollectionPrefix starts the name of every view generation collection.
	CollectionPrefix = "companias_"
	// InitialGeneration is the generation Open creates when the database has none.
	InitialGeneration = "1"

	pointerID = "companias"
	lockID    = "rebuild_lock"
)

// Defaults of Options.
const (
	DefaultPointerTTL = 500 * time.Millisecond
	// DefaultChunkSize keeps the statements that the writers of one
	// FerretDB v1 hold at once below its pool of 50 PostgreSQL connections
	// with four concurrent writers (three readers and a rebuild), with room
	// for the reads. On FerretDB it is no slower than chunks of 40
	// (BenchmarkApplyChunkSize); on MongoDB it means more round trips per
	// batch.
	DefaultChunkSize = 10
	// DefaultQueryTimeout bounds each read of the store unless
	// Options.QueryTimeout says otherwise.
	DefaultQueryTimeout = 5 * time.Second
	// MaxChunkSize is the largest ChunkSize accepted. FerretDB v1 hangs on
	// an update command of 50 or more matching statements: keep ChunkSize
	// below 50 there (a hang ends at the caller's deadline).
	MaxChunkSize = 1000
)

// Options configure a Store.
type Options struct {
	// Database is the MongoDB database of the views; required.
	Database string
	// PointerTTL is how long a cached active-generation pointer may be used
	// before it is read again. Zero means DefaultPointerTTL; a negative value
	// re-reads the pointer on every call. A rebuild waits at least this long
	// after switching the pointer (see package rebuild).
	PointerTTL time.Duration
	// ChunkSize is the number of operations per BulkWrite call, 1 to
	// MaxChunkSize. Zero means DefaultChunkSize. Against FerretDB v1, the
	// writers of a server together must keep ChunkSize × writers below its
	// PostgreSQL pool size.
	ChunkSize int
	// OnCollectionCreated, if not nil, is called after the store creates a
	// collection (and, on Open, for the existing active generation and the
	// pointer collection, so it must be idempotent). The embedded FerretDB
	// uses it to add its _id index (mongowire.Server.EnsureIDIndex). An error
	// fails the operation that created the collection.
	OnCollectionCreated func(ctx context.Context, db, coll string) error
	// Now returns the current time, for the rebuild lock's expiry. Nil means time.Now.
	Now func() time.Time
	// QueryTimeout bounds every read (Get, GetIn, List, Estadisticas, Ping,
	// the generation pointer and the rebuild lock) on top of the caller's
	// deadline. For a lookup by id (FindOne) the driver sends the remaining
	// time as maxTimeMS, so the server gives up too; for List and
	// Estadisticas, which open cursors, the driver never sends maxTimeMS
	// (DRIVERS-2722) and the deadline ends them client side.
	// Zero means DefaultQueryTimeout. Writes run under the caller's
	// deadline (the consumer's PROJECTION_WRITE_TIMEOUT), sent the same way.
	QueryTimeout time.Duration
}

// Store is the MongoDB view store. It is safe for concurrent use. Build it
// with Open.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	opts   Options

	mu       sync.Mutex
	gen      string
	genColl  *mongo.Collection // the collection of gen, built once per pointer change
	genRead  time.Time         // monotonic time of the pointer read
	hasCache bool
}

// WriteStats describes one Apply call.
type WriteStats struct {
	// Views is the number of views given.
	Views int
	// SafeViews is the number of views (re)sent in the collision-safe form
	// because their chunk hit a duplicate key: stale views (replays) and,
	// on FerretDB, the views before them in the chunk.
	SafeViews int
	// Calls is the number of write round trips made.
	Calls int
	// Reads is the number of round trips made to read stored versions:
	// one per chunk that went to the collision-safe form with a run that
	// starts above version 1.
	Reads int
	// Gaps lists the runs whose first version was more than one above the
	// stored view's version (0 when there was none), in the order found.
	Gaps []view.VersionGap
	// GapsWhileRebuilding counts the gaps Apply left out of Gaps because
	// a rebuild is still filling the generation written.
	GapsWhileRebuilding int
}

// Open returns a Store on client for opts.Database. It makes sure the
// pointer collection and the active generation exist (creating generation
// InitialGeneration, with its indexes, on an empty database) and that the
// active generation has its indexes. Open is safe to run concurrently from
// several replicas.
func Open(ctx context.Context, client *mongo.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("mongoview: nil client")
	}
	if opts.Database == "" {
		return nil, errors.New("mongoview: empty database name")
	}
	if opts.PointerTTL == 0 {
		opts.PointerTTL = DefaultPointerTTL
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.ChunkSize < 1 || opts.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("mongoview: chunk size %d out of range [1, %d]", opts.ChunkSize, MaxChunkSize)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	s := &Store{client: client, db: client.Database(opts.Database), opts: opts}
	if err := s.ensureCollection(ctx, PointerCollection); err != nil {
		return nil, err
	}
	gen, err := s.readPointer(ctx)
	if errors.Is(err, mongo.ErrNoDocuments) {
		if err := s.EnsureGeneration(ctx, InitialGeneration); err != nil {
			return nil, err
		}
		_, err = s.db.Collection(PointerCollection).InsertOne(ctx, bson.D{
			{Key: "_id", Value: pointerID}, {Key: "generation", Value: InitialGeneration},
		})
		if err != nil && !mongo.IsDuplicateKeyError(err) { // a concurrent Open won
			return nil, fmt.Errorf("mongoview: create generation pointer: %w", err)
		}
		gen, err = s.readPointer(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("mongoview: read generation pointer: %w", err)
	}
	if err := s.EnsureGeneration(ctx, gen); err != nil {
		return nil, err
	}
	s.cache(gen)
	return s, nil
}

// PointerTTL returns how long a cached generation pointer is used (negative:
// never cached).
func (s *Store) PointerTTL() time.Duration { return s.opts.PointerTTL }

// CollectionName returns the collection name of generation gen.
func CollectionName(gen string) string { return CollectionPrefix + gen }

// bound returns ctx limited to the QueryTimeout of one read.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.QueryTimeout)
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return classify("ping view store", err)
	}
	return nil
}

// ActiveGeneration returns the active generation, from the cache if it was
// read less than PointerTTL ago.
func (s *Store) ActiveGeneration(ctx context.Context) (string, error) {
	gen, _, err := s.activeGeneration(ctx)
	return gen, err
}

// activeGeneration is ActiveGeneration with the collection of the
// generation, kept with the cached pointer so that a read builds no
// *mongo.Collection.
func (s *Store) activeGeneration(ctx context.Context) (string, *mongo.Collection, error) {
	if s.opts.PointerTTL > 0 {
		s.mu.Lock()
		gen, coll, ok := s.gen, s.genColl, s.hasCache && time.Since(s.genRead) < s.opts.PointerTTL
		s.mu.Unlock()
		if ok {
			return gen, coll, nil
		}
	}
	gen, err := s.readPointer(ctx)
	if err != nil {
		return "", nil, classify("read generation pointer", err)
	}
	return gen, s.cache(gen), nil
}

// cache records gen as the active generation read now and returns its
// collection (the cached one when gen did not change).
func (s *Store) cache(gen string) *mongo.Collection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.genColl == nil || s.gen != gen {
		s.genColl = s.db.Collection(CollectionName(gen))
	}
	s.gen, s.genRead, s.hasCache = gen, time.Now(), true
	return s.genColl
}

func (s *Store) readPointer(ctx context.Context) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var p struct {
		Generation string `bson:"generation"`
	}
	err := s.db.Collection(PointerCollection).FindOne(ctx, bson.D{{Key: "_id", Value: pointerID}}).Decode(&p)
	if err != nil {
		return "", err
	}
	if p.Generation == "" {
		return "", errors.New("generation pointer has no generation")
	}
	return p.Generation, nil
}

func (s *Store) active(ctx context.Context) (*mongo.Collection, error) {
	_, coll, err := s.activeGeneration(ctx)
	return coll, err
}

// classify wraps err for the callers of the store: errors that say the
// server is unreachable or too slow get kind apperr.Unavailable, so that the
// HTTP port answers 503; a cancelled context stays recognisable with
// errors.Is(err, context.Canceled).
func classify(op string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if isTransient(err) {
		return &apperr.Error{Kind: apperr.Unavailable, Code: "view_store_unavailable",
			Message: "view store unavailable", Err: fmt.Errorf("%s: %w", op, err)}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isTransient reports whether err is a connectivity or timeout error
// (mongo.IsTimeout covers a server selection timeout).
func isTransient(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// The driver's pool-cleared error (the server went away while other
	// operations were in flight) carries no label, only Retryable.
	var retryable interface{ Retryable() bool }
	if errors.As(err, &retryable) && retryable.Retryable() {
		return true
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, l := range []string{"RetryableWriteError", "TransientTransactionError"} {
			if se.HasErrorLabel(l) {
				return true
			}
		}
	}
	return false
}

// nextGeneration returns the generation that follows gen: gen+1 when gen is
// a decimal number, otherwise gen+"_2".
func nextGeneration(gen string) string {
	if n, err := strconv.ParseUint(gen, 10, 63); err == nil {
		return strconv.FormatUint(n+1, 10)
	}
	return gen + "_2"
}
