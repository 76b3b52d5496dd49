package mongoview_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/view"
)

// backend selects the FerretDB storage of a test server.
type backend struct {
	handler string
	idIndex bool // apply mongowire's _id index workaround on new collections
}

var postgres = backend{handler: mongowire.HandlerPostgreSQL, idIndex: true}

// startServer starts an embedded FerretDB for t on a fresh PostgreSQL
// database (or a SQLite directory) and returns it with a connected client.
func startServer(t testing.TB, b backend) (*mongowire.Server, *mongo.Client) {
	t.Helper()
	srv, _ := startServerOpts(t, b)
	client := connect(t, srv.URI())
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return srv, client
}

// startServerOpts starts a server and returns the options that restart it
// on the same address and backend.
func startServerOpts(t testing.TB, b backend) (*mongowire.Server, mongowire.Options) {
	t.Helper()
	opts := mongowire.Options{Handler: b.handler}
	switch b.handler {
	case mongowire.HandlerSQLite:
		opts.SQLiteDir = t.TempDir()
	default:
		opts.PostgreSQLURL = pgtest.NewDatabase(t)
	}
	srv := startWith(t, opts)
	u, err := url.Parse(srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	opts.Addr = u.Host
	return srv, opts
}

// startWith starts a server with opts and closes it at cleanup.
func startWith(t testing.TB, opts mongowire.Options) *mongowire.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := mongowire.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start FerretDB: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Logf("close FerretDB: %v", err)
		}
	})
	return srv
}

func connect(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetTimeout(20 * time.Second).
		SetServerSelectionTimeout(3 * time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", uri, err)
	}
	return client
}

// openStore starts a server and opens a store on database "views".
func openStore(t testing.TB, b backend, opts mongoview.Options) (*mongoview.Store, *mongowire.Server, *mongo.Client) {
	t.Helper()
	srv, client := startServer(t, b)
	if opts.Database == "" {
		opts.Database = "views"
	}
	if b.idIndex && opts.OnCollectionCreated == nil {
		opts.OnCollectionCreated = srv.EnsureIDIndex
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongoview.Open(ctx, client, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s, srv, client
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func strp(s string) *string { return &s }

func uuid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// compania returns a view of company n at version v (estado PENDIENTE at 1
// and 2, APROBADA from 3 on) with the historial the projection would build.
func compania(n int, v int64) view.Compania {
	c := view.Compania{
		ID: uuid(n), Nombre: fmt.Sprintf("Empresa %03d", n), Email: fmt.Sprintf("Info%d@Empresa.co", n),
		Identificacion: fmt.Sprintf("NIT-%d", n), Estado: companiaevent.EstadoPendiente,
		FechaCreacion: t0.Add(time.Duration(n) * time.Second), Version: v,
	}
	c.FechaActualizacion = c.FechaCreacion.Add(time.Duration(v-1) * time.Minute)
	c.EventTime = c.FechaActualizacion.Add(time.Millisecond)
	c.Historial = []view.CambioEstado{{Estado: companiaevent.EstadoPendiente, Fecha: c.FechaCreacion, Version: 1}}
	if v >= 2 {
		c.Nombre += fmt.Sprintf(" v%d", v)
	}
	if v >= 3 {
		c.Estado = companiaevent.EstadoAprobada
		c.Historial = append(c.Historial, view.CambioEstado{Estado: companiaevent.EstadoAprobada,
			Fecha: c.FechaCreacion.Add(2 * time.Minute), Version: 3})
	}
	return c
}

// only keeps the historial entries of c that version v itself added, as a
// collapsed batch holding just that event would.
func only(c view.Compania) view.Compania {
	var h []view.CambioEstado
	for _, e := range c.Historial {
		if e.Version == c.Version {
			h = append(h, e)
		}
	}
	c.Historial = h
	return c
}

// ctxT bounds a test's calls to 2 minutes.
func ctxT(t testing.TB) context.Context {
	t.Helper()
	return runtest.Context(t, 2*time.Minute)
}

func lower(s string) string { return strings.ToLower(s) }

func sortBy(s []view.Compania, less func(a, b view.Compania) bool) {
	slices.SortFunc(s, func(a, b view.Compania) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
}
