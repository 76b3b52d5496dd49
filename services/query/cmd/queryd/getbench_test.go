package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/metrics"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
	"github.com/propalpes/companias/services/query/internal/view"
)

// getBenchDocs is the number of views BenchmarkGetByID reads in turn.
const getBenchDocs = 500

type idleProjection struct{}

func (idleProjection) Status() []view.PartitionStatus { return nil }
func (idleProjection) Joined() bool                   { return true }

type idleRebuild struct{}

func (idleRebuild) Start(context.Context) (view.RebuildProgress, error) {
	return view.RebuildProgress{}, nil
}
func (idleRebuild) Progress() view.RebuildProgress { return view.RebuildProgress{} }

// BenchmarkGetByID is figure 4 of bench/cmd/benchrun in one process: GET
// /v1/companias/{id} through the service's router (with its metrics and a
// warn-level logger, as `serve` wires them) over loopback HTTP, against a
// raw mongo-driver FindOne decoded into a bson.M, both on the same embedded
// FerretDB (PostgreSQL backend, _id index). Sub-benchmarks run at
// concurrency 1 and 8 (c=8: RunParallel with 8 goroutines in all). Compare
// "get" with "findone" of the same run: the reader's share of the raw
// ceiling is their ratio.
func BenchmarkGetByID(b *testing.B) {
	ctx := context.Background()
	srv, err := mongowire.Start(ctx, mongowire.Options{PostgreSQLURL: pgtest.NewDatabase(b),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	store, err := mongoview.Open(ctx, client, mongoview.Options{Database: "views", OnCollectionCreated: srv.EnsureIDIndex})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, getBenchDocs)
	now := time.Now().UTC()
	var batch []view.Compania
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		batch = append(batch, view.Compania{ID: ids[i], Nombre: fmt.Sprintf("Empresa %d", i),
			Email: fmt.Sprintf("info%d@empresa.co", i), Identificacion: fmt.Sprintf("900%06d", i),
			Estado: "pendiente", FechaCreacion: now, FechaActualizacion: now, Version: 1, EventTime: now,
			Historial: []view.CambioEstado{{Estado: "pendiente", Fecha: now, Version: 1}}})
		if len(batch) == 40 || i == len(ids)-1 {
			if _, err := store.Apply(ctx, view.Runs(batch)); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	gen, err := store.ActiveGeneration(ctx)
	if err != nil {
		b.Fatal(err)
	}
	coll := client.Database("views").Collection(mongoview.CollectionName(gen))

	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Deps{Views: store, Store: store, Projection: idleProjection{}, Rebuild: idleRebuild{},
		Logger: slog.New(slog.DiscardHandler), ObserveRequest: m.ObserveRequest}, httpapi.Options{})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(api)
	b.Cleanup(hs.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var next atomic.Int64
	nextID := func() string { return ids[int(next.Add(1))%len(ids)] }
	get := func() error {
		res, err := hc.Get(hs.URL + "/v1/companias/" + nextID())
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	findOne := func() error {
		var doc bson.M
		return coll.FindOne(ctx, bson.D{{Key: "_id", Value: nextID()}}).Decode(&doc)
	}
	for _, conc := range []int{1, 8} {
		for _, c := range []struct {
			name string
			f    func() error
		}{{"get", get}, {"findone", findOne}} {
			b.Run(fmt.Sprintf("%s/c=%d", c.name, conc), func(b *testing.B) {
				// RunParallel starts parallelism × GOMAXPROCS goroutines.
				b.SetParallelism(max(conc/runtime.GOMAXPROCS(0), 1))
				if conc == 1 {
					for b.Loop() {
						if err := c.f(); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := c.f(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
