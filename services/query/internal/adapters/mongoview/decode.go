package mongoview

import (
	"bytes"
	"fmt"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// decodeDocument reads a stored view from its raw BSON in one pass over its
// fields, which costs a fraction of the reflection-driven decoding into
// document (bson.Unmarshal) and gives the same result: missing and null
// fields are zero (a null or missing pointer is nil), fields it does not
// know are ignored, integers may be stored as int32, int64 or an integral
// double, and any other type is an error.
func decodeDocument(raw bson.Raw) (document, error) {
	elems, err := raw.Elements()
	if err != nil {
		return document{}, fmt.Errorf("decode stored view: %w", err)
	}
	var d document
	for _, e := range elems {
		v := e.Value()
		switch key := elementKey(e); string(key) {
		case "_id":
			d.ID, err = rawString(key, v)
		case "nombre":
			d.Nombre, err = rawString(key, v)
		case "email":
			d.Email, err = rawString(key, v)
		case "identificacion":
			d.Identificacion, err = rawString(key, v)
		case "estado":
			d.Estado, err = rawString(key, v)
		case "motivo_rechazo":
			d.MotivoRechazo, err = rawStringPtr(key, v)
		case "fecha_creacion":
			d.FechaCreacion, err = rawString(key, v)
		case "fecha_actualizacion":
			d.FechaActualizacion, err = rawString(key, v)
		case "version":
			d.Version, err = rawInt64(key, v)
		case "event_time":
			d.EventTime, err = rawString(key, v)
		case "historial":
			d.Historial, err = rawHistorial(v)
		}
		if err != nil {
			return document{}, fmt.Errorf("decode stored view: %w", err)
		}
	}
	return d, nil
}

// elementKey returns the key of e (a BSON element: a type byte, then the
// key as a NUL-terminated string, then the value), without copying it: a
// switch on string(elementKey(e)) allocates nothing.
func elementKey(e bson.RawElement) []byte {
	if len(e) < 2 {
		return nil
	}
	if i := bytes.IndexByte(e[1:], 0); i >= 0 {
		return e[1 : 1+i]
	}
	return nil
}

func rawHistorial(v bson.RawValue) (map[string]historialEntry, error) {
	switch v.Type {
	case bson.TypeNull:
		return nil, nil
	case bson.TypeEmbeddedDocument:
	default:
		return nil, fmt.Errorf("historial is a BSON %s, not a document", v.Type)
	}
	elems, err := v.Document().Elements()
	if err != nil {
		return nil, fmt.Errorf("historial: %w", err)
	}
	out := make(map[string]historialEntry, len(elems))
	for _, e := range elems {
		key := e.Key()
		h, err := rawHistorialEntry(e.Value())
		if err != nil {
			return nil, fmt.Errorf("historial.%s: %w", key, err)
		}
		out[key] = h
	}
	return out, nil
}

func rawHistorialEntry(v bson.RawValue) (historialEntry, error) {
	var h historialEntry
	switch v.Type {
	case bson.TypeNull:
		return h, nil
	case bson.TypeEmbeddedDocument:
	default:
		return h, fmt.Errorf("a BSON %s, not a document", v.Type)
	}
	elems, err := v.Document().Elements()
	if err != nil {
		return h, err
	}
	for _, e := range elems {
		v := e.Value()
		switch key := elementKey(e); string(key) {
		case "estado":
			h.Estado, err = rawString(key, v)
		case "fecha":
			h.Fecha, err = rawString(key, v)
		case "version":
			h.Version, err = rawInt64(key, v)
		case "motivo":
			h.Motivo, err = rawStringPtr(key, v)
		}
		if err != nil {
			return h, err
		}
	}
	return h, nil
}

// rawString returns the string v of field key, "" for null.
func rawString(key []byte, v bson.RawValue) (string, error) {
	switch v.Type {
	case bson.TypeNull:
		return "", nil
	case bson.TypeString:
		return v.StringValue(), nil
	}
	return "", fmt.Errorf("%s is a BSON %s, not a string", key, v.Type)
}

// rawStringPtr returns the string v of field key, nil for null.
func rawStringPtr(key []byte, v bson.RawValue) (*string, error) {
	switch v.Type {
	case bson.TypeNull:
		return nil, nil
	case bson.TypeString:
		s := v.StringValue()
		return &s, nil
	}
	return nil, fmt.Errorf("%s is a BSON %s, not a string", key, v.Type)
}

// rawInt64 returns the integer v of field key, 0 for null.
func rawInt64(key []byte, v bson.RawValue) (int64, error) {
	switch v.Type {
	case bson.TypeNull:
		return 0, nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeDouble:
		if f := v.Double(); f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
			return int64(f), nil
		}
	}
	return 0, fmt.Errorf("%s is a BSON %s that is not an integer", key, v.Type)
}
