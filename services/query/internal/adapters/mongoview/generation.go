package mongoview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// ErrRebuildLocked is returned (wrapped) by AcquireRebuildLock when another
// owner holds an unexpired lock. It has kind apperr.Conflict.
var ErrRebuildLocked = apperr.New(apperr.Conflict, "rebuild_in_progress", "a view rebuild is already running")

// ErrLockLost is returned by RenewRebuildLock when the caller no longer holds the lock.
// It has kind apperr.Conflict and code "rebuild_lock_lost", which package
// rebuild matches (rebuild.ErrLockLost) without depending on this package.
var ErrLockLost = apperr.New(apperr.Conflict, "rebuild_lock_lost", "mongoview: rebuild lock lost")

// ErrActiveGeneration is returned by PrepareGeneration and DropGeneration
// for the active generation.
var ErrActiveGeneration = errors.New("mongoview: generation is active")

// ErrPointerMoved is returned by SwitchGeneration when the active generation
// is no longer the expected one.
var ErrPointerMoved = errors.New("mongoview: generation pointer moved")

// indexes are the secondary indexes of a generation collection, one per
// query of List (plus the _id index MongoDB always has).
func indexes() []mongo.IndexModel {
	idx := func(name string, keys bson.D) mongo.IndexModel {
		return mongo.IndexModel{Keys: keys, Options: options.Index().SetName(name)}
	}
	return []mongo.IndexModel{
		idx("fecha_creacion_desc", bson.D{{Key: "fecha_creacion", Value: -1}, {Key: "_id", Value: -1}}),
		idx("nombre_lower_asc", bson.D{{Key: "nombre_lower", Value: 1}, {Key: "_id", Value: 1}}),
		idx("estado", bson.D{{Key: "estado", Value: 1}, {Key: "fecha_creacion", Value: -1}}),
		idx("identificacion", bson.D{{Key: "identificacion", Value: 1}}),
		idx("email_lower", bson.D{{Key: "email_lower", Value: 1}}),
	}
}

// ensureCollection creates coll if it does not exist and runs the
// OnCollectionCreated hook (which must be idempotent) either way.
func (s *Store) ensureCollection(ctx context.Context, coll string) error {
	err := s.db.CreateCollection(ctx, coll)
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && (ce.Code == 48 || ce.Name == "NamespaceExists")) {
		return fmt.Errorf("mongoview: create collection %s: %w", coll, err)
	}
	if s.opts.OnCollectionCreated != nil {
		if err := s.opts.OnCollectionCreated(ctx, s.opts.Database, coll); err != nil {
			return fmt.Errorf("mongoview: collection %s created hook: %w", coll, err)
		}
	}
	return nil
}

// EnsureGeneration makes sure the collection of generation gen exists with
// its indexes. It is idempotent and leaves existing documents alone.
func (s *Store) EnsureGeneration(ctx context.Context, gen string) error {
	if err := validGeneration(gen); err != nil {
		return err
	}
	coll := CollectionName(gen)
	if err := s.ensureCollection(ctx, coll); err != nil {
		return err
	}
	// One index per call: FerretDB v1.24 panics (and drops the connection)
	// on a createIndexes command listing two or more indexes that all exist
	// already, and skips the wrong ones when only some exist
	// (validateIndexesForCreation deletes by stale slice index).
	for _, m := range indexes() {
		if _, err := s.db.Collection(coll).Indexes().CreateOne(ctx, m); err != nil {
			return fmt.Errorf("mongoview: create index on %s: %w", coll, err)
		}
	}
	return nil
}

// PrepareGeneration makes an empty generation gen, with its indexes, for a
// rebuild: a leftover collection of that generation (from a failed rebuild)
// is dropped first. It refuses the active generation (ErrActiveGeneration).
// Hold the rebuild lock while calling it.
func (s *Store) PrepareGeneration(ctx context.Context, gen string) error {
	if err := validGeneration(gen); err != nil {
		return err
	}
	active, err := s.readPointer(ctx)
	if err != nil {
		return fmt.Errorf("mongoview: read generation pointer: %w", err)
	}
	if active == gen {
		return fmt.Errorf("prepare generation %s: %w", gen, ErrActiveGeneration)
	}
	if err := s.db.Collection(CollectionName(gen)).Drop(ctx); err != nil {
		return fmt.Errorf("mongoview: drop leftover generation %s: %w", gen, err)
	}
	return s.EnsureGeneration(ctx, gen)
}

// NextGeneration returns the name a rebuild should use for its new
// generation: the active generation plus one.
func (s *Store) NextGeneration(ctx context.Context) (string, error) {
	active, err := s.readPointer(ctx)
	if err != nil {
		return "", fmt.Errorf("mongoview: read generation pointer: %w", err)
	}
	return nextGeneration(active), nil
}

// SwitchGeneration makes to the active generation with a single update of
// the pointer document, provided from is still the active one (otherwise
// ErrPointerMoved). This process sees the switch at once; other replicas
// within their PointerTTL.
func (s *Store) SwitchGeneration(ctx context.Context, from, to string) error {
	if err := validGeneration(to); err != nil {
		return err
	}
	res, err := s.db.Collection(PointerCollection).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: pointerID}, {Key: "generation", Value: from}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "generation", Value: to}}}})
	if err != nil {
		return fmt.Errorf("mongoview: switch generation %s → %s: %w", from, to, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("switch generation %s → %s: %w", from, to, ErrPointerMoved)
	}
	s.cache(to)
	return nil
}

// DropGeneration drops the collection of generation gen. It refuses the
// active generation (ErrActiveGeneration).
func (s *Store) DropGeneration(ctx context.Context, gen string) error {
	active, err := s.readPointer(ctx)
	if err != nil {
		return fmt.Errorf("mongoview: read generation pointer: %w", err)
	}
	if active == gen {
		return fmt.Errorf("drop generation %s: %w", gen, ErrActiveGeneration)
	}
	if err := s.db.Collection(CollectionName(gen)).Drop(ctx); err != nil {
		return fmt.Errorf("mongoview: drop generation %s: %w", gen, err)
	}
	return nil
}

// Generations lists the generations that have a collection, sorted by name.
func (s *Store) Generations(ctx context.Context) ([]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("mongoview: list collections: %w", err)
	}
	var gens []string
	for _, n := range names {
		if g, ok := strings.CutPrefix(n, CollectionPrefix); ok {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens, nil
}

func validGeneration(gen string) error {
	if gen == "" || len(gen) > 64 || strings.ContainsAny(gen, "$.\x00/ ") {
		return fmt.Errorf("mongoview: invalid generation name %q", gen)
	}
	return nil
}

// RebuildLock describes the holder of the rebuild lock.
type RebuildLock struct {
	Owner      string
	Generation string
	ExpiresAt  time.Time
}

// AcquireRebuildLock takes the rebuild lock (a document in the pointer
// collection) for owner until ttl from now, recording generation. It takes
// over an expired lock. If another owner holds an unexpired lock, the error
// wraps ErrRebuildLocked (kind apperr.Conflict).
func (s *Store) AcquireRebuildLock(ctx context.Context, owner, generation string, ttl time.Duration) error {
	now := s.opts.Now()
	doc := bson.D{
		{Key: "owner", Value: owner},
		{Key: "generation", Value: generation},
		{Key: "expires_at", Value: now.Add(ttl)},
	}
	coll := s.db.Collection(PointerCollection)
	_, err := coll.InsertOne(ctx, append(bson.D{{Key: "_id", Value: lockID}}, doc...))
	if err == nil {
		return nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("mongoview: acquire rebuild lock: %w", err)
	}
	res, err := coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: lockID}, {Key: "expires_at", Value: bson.D{{Key: "$lt", Value: now}}}},
		bson.D{{Key: "$set", Value: doc}})
	if err != nil {
		return fmt.Errorf("mongoview: take over rebuild lock: %w", err)
	}
	if res.MatchedCount == 0 {
		held, _ := s.RebuildLockHolder(ctx)
		return &apperr.Error{Kind: ErrRebuildLocked.Kind, Code: ErrRebuildLocked.Code, Message: ErrRebuildLocked.Message,
			Err: fmt.Errorf("held by %s for generation %s until %s", held.Owner, held.Generation, held.ExpiresAt.UTC().Format(time.RFC3339))}
	}
	return nil
}

// RenewRebuildLock extends owner's lock until ttl from now; ErrLockLost if
// owner does not hold it any more.
func (s *Store) RenewRebuildLock(ctx context.Context, owner string, ttl time.Duration) error {
	res, err := s.db.Collection(PointerCollection).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: lockID}, {Key: "owner", Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: s.opts.Now().Add(ttl)}}}})
	if err != nil {
		return fmt.Errorf("mongoview: renew rebuild lock: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrLockLost
	}
	return nil
}

// ReleaseRebuildLock deletes owner's lock; releasing a lock one does not hold is a no-op.
func (s *Store) ReleaseRebuildLock(ctx context.Context, owner string) error {
	_, err := s.db.Collection(PointerCollection).DeleteOne(ctx,
		bson.D{{Key: "_id", Value: lockID}, {Key: "owner", Value: owner}})
	if err != nil {
		return fmt.Errorf("mongoview: release rebuild lock: %w", err)
	}
	return nil
}

// RebuildLockHolder returns the current lock document; mongo.ErrNoDocuments
// (wrapped) when nobody holds it.
func (s *Store) RebuildLockHolder(ctx context.Context) (RebuildLock, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var d struct {
		Owner      string    `bson:"owner"`
		Generation string    `bson:"generation"`
		ExpiresAt  time.Time `bson:"expires_at"`
	}
	err := s.db.Collection(PointerCollection).FindOne(ctx, bson.D{{Key: "_id", Value: lockID}}).Decode(&d)
	if err != nil {
		return RebuildLock{}, fmt.Errorf("mongoview: read rebuild lock: %w", err)
	}
	return RebuildLock{Owner: d.Owner, Generation: d.Generation, ExpiresAt: d.ExpiresAt}, nil
}
