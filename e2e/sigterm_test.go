package e2e_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEndToEndSIGTERMUnderLoad sends SIGTERM to the writer while clients
// create companies: the writer must exit 0 within its SHUTDOWN_TIMEOUT,
// every creation it answered 201 must be in PostgreSQL, and after a restart
// of the writer every one of them must reach the reader (nothing committed
// is lost from the outbox).
func TestEndToEndSIGTERMUnderLoad(t *testing.T) {
	in := startInfra(t)
	writer := in.startWriter(t)
	reader := in.startReader(t)
	ctx := t.Context()

	const clients = 8
	var (
		next     atomic.Int64
		answered atomic.Int64
		sigAt    atomic.Int64 // UnixNano of the SIGTERM, 0 before
		drained  atomic.Int64 // creations answered 201 after the SIGTERM
		mu       sync.Mutex
		created  []string // ids answered 201
		wg       sync.WaitGroup
		stop     = make(chan struct{}) // closed when the test returns
	)
	defer func() { close(stop); wg.Wait() }() // no client outlives the test
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-writer.done:
					return
				case <-stop:
					return
				default:
				}
				n := next.Add(1)
				body := map[string]string{
					"nombre":         fmt.Sprintf("Apagado %d", n),
					"email":          fmt.Sprintf("apagado%d@e2e.example.com", n),
					"identificacion": fmt.Sprintf("SIG-%d", n),
				}
				var c compania
				status, _, err := doInto(ctx, http.MethodPost, writer.base+"/v1/companias", body, nil, &c)
				switch {
				case err == nil && status == http.StatusCreated:
					mu.Lock()
					created = append(created, c.ID)
					mu.Unlock()
					answered.Add(1)
					if at := sigAt.Load(); at != 0 && time.Now().UnixNano() > at {
						drained.Add(1)
					}
				case err != nil:
					// Refused or cut while the writer stops: not answered, so
					// no promise to check. Back off a little.
					select {
					case <-writer.done:
						return
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
				default:
					// The writer may answer 503 while it stops; anything
					// else is a failure.
					if status != http.StatusServiceUnavailable {
						t.Errorf("POST during shutdown: status %d", status)
					}
				}
			}
		})
	}

	pollUntil(t, 60*time.Second, func() (bool, string) {
		return answered.Load() >= 200, fmt.Sprintf("%d creations answered 201", answered.Load())
	})
	signalled := time.Now()
	sigAt.Store(signalled.UnixNano())
	writer.terminate()
	err := writer.wait(shutdownTimeout + 5*time.Second)
	took := time.Since(signalled)
	wg.Wait()
	if err != nil {
		t.Fatalf("writer after SIGTERM under load: %v\n%s", err, writer.logs.tail(60))
	}
	if took > shutdownTimeout {
		t.Errorf("writer took %s to exit after SIGTERM, more than SHUTDOWN_TIMEOUT %s", took, shutdownTimeout)
	}
	t.Logf("writer exited 0 %s after SIGTERM; %d creations answered 201, %d of them after the SIGTERM (%d attempts)",
		took.Round(time.Millisecond), len(created), drained.Load(), next.Load())

	// Every 201 is committed.
	var found int
	if err := in.db.QueryRow(ctx, `SELECT count(*) FROM companias WHERE id = ANY($1::uuid[])`, created).Scan(&found); err != nil {
		t.Fatalf("count answered companies: %v", err)
	}
	if found != len(created) {
		t.Fatalf("%d of the %d companies answered 201 are in PostgreSQL", found, len(created))
	}

	// A restarted writer publishes whatever the outbox still holds, and
	// every answered creation reaches the reader.
	in.startWriter(t)
	deadline := time.Now().Add(90 * time.Second)
	ids := make(chan string)
	var missing atomic.Int64
	for range clients {
		wg.Go(func() {
			for id := range ids {
				if _, err := readView(ctx, reader, id, 1, deadline); err != nil {
					if missing.Add(1) <= 10 {
						t.Errorf("company answered 201 before SIGTERM never reached the reader: %v", err)
					}
				}
			}
		})
	}
	for _, id := range created {
		ids <- id
	}
	close(ids)
	wg.Wait()
	pollUntil(t, 30*time.Second, func() (bool, string) {
		var n int
		err := in.db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
		return err == nil && n == 0, fmt.Sprintf("%d unpublished outbox rows, error %v", n, err)
	})
}
