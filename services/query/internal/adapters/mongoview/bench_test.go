package mongoview_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/view"
)

// benchBackends are the FerretDB setups compared by the benchmarks.
var benchBackends = []struct {
	name string
	b    backend
}{
	{"postgres+idindex", backend{handler: mongowire.HandlerPostgreSQL, idIndex: true}},
	{"postgres", backend{handler: mongowire.HandlerPostgreSQL}},
	{"sqlite", backend{handler: mongowire.HandlerSQLite}},
}

// seeded opens a store holding n companies at version 1.
func seeded(b *testing.B, be backend, n int, opts mongoview.Options) (*mongoview.Store, *mongo.Client) {
	b.Helper()
	s, _, client := openStore(b, be, opts)
	batch := make([]view.Compania, 0, 40)
	for i := range n {
		batch = append(batch, only(compania(i, 1)))
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := s.Apply(context.Background(), view.Runs(batch)); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return s, client
}

const benchDocs = 1000

// BenchmarkApply measures versioned bulk upserts of 40 views per call:
// inserts of new companies, updates of existing ones, and replays (every
// view stale, which takes the collision-safe path).
func BenchmarkApply(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			s, _ := seeded(b, bb.b, benchDocs, mongoview.Options{})
			ctx := context.Background()
			for _, mode := range []string{"insert", "update", "replay"} {
				b.Run(mode, func(b *testing.B) {
					next := 0
					version := int64(1)
					b.ResetTimer()
					for b.Loop() {
						views := make([]view.Compania, 40)
						for i := range views {
							switch mode {
							case "insert":
								views[i] = only(compania(benchDocs+next, 1))
								next++
							case "update":
								views[i] = only(compania(next%benchDocs, version+1))
								next++
								if next%benchDocs == 0 {
									version++
								}
							case "replay":
								views[i] = only(compania(i, 1))
							}
						}
						if _, err := s.Apply(ctx, view.Runs(views)); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N*40)/b.Elapsed().Seconds(), "views/s")
				})
			}
		})
	}
}

// BenchmarkApplyChunkSize measures batches of 200 views that all update
// existing companies (every statement matches, the case that holds FerretDB
// connections) by ChunkSize, each on a store of its own: the cost of the
// default small chunks against the former 40.
func BenchmarkApplyChunkSize(b *testing.B) {
	for _, chunk := range []int{mongoview.DefaultChunkSize, 20, 40} {
		b.Run(fmt.Sprintf("chunk=%d", chunk), func(b *testing.B) {
			s, _ := seeded(b, benchBackends[0].b, benchDocs, mongoview.Options{ChunkSize: chunk})
			ctx := context.Background()
			next, version := 0, int64(1)
			for b.Loop() {
				views := make([]view.Compania, 200)
				for i := range views {
					views[i] = only(compania(next%benchDocs, version+1))
					next++
					if next%benchDocs == 0 {
						version++
					}
				}
				if _, err := s.Apply(ctx, view.Runs(views)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*200)/b.Elapsed().Seconds(), "views/s")
		})
	}
}

// BenchmarkRead measures the queries of the HTTP API on benchDocs views,
// and the cost of reading the generation pointer on every call.
func BenchmarkRead(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			s, client := seeded(b, bb.b, benchDocs, mongoview.Options{PointerTTL: time.Hour})
			uncached, err := mongoview.Open(context.Background(), client, mongoview.Options{Database: "views", PointerTTL: -1})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			cases := []struct {
				name string
				f    func(i int) error
			}{
				{"pointer-read", func(int) error { _, err := uncached.ActiveGeneration(ctx); return err }},
				{"get", func(i int) error { _, err := s.Get(ctx, uuid(i%benchDocs)); return err }},
				{"get-pointer-each-call", func(i int) error { _, err := uncached.Get(ctx, uuid(i%benchDocs)); return err }},
				{"list-first-page-20", func(int) error { _, err := s.List(ctx, view.Filter{}); return err }},
				{"list-nombre-prefix", func(int) error {
					_, err := s.List(ctx, view.Filter{NombrePrefix: "empresa 01", Sort: view.SortNombre})
					return err
				}},
				{"list-email", func(i int) error {
					_, err := s.List(ctx, view.Filter{Email: fmt.Sprintf("info%d@empresa.co", i%benchDocs)})
					return err
				}},
				{"estadisticas", func(int) error { _, err := s.Estadisticas(ctx); return err }},
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) {
					i := 0
					for b.Loop() {
						if err := c.f(i); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		})
	}
}
