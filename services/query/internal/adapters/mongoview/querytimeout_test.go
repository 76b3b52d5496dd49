package mongoview_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/view"
)

// A view lookup (and the generation pointer read) carries a server-side
// time limit (maxTimeMS) of at most QueryTimeout, even when the caller's
// context has no deadline and the client no timeout of its own. (List and
// Estadisticas are bounded by the same deadline, client side: the driver
// never sends maxTimeMS with a command that opens a cursor, DRIVERS-2722.)
func TestIntegrationReadsSendMaxTimeMS(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, postgres)
	var (
		mu      sync.Mutex
		limits  = map[string][]int64{} // command name → maxTimeMS sent (0: none)
		started = func(_ context.Context, e *event.CommandStartedEvent) {
			mu.Lock()
			defer mu.Unlock()
			v, err := e.Command.LookupErr("maxTimeMS")
			ms := int64(0)
			if err == nil {
				ms, _ = v.AsInt64OK()
			}
			limits[e.CommandName] = append(limits[e.CommandName], ms)
		}
	)
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetServerSelectionTimeout(3 * time.Second).
		SetMonitor(&event.CommandMonitor{Started: started}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	s, err := mongoview.Open(ctxT(t), client, mongoview.Options{
		Database: "views", PointerTTL: -1, QueryTimeout: 3 * time.Second, OnCollectionCreated: srv.EnsureIDIndex,
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clear(limits) // Open's own commands (creating collections and indexes) are not reads
	mu.Unlock()

	ctx := context.Background() // no deadline: the store must add one
	if _, err := s.Get(ctx, "ghost"); !errors.Is(err, view.ErrNotFound) {
		t.Fatalf("Get = %v, want not found", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, cmd := range []string{"find"} {
		if len(limits[cmd]) == 0 {
			t.Errorf("no %s command seen", cmd)
		}
		for _, ms := range limits[cmd] {
			if ms <= 0 || ms > 3000 {
				t.Errorf("%s sent maxTimeMS %d, want 1..3000", cmd, ms)
			}
		}
	}
}
