package mongoview

import (
	"bytes"
	"fmt"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// decodeDocument reads a stored view from its raw BSON in one pass over its
// fields, which costs a fraction of the reflection-driven decoding into
// document (bson.Unmarshal) and gives the same result: missing and null
// fields are zero (a null or missing pointer is nil), fields it does not
// know are ignored, integers may be stored as int32, int64 or an integral
// double, and any other type is an error.
func decodeDocument(raw bson.Raw) (document, error) {
	var d document
	err := eachElement(raw, func(e bson.RawElement) (err error) {
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
		return err
	})
	if err != nil {
		return document{}, fmt.Errorf("decode stored view: %w", err)
	}
	return d, nil
}

// eachElement calls fn with each element of the BSON document doc, in
// order, until fn returns an error, checking each element as
// bson.Raw.Elements does but without building a slice of them. An empty
// doc has no elements.
func eachElement(doc []byte, fn func(bson.RawElement) error) error {
	if len(doc) == 0 {
		return nil
	}
	length, rem, ok := bsoncore.ReadLength(doc)
	if !ok {
		return bsoncore.NewInsufficientBytesError(doc, rem)
	}
	for length -= 4; length > 1; {
		var elem bsoncore.Element
		elem, rem, ok = bsoncore.ReadElement(rem)
		length -= int32(len(elem))
		if !ok {
			return bsoncore.NewInsufficientBytesError(doc, rem)
		}
		if err := elem.Validate(); err != nil {
			return err
		}
		if err := fn(bson.RawElement(elem)); err != nil {
			return err
		}
	}
	return nil
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
	out := make(map[string]historialEntry, 1)
	var entryErr error
	err := eachElement(v.Document(), func(e bson.RawElement) error {
		key := e.Key()
		h, err := rawHistorialEntry(e.Value())
		if err != nil {
			entryErr = fmt.Errorf("historial.%s: %w", key, err)
			return entryErr
		}
		out[key] = h
		return nil
	})
	switch {
	case entryErr != nil:
		return nil, entryErr
	case err != nil:
		return nil, fmt.Errorf("historial: %w", err)
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
	err := eachElement(v.Document(), func(e bson.RawElement) (err error) {
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
		return err
	})
	return h, err
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
