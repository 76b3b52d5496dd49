package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
)

func TestIntegrationOutboxCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	pool, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": dsn}
	cli := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, append([]string{"outbox"}, args...), func(k string) string { return env[k] }, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	insert := func(company string, parked bool) int64 {
		var id int64
		err := pool.QueryRow(ctx, `INSERT INTO outbox (event_id, topic, key, value, parked_at, park_reason)
			VALUES (gen_random_uuid(), 't', $1, 'v', CASE WHEN $2 THEN now() END, CASE WHEN $2 THEN 'too_large' END)
			RETURNING id`, []byte(company), parked).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	state := func(id int64) string {
		var s string
		// A published or discarded row is deleted: "gone".
		if err := pool.QueryRow(ctx, `SELECT coalesce((SELECT CASE WHEN parked_at IS NOT NULL THEN 'parked' ELSE 'unpublished' END
			FROM outbox WHERE id = $1), 'gone')`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	if out, _, err := cli("list"); err != nil || !strings.Contains(out, "no parked outbox rows") {
		t.Errorf("list of none = %q, %v", out, err)
	}
	p1, held, p2, p3 := insert("company-1", true), insert("company-1", false), insert("company-2", true), insert("company-3", true)
	out, _, err := cli("list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID", "EVENT_ID", "COMPANY", "REASON", "PARKED_AT", "SIZE", fmt.Sprint(p1), fmt.Sprint(p2), "company-1", "too_large"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, fmt.Sprintf("\n%d ", held)) {
		t.Errorf("list shows the held (not parked) row %d:\n%s", held, out)
	}

	// Retry notifies the outbox channel.
	listener, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close(ctx) })
	if _, err := listener.Exec(ctx, "LISTEN "+outbox.Channel); err != nil {
		t.Fatal(err)
	}
	if out, _, err := cli("retry", fmt.Sprint(p1)); err != nil || !strings.Contains(out, "retried 1") {
		t.Errorf("retry = %q, %v", out, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := listener.WaitForNotification(wctx); err != nil {
		t.Errorf("no notification after retry: %v", err)
	}
	if s := state(p1); s != "unpublished" {
		t.Errorf("retried row is %s", s)
	}
	if _, _, err := cli("retry", fmt.Sprint(held)); !errors.Is(err, outbox.ErrNotParked) {
		t.Errorf("retry of a row that is not parked = %v, want ErrNotParked", err)
	}

	_, logs, err := cli("discard", "--reason", "poison from the load test", fmt.Sprint(p2))
	if err != nil {
		t.Fatal(err)
	}
	if s := state(p2); s != "gone" {
		t.Errorf("discarded row is %s", s)
	}
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, fmt.Sprintf(`"id":%d`, p2)) || !strings.Contains(logs, "poison from the load test") {
		t.Errorf("discard logs %q, want a Warn with the id and reason", logs)
	}

	if out, _, err := cli("retry", "--all"); err != nil || !strings.Contains(out, fmt.Sprintf("retried 1 parked outbox rows [%d]", p3)) {
		t.Errorf("retry --all = %q, %v", out, err)
	}
	if out, _, _ := cli("list"); !strings.Contains(out, "no parked outbox rows") {
		t.Errorf("list after resolving all = %q", out)
	}
}
