package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// activeCollection returns the view collection the reader serves from:
// "companias_<generation>" as the pointer document in "vistas" names it.
func activeCollection(ctx context.Context, db *mongo.Database) (*mongo.Collection, error) {
	var p struct {
		Generation string `bson:"generation"`
	}
	if err := db.Collection("vistas").FindOne(ctx, bson.D{{Key: "_id", Value: "companias"}}).Decode(&p); err != nil {
		return nil, fmt.Errorf("read the active generation of %s: %w", db.Name(), err)
	}
	return db.Collection("companias_" + p.Generation), nil
}

// readFigure is figure 4 at one concurrency.
type readFigure struct {
	conc        int
	reader, raw []run
	floor       []run // GET /healthz on the reader: the HTTP hop alone
}

func benchReads(ctx context.Context, b *bench, readerURL string, readerPid int, coll *mongo.Collection, ids []string) ([]readFigure, error) {
	if len(ids) == 0 {
		return nil, errors.New("no ids to read")
	}
	hc := httpClient()
	var i atomic.Int64
	nextID := func() string { return ids[int(i.Add(1))%len(ids)] }
	get := func(ctx context.Context) error {
		return get200(ctx, hc, readerURL+"/v1/companias/"+nextID(), "GET /v1/companias/{id}")
	}
	find := func(ctx context.Context) error {
		var doc bson.M
		return coll.FindOne(ctx, bson.D{{Key: "_id", Value: nextID()}}).Decode(&doc)
	}
	if _, err := closedLoop(ctx, 4, b.dur/2, get); err != nil {
		return nil, err
	}
	if _, err := closedLoop(ctx, 4, b.dur/2, find); err != nil {
		return nil, err
	}
	var out []readFigure
	for _, c := range b.readConcs {
		f := readFigure{conc: c}
		for n := range b.runs {
			r, m, fl, err := pairedRun(ctx, b, c, readerPid, get, find, hc, readerURL+"/healthz")
			if err != nil {
				return nil, fmt.Errorf("GET by id: %w", err)
			}
			f.reader, f.raw, f.floor = append(f.reader, r), append(f.raw, m), append(f.floor, fl)
			b.logf("read c=%d run %d: reader %.0f/s p99 %.2fms | raw %.0f/s p99 %.2fms",
				c, n+1, r.rate(), ms(r.p99), m.rate(), ms(m.p99))
		}
		out = append(out, f)
	}
	return out, nil
}
