package mongoview

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/query/internal/projection"
	"github.com/propalpes/companias/services/query/internal/view"
)

// List page sizes.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// document is the stored shape of a view.
type document struct {
	ID                 string                    `bson:"_id"`
	Nombre             string                    `bson:"nombre"`
	Email              string                    `bson:"email"`
	Identificacion     string                    `bson:"identificacion"`
	Estado             string                    `bson:"estado"`
	MotivoRechazo      *string                   `bson:"motivo_rechazo"`
	FechaCreacion      string                    `bson:"fecha_creacion"`
	FechaActualizacion string                    `bson:"fecha_actualizacion"`
	Version            int64                     `bson:"version"`
	EventTime          string                    `bson:"event_time"`
	Historial          map[string]historialEntry `bson:"historial"`
}

type historialEntry struct {
	Estado  string  `bson:"estado"`
	Fecha   string  `bson:"fecha"`
	Version int64   `bson:"version"`
	Motivo  *string `bson:"motivo"`
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored %s %q: %w", field, s, err)
	}
	return t.UTC(), nil
}

func (d document) view() (view.Compania, error) {
	v := view.Compania{
		ID: d.ID, Nombre: d.Nombre, Email: d.Email, Identificacion: d.Identificacion,
		Estado: d.Estado, MotivoRechazo: d.MotivoRechazo, Version: d.Version,
	}
	var err error
	if v.FechaCreacion, err = parseTime("fecha_creacion", d.FechaCreacion); err != nil {
		return view.Compania{}, err
	}
	if v.FechaActualizacion, err = parseTime("fecha_actualizacion", d.FechaActualizacion); err != nil {
		return view.Compania{}, err
	}
	if v.EventTime, err = parseTime("event_time", d.EventTime); err != nil {
		return view.Compania{}, err
	}
	for _, h := range d.Historial {
		f, err := parseTime("historial fecha", h.Fecha)
		if err != nil {
			return view.Compania{}, err
		}
		v.Historial = append(v.Historial, view.CambioEstado{Estado: h.Estado, Fecha: f, Version: h.Version, Motivo: h.Motivo})
	}
	projection.SortHistorial(v.Historial)
	return v, nil
}

// Get returns the view of company id from the active generation, or an
// error matching view.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (view.Compania, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	coll, err := s.active(ctx)
	if err != nil {
		return view.Compania{}, err
	}
	return getFrom(ctx, coll, id)
}

// GetIn returns the view of company id from generation gen, or an error
// matching view.ErrNotFound.
func (s *Store) GetIn(ctx context.Context, gen, id string) (view.Compania, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return getFrom(ctx, s.db.Collection(CollectionName(gen)), id)
}

func getFrom(ctx context.Context, coll *mongo.Collection, id string) (view.Compania, error) {
	raw, err := coll.FindOne(ctx, idFilter(id)).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return view.Compania{}, view.ErrNotFound
	}
	if err != nil {
		return view.Compania{}, classify("get compania "+id, err)
	}
	d, err := decodeDocument(raw)
	if err != nil {
		return view.Compania{}, fmt.Errorf("get compania %s: %w", id, err)
	}
	v, err := d.view()
	if err != nil {
		return view.Compania{}, fmt.Errorf("get compania %s: %w", id, err)
	}
	return v, nil
}

// idFilter is the filter {_id: id}, built as raw BSON: the driver copies
// it as it is instead of encoding a bson.D by reflection.
func idFilter(id string) bson.Raw {
	idx, doc := bsoncore.ReserveLength(make([]byte, 0, 4+5+4+len(id)+1+1))
	doc = bsoncore.AppendStringElement(doc, "_id", id)
	doc = append(doc, 0)
	return bson.Raw(bsoncore.UpdateLength(doc, idx, int32(len(doc)-int(idx))))
}

func invalid(code, msg string) error {
	return apperr.New(apperr.Invalid, code, msg)
}

// List returns one page of the views in the active generation that match f,
// in f.Sort order (view.SortFechaCreacion, the default when empty: newest
// first; view.SortNombre: A→Z by lower-cased nombre), ties broken by id. It
// uses keyset pagination: f.After, from the previous page's Next, must
// belong to the same Sort. Limit ≤ 0 means DefaultLimit; above MaxLimit it
// is MaxLimit. A bad Sort or cursor gives an apperr.Invalid error. Filter
// strings are compared literally (Email and NombrePrefix case-insensitively).
func (s *Store) List(ctx context.Context, f view.Filter) (view.Page, error) {
	filter, sort, err := listQuery(f)
	if err != nil {
		return view.Page{}, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)

	ctx, cancel := s.bound(ctx)
	defer cancel()
	coll, err := s.active(ctx)
	if err != nil {
		return view.Page{}, err
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(sort).SetLimit(int64(limit+1)))
	if err != nil {
		return view.Page{}, classify("list companias", err)
	}
	var docs []document
	if err := cur.All(ctx, &docs); err != nil {
		return view.Page{}, classify("list companias", err)
	}
	page := view.Page{Items: make([]view.Compania, 0, min(len(docs), limit))}
	for i, d := range docs {
		if i == limit {
			last := page.Items[limit-1]
			page.Next = cursorAfter(f.Sort, last)
			break
		}
		v, err := d.view()
		if err != nil {
			return view.Page{}, fmt.Errorf("list companias: %w", err)
		}
		page.Items = append(page.Items, v)
	}
	return page, nil
}

func cursorAfter(sort string, v view.Compania) *view.Cursor {
	if sort == view.SortNombre {
		return &view.Cursor{Sort: view.SortNombre, Key: strings.ToLower(v.Nombre), ID: v.ID}
	}
	return &view.Cursor{Sort: view.SortFechaCreacion, Key: formatTime(v.FechaCreacion), ID: v.ID}
}

// listQuery builds the filter and sort of List.
func listQuery(f view.Filter) (bson.D, bson.D, error) {
	var and bson.D
	if f.Estado != "" {
		and = append(and, bson.E{Key: "estado", Value: f.Estado})
	}
	if f.NombrePrefix != "" {
		and = append(and, bson.E{Key: "nombre_lower", Value: bson.D{
			{Key: "$regex", Value: "^" + regexp.QuoteMeta(strings.ToLower(f.NombrePrefix))},
		}})
	}
	if f.Identificacion != "" {
		and = append(and, bson.E{Key: "identificacion", Value: f.Identificacion})
	}
	if f.Email != "" {
		and = append(and, bson.E{Key: "email_lower", Value: strings.ToLower(f.Email)})
	}

	sortBy := f.Sort
	if sortBy == "" {
		sortBy = view.SortFechaCreacion
	}
	var key, op string
	var sort bson.D
	switch sortBy {
	case view.SortFechaCreacion:
		key, op = "fecha_creacion", "$lt"
		sort = bson.D{{Key: key, Value: -1}, {Key: "_id", Value: -1}}
	case view.SortNombre:
		key, op = "nombre_lower", "$gt"
		sort = bson.D{{Key: key, Value: 1}, {Key: "_id", Value: 1}}
	default:
		return nil, nil, invalid("invalid_sort", fmt.Sprintf("sort must be %q or %q", view.SortFechaCreacion, view.SortNombre))
	}

	if c := f.After; c != nil {
		cs := c.Sort
		if cs == "" {
			cs = view.SortFechaCreacion
		}
		if cs != sortBy || c.ID == "" {
			return nil, nil, invalid("invalid_cursor", "the cursor does not belong to this sort order")
		}
		k := c.Key
		if sortBy == view.SortFechaCreacion {
			t, err := time.Parse(time.RFC3339Nano, c.Key)
			if err != nil {
				return nil, nil, invalid("invalid_cursor", "the cursor has a bad position")
			}
			k = formatTime(t)
		}
		and = append(and, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: key, Value: bson.D{{Key: op, Value: k}}}},
			bson.D{{Key: key, Value: k}, {Key: "_id", Value: bson.D{{Key: op, Value: c.ID}}}},
		}})
	}
	if and == nil {
		and = bson.D{}
	}
	return and, sort, nil
}

// Estadisticas counts the views of the active generation per estado, at
// query time ($group with $sum), so the numbers cannot drift from the
// views. PorEstado always has the three estados of the contract; Total
// counts every view.
func (s *Store) Estadisticas(ctx context.Context) (view.Estadisticas, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	coll, err := s.active(ctx)
	if err != nil {
		return view.Estadisticas{}, err
	}
	cur, err := coll.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$estado"}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
	})
	if err != nil {
		return view.Estadisticas{}, classify("count companias", err)
	}
	var rows []struct {
		Estado *string `bson:"_id"`
		N      int64   `bson:"n"`
	}
	if err := cur.All(ctx, &rows); err != nil {
		return view.Estadisticas{}, classify("count companias", err)
	}
	out := view.Estadisticas{PorEstado: map[string]int64{}}
	for _, e := range companiaevent.Estados() {
		out.PorEstado[e] = 0
	}
	for _, r := range rows {
		out.Total += r.N
		if r.Estado != nil {
			if _, ok := out.PorEstado[*r.Estado]; ok {
				out.PorEstado[*r.Estado] += r.N
			}
		}
	}
	return out, nil
}
