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

// Apply writes views (at most one per company, as projection.Collapse
// returns) to the active generation, resolved once for the call (from the
// cache if younger than PointerTTL). See ApplyTo.
func (s *Store) Apply(ctx context.Context, views []view.Compania) (WriteStats, error) {
	if len(views) == 0 {
		return WriteStats{}, nil
	}
	gen, err := s.ActiveGeneration(ctx)
	if err != nil {
		return WriteStats{}, err
	}
	return s.ApplyTo(ctx, gen, views)
}

// WriteViews is Apply without the statistics; it lets the projection
// consumer write through the store (consumer.Writer).
func (s *Store) WriteViews(ctx context.Context, views []view.Compania) error {
	_, err := s.Apply(ctx, views)
	return err
}

// ApplyTo merges views (at most one per company) into generation gen with
// the rules of projection.Merge, without reading: each view's snapshot is
// written only if its Version is newer than the stored one, and its historial
// entries are added in any case. It is idempotent, so a failed call can be
// repeated as a whole. On error some views may have been written; the error
// is of kind apperr.Unavailable when the server is unreachable.
//
// The fast path is one version-guarded upsert per view, in ordered chunks.
// An upsert whose filter does not match an existing document (the stored
// version is not lower) collides with its _id, and the server stops the
// chunk there. MongoDB reports the index of that operation; FerretDB v1
// always reports index 0 and no counts, although it applied the operations
// before the failing one. So from the reported index on, the chunk is sent
// again in a form that cannot collide (see safeModels); the operations
// before the index were applied on both servers, and re-sending applied ones
// is harmless.
func (s *Store) ApplyTo(ctx context.Context, gen string, views []view.Compania) (WriteStats, error) {
	st := WriteStats{Views: len(views)}
	coll := s.db.Collection(CollectionName(gen))
	for len(views) > 0 {
		chunk := views[:min(len(views), s.opts.ChunkSize)]
		views = views[len(chunk):]
		models := make([]mongo.WriteModel, len(chunk))
		for i, v := range chunk {
			models[i] = mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: "_id", Value: v.ID}, {Key: "version", Value: bson.D{{Key: "$lt", Value: v.Version}}}}).
				SetUpdate(bson.D{{Key: "$set", Value: append(snapshotFields(v), historialFields(v)...)}}).
				SetUpsert(true)
		}
		err := s.bulk(ctx, coll, models, &st)
		if err == nil {
			continue
		}
		i, ok := duplicateAt(err)
		if !ok {
			return st, classify("write views to "+coll.Name(), err)
		}
		if err := s.writeSafe(ctx, coll, chunk[i:], &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (s *Store) bulk(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel, st *WriteStats) error {
	st.Calls++
	_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
	return err
}

// writeSafe writes views in the collision-safe form, in ordered chunks of
// at most ChunkSize statements (two when ChunkSize is 1: a view's two
// statements stay together).
func (s *Store) writeSafe(ctx context.Context, coll *mongo.Collection, views []view.Compania, st *WriteStats) error {
	st.SafeViews += len(views)
	var models []mongo.WriteModel
	for _, v := range views {
		models = append(models, safeModels(v)...)
	}
	for len(models) > 0 {
		n := min(len(models), max(2, s.opts.ChunkSize&^1)) // keep a view's two statements together
		chunk := models[:n]
		models = models[n:]
		for attempt := 0; ; attempt++ {
			err := s.bulk(ctx, coll, chunk, st)
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
