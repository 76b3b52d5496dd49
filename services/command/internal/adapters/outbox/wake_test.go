package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// batchRecorder is a Publisher that records the size of each batch a real
// Publisher acknowledged.
type batchRecorder struct {
	outbox.Publisher
	mu      sync.Mutex
	batches []int
}

func (b *batchRecorder) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	err := b.Publisher.WriteMessages(ctx, msgs...)
	if err == nil {
		b.mu.Lock()
		b.batches = append(b.batches, len(msgs))
		b.mu.Unlock()
	}
	return err
}

func (b *batchRecorder) Batches() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.batches...)
}

// addCompanies creates n companies through repo, from workers goroutines.
func addCompanies(t *testing.T, repo *postgres.Repository, prefix string, n, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := compania.New(uuid.NewString(), compania.Datos{
					Nombre: fmt.Sprintf("%s %d", prefix, i), Email: "info@empresa.co", Identificacion: fmt.Sprintf("W-%d", i),
				}, time.Now().UTC().Truncate(time.Microsecond))
				if err == nil {
					err = repo.Add(context.Background(), c, command.Meta{})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("add: %v", err)
	}
}

// listen returns a connection listening on the outbox channel.
func listen(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), "LISTEN "+outbox.Channel); err != nil {
		t.Fatal(err)
	}
	return conn
}

// Commits of the relay's own process wake it through Wake, with no
// notification and no poll (PollInterval is an hour): every row of many
// concurrent commits is published, none waits for a poll, and no
// pg_notify is sent.
func TestIntegrationRelayWokenByOwnProcessCommits(t *testing.T) {
	t.Parallel()
	pool, dsn := newPool(t)
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	listener := listen(t, dsn)
	r, err := outbox.New(pool, newWriter(t, b.Addr()), outbox.Options{PollInterval: time.Hour, Linger: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Wake() {
		t.Fatal("Wake before Run = true, want false (not leading)")
	}
	stop := runRelay(t, r)
	waitFor(t, 10*time.Second, "the relay to lead", r.Leading)
	c := consume(t, b.Addr(), topic)
	repo := postgres.NewRepository(pool, postgres.WithTopic(topic), postgres.WithWaker(r))

	const n = 200
	addCompanies(t, repo, "Propia", n, 8)
	waitFor(t, 30*time.Second, "every event on the topic", func() bool { return len(c.ids()) == n })
	waitFor(t, 10*time.Second, "every row deleted", func() bool { return unpublished(t, pool) == 0 })
	checkCompanyOrder(t, c.all(), false)

	// Close sends any notification still owed; the marker, sent after it,
	// must be the first notification the listener receives.
	repo.Close()
	if _, err := pool.Exec(context.Background(), "SELECT pg_notify($1, 'marker')", outbox.Channel); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := listener.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("WaitForNotification: %v", err)
	}
	if got.Payload != "marker" {
		t.Fatalf("first notification %q, want the marker: the repository notified although its relay led", got.Payload)
	}

	stop()
	if r.Wake() {
		t.Error("Wake after Run returned = true, want false")
	}
}

// A Repository whose own relay stands by notifies the channel, and the
// leader in another process (here another Relay) publishes its rows
// without waiting for a poll.
func TestIntegrationRelayStandbyLetsRepositoryNotify(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	opts := outbox.Options{PollInterval: time.Hour, LockRetry: 50 * time.Millisecond}
	leader, err := outbox.New(pool, newWriter(t, b.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, leader)
	waitFor(t, 10*time.Second, "the first relay to lead", leader.Leading)
	standby, err := outbox.New(pool, newWriter(t, b.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, standby)
	if standby.Wake() {
		t.Fatal("standby Wake = true, want false")
	}
	c := consume(t, b.Addr(), topic)
	repo := postgres.NewRepository(pool, postgres.WithTopic(topic), postgres.WithWaker(standby))
	t.Cleanup(repo.Close)

	const n = 20
	addCompanies(t, repo, "Ajena", n, 4)
	waitFor(t, 30*time.Second, "every event on the topic", func() bool { return len(c.ids()) == n })
	if standby.Leading() {
		t.Error("the standby relay leads")
	}
}

// After a wake-up the relay lingers: commits made meanwhile are published
// in one batch with the first.
func TestIntegrationRelayLingerBatchesCommits(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	b := startBroker(t, "", "")
	topic := newTopic(t, b.Addr())
	w := newWriter(t, b.Addr())
	pub := &batchRecorder{Publisher: w}
	const linger = time.Second
	r, err := outbox.New(pool, pub, outbox.Options{PollInterval: time.Hour, Linger: linger, Fence: w.Fence()})
	if err != nil {
		t.Fatal(err)
	}
	repo := postgres.NewRepository(pool, postgres.WithTopic(topic), postgres.WithWaker(r))
	t.Cleanup(repo.Close)
	// A row committed before the relay starts is claimed at once, with no
	// linger: the relay's first claim does not wait for a wake-up.
	addCompanies(t, repo, "Previa", 1, 1)
	runRelay(t, r)
	waitFor(t, 10*time.Second, "the first row published", func() bool { return len(pub.Batches()) == 1 })

	start := time.Now()
	addCompanies(t, repo, "Junta", 3, 1) // three commits, one after the other
	added := time.Since(start)
	waitFor(t, 10*time.Second, "the three rows published", func() bool { return unpublished(t, pool) == 0 })
	if added >= linger {
		t.Skipf("the three commits took %v, longer than the linger: the machine is too slow for this check", added)
	}
	if got := pub.Batches(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("batches %v, want [1 3]: the commits during the linger join one batch", got)
	}
}
