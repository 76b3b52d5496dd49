package mongoview

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/services/query/internal/view"
)

// timeLayout is the stored time format: RFC 3339 in UTC with exactly nine
// fractional digits, so that the strings sort in time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// maxCollisionRetries bounds how often a chunk in the collision-safe form
// is re-sent after a duplicate key: that needs a concurrent insert of the
// same company each time.
const maxCollisionRetries = 5

// Apply writes runs (at most one per company, as projection.CollapseRuns
// returns) to the active generation, resolved once for the call (from the
// cache if younger than PointerTTL). See ApplyTo.
//
// Gaps met in a generation that a rebuild is still filling (the rebuild
// lock names it: the live consumers write there from the switch on, while
// the replay has not yet copied every company's earlier events) are not
// evidence of lost events: they are left out of WriteStats.Gaps and counted
// in WriteStats.GapsWhileRebuilding.
func (s *Store) Apply(ctx context.Context, runs []view.Run) (WriteStats, error) {
	if len(runs) == 0 {
		return WriteStats{}, nil
	}
	gen, err := s.ActiveGeneration(ctx)
	if err != nil {
		return WriteStats{}, err
	}
	st, err := s.ApplyTo(ctx, gen, runs)
	if len(st.Gaps) > 0 && s.filling(ctx, gen) {
		st.GapsWhileRebuilding, st.Gaps = len(st.Gaps), nil
	}
	return st, err
}

// filling reports whether an unexpired rebuild lock names generation gen.
// A failed read says false: the gaps are then reported.
func (s *Store) filling(ctx context.Context, gen string) bool {
	l, err := s.RebuildLockHolder(ctx)
	return err == nil && l.Generation == gen && s.opts.Now().Before(l.ExpiresAt)
}

// WriteViews is Apply returning only the version gaps; it lets the
// projection consumer write through the store (consumer.Writer). The gaps
// found are returned on error too.
func (s *Store) WriteViews(ctx context.Context, runs []view.Run) ([]view.VersionGap, error) {
	st, err := s.Apply(ctx, runs)
	return st.Gaps, err
}

// WriteViewsTo is ApplyTo returning only the version gaps; it lets a view
// rebuild write into the generation it fills (rebuild.Store). The gaps
// found are returned on error too.
func (s *Store) WriteViewsTo(ctx context.Context, gen string, runs []view.Run) ([]view.VersionGap, error) {
	st, err := s.ApplyTo(ctx, gen, runs)
	return st.Gaps, err
}

// ApplyTo merges runs (at most one per company) into generation gen with
// the rules of projection.Merge, and reports in WriteStats.Gaps each run
// whose first version is more than one above the stored view's version (0
// when there is none). Each run's snapshot is written only if its version is
// newer than the stored one, and its historial entries are added in any
// case. It is idempotent, so a failed call can be repeated as a whole. On
// error some views may have been written, and the gaps found so far are in
// the returned WriteStats; the error is of kind apperr.Unavailable when the
// server is unreachable.
//
// The fast path is one version-guarded update per run, in ordered chunks,
// that reads nothing and tells a gap by what it does not match:
//
//   - a run from version 1 upserts {_id, version: {$lt: last}}: it inserts
//     a missing view, replaces an older one, and collides with the existing
//     _id (E11000) when the stored version is not lower (a stale run);
//   - a later run (first > 1) updates, without upsert, {_id, version:
//     {$gte: first-1, $lt: last}}: it matches exactly when the stored view
//     neither misses an event before the run nor is as new as the run.
//
// A chunk whose statements all matched or upserted had no gap and no stale
// run; that is the normal path, one round trip per chunk. Otherwise the
// server stopped at a duplicate key, or a later run matched nothing (stale,
// gap, or no view). MongoDB reports the index of a failed operation;
// FerretDB v1 always reports index 0 and no counts, although it applied the
// operations before the failing one. So the later runs before the reported
// index and every run from it on are sent again in a form that cannot
// collide (see writeSafe), which first reads the stored versions of the
// later runs among them to tell gaps. Re-sending applied runs is harmless,
// and a run the fast path applied never has a gap, so a gap is always found
// before its run is written.
func (s *Store) ApplyTo(ctx context.Context, gen string, runs []view.Run) (WriteStats, error) {
	st := WriteStats{Views: len(runs)}
	coll := s.db.Collection(CollectionName(gen))
	for len(runs) > 0 {
		chunk := runs[:min(len(runs), s.opts.ChunkSize)]
		runs = runs[len(chunk):]
		models := make([]mongo.WriteModel, len(chunk))
		for i, r := range chunk {
			models[i] = fastModel(r)
		}
		res, err := s.bulk(ctx, coll, models, &st)
		stop := len(chunk) // the first run that may not have been applied
		switch {
		case err == nil && res.MatchedCount+res.UpsertedCount == int64(len(chunk)):
			continue
		case err == nil: // a later run matched nothing; runs from version 1 did
		default:
			i, ok := duplicateAt(err)
			if !ok {
				return st, classify("write views to "+coll.Name(), err)
			}
			stop = i
		}
		var again []view.Run
		for _, r := range chunk[:stop] {
			if r.FirstVersion() > 1 {
				again = append(again, r)
			}
		}
		if err := s.writeSafe(ctx, coll, append(again, chunk[stop:]...), &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// fastModel returns the version-guarded statement of r (see ApplyTo).
func fastModel(r view.Run) mongo.WriteModel {
	v := r.View
	update := bson.D{{Key: "$set", Value: append(snapshotFields(v), historialFields(v)...)}}
	first := r.FirstVersion()
	if first <= 1 {
		return mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: v.ID}, {Key: "version", Value: bson.D{{Key: "$lt", Value: v.Version}}}}).
			SetUpdate(update).
			SetUpsert(true)
	}
	return mongo.NewUpdateOneModel().
		SetFilter(bson.D{{Key: "_id", Value: v.ID}, {Key: "version", Value: bson.D{
			{Key: "$gte", Value: first - 1}, {Key: "$lt", Value: v.Version}}}}).
		SetUpdate(update)
}

func (s *Store) bulk(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel, st *WriteStats) (*mongo.BulkWriteResult, error) {
	st.Calls++
	return coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
}

// writeSafe records the gaps of runs, then writes them in the
// collision-safe form, in ordered chunks of at most ChunkSize statements
// (two when ChunkSize is 1: a run's two statements stay together).
func (s *Store) writeSafe(ctx context.Context, coll *mongo.Collection, runs []view.Run, st *WriteStats) error {
	st.SafeViews += len(runs)
	if err := s.findGaps(ctx, coll, runs, st); err != nil {
		return err
	}
	var models []mongo.WriteModel
	for _, r := range runs {
		models = append(models, safeModels(r.View)...)
	}
	for len(models) > 0 {
		n := min(len(models), max(2, s.opts.ChunkSize&^1)) // keep a view's two statements together
		chunk := models[:n]
		models = models[n:]
		for attempt := 0; ; attempt++ {
			_, err := s.bulk(ctx, coll, chunk, st)
			if err == nil {
				break
			}
			if _, dup := duplicateAt(err); !dup || attempt >= maxCollisionRetries {
				return classify("write views to "+coll.Name(), err)
			}
			// A concurrent writer inserted one of these companies between
			// our filter and our insert; now the document exists, and the
			// statements are idempotent: send the chunk again.
		}
	}
	return nil
}

// findGaps reads, with one query, the stored versions of the runs that
// start above version 1 (a run from version 1 cannot have a gap) and adds
// to st.Gaps each run whose first version is more than one above its stored
// version (0 when there is no view). Stored versions only grow, so a
// concurrent writer can at worst make a gap reported here be filled by the
// time the run is written.
func (s *Store) findGaps(ctx context.Context, coll *mongo.Collection, runs []view.Run, st *WriteStats) error {
	var ids []string
	for _, r := range runs {
		if r.FirstVersion() > 1 {
			ids = append(ids, r.View.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	st.Reads++
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "version", Value: 1}}))
	if err != nil {
		return classify("read versions from "+coll.Name(), err)
	}
	var docs []struct {
		ID      string `bson:"_id"`
		Version int64  `bson:"version"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return classify("read versions from "+coll.Name(), err)
	}
	stored := make(map[string]int64, len(docs))
	for _, d := range docs {
		stored[d.ID] = d.Version
	}
	for _, r := range runs {
		first := r.FirstVersion()
		if prev := stored[r.View.ID]; first > 1 && first > prev+1 {
			st.Gaps = append(st.Gaps, view.VersionGap{CompaniaID: r.View.ID, Previous: prev, Version: first})
		}
	}
	return nil
}

// safeModels returns the two statements that merge v without ever hitting
// a duplicate key (except when racing a concurrent insert of the same _id):
//
//  1. UpdateOne({_id}, {$setOnInsert: snapshot, $set: historial…}, upsert):
//     creates the document with v's snapshot if it is missing, and adds v's
//     historial entries in any case;
//  2. UpdateOne({_id, version: {$lt: v}}, {$set: snapshot}): replaces an
//     older snapshot, and matches nothing otherwise.
func safeModels(v view.Compania) []mongo.WriteModel {
	insert := bson.D{{Key: "$setOnInsert", Value: snapshotFields(v)}}
	if h := historialFields(v); len(h) > 0 {
		insert = append(insert, bson.E{Key: "$set", Value: h})
	}
	return []mongo.WriteModel{
		mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: v.ID}}).
			SetUpdate(insert).
			SetUpsert(true),
		mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: v.ID}, {Key: "version", Value: bson.D{{Key: "$lt", Value: v.Version}}}}).
			SetUpdate(bson.D{{Key: "$set", Value: snapshotFields(v)}}),
	}
}

// duplicateAt returns the reported index of the first failed operation of
// a bulk write if that failure is a duplicate key error.
func duplicateAt(err error) (int, bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 || bwe.WriteConcernError != nil {
		return 0, false
	}
	first := bwe.WriteErrors[0]
	for _, we := range bwe.WriteErrors[1:] {
		if we.Index < first.Index {
			first = we
		}
	}
	switch first.Code {
	case 11000, 11001, 12582:
		return max(first.Index, 0), true
	}
	return 0, false
}

// snapshotFields returns every snapshot field of v as a $set document.
func snapshotFields(v view.Compania) bson.D {
	var motivo any // BSON null when nil
	if v.MotivoRechazo != nil {
		motivo = *v.MotivoRechazo
	}
	d := bson.D{
		{Key: "nombre", Value: v.Nombre},
		{Key: "nombre_lower", Value: strings.ToLower(v.Nombre)},
		{Key: "email", Value: v.Email},
		{Key: "email_lower", Value: strings.ToLower(v.Email)},
		{Key: "identificacion", Value: v.Identificacion},
		{Key: "estado", Value: v.Estado},
		{Key: "motivo_rechazo", Value: motivo},
		{Key: "fecha_creacion", Value: formatTime(v.FechaCreacion)},
		{Key: "fecha_actualizacion", Value: formatTime(v.FechaActualizacion)},
		{Key: "version", Value: v.Version},
		{Key: "event_time", Value: formatTime(v.EventTime)},
	}
	return d
}

// historialFields returns "historial.v<version>" → entry for each entry of v.
func historialFields(v view.Compania) bson.D {
	var d bson.D
	for _, h := range v.Historial {
		var motivo any
		if h.Motivo != nil {
			motivo = *h.Motivo
		}
		d = append(d, bson.E{Key: "historial." + historialKey(h.Version), Value: bson.D{
			{Key: "estado", Value: h.Estado},
			{Key: "fecha", Value: formatTime(h.Fecha)},
			{Key: "version", Value: h.Version},
			{Key: "motivo", Value: motivo},
		}})
	}
	return d
}

func historialKey(version int64) string { return "v" + strconv.FormatInt(version, 10) }
