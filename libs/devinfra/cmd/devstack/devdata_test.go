package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
)

func TestCheckStackIdentity(t *testing.T) {
	t.Parallel()
	kafka := func(present bool, id string) placeState {
		return placeState{present: present, id: id, what: ".data/kafka"}
	}
	db := func(name string, present bool, id string) placeState {
		return placeState{present: present, id: id, what: "database " + name}
	}
	tests := []struct {
		name      string
		kafka     placeState
		dbs       []placeState
		wantFresh bool
		wantErr   []string // substrings of the error; nil: no error
	}{
		{name: "first start", kafka: kafka(false, ""), dbs: []placeState{db("a", false, ""), db("a_views", false, "")}, wantFresh: true},
		{name: "stale id without data", kafka: kafka(false, "x1"), dbs: []placeState{db("a", false, ""), db("a_views", false, "")}, wantFresh: true},
		{name: "same stack", kafka: kafka(true, "x1"), dbs: []placeState{db("a", true, "x1"), db("a_views", true, "x1")}},
		{name: "data from before stack ids is adopted", kafka: kafka(true, ""), dbs: []placeState{db("a", true, ""), db("a_views", true, "")}, wantFresh: true},
		{name: "Kafka log deleted (make clean)", kafka: kafka(false, ""), dbs: []placeState{db("a", true, "x1"), db("a_views", true, "x1")},
			wantErr: []string{"in database a, database a_views but none in .data/kafka", "make reset"}},
		{name: "Kafka log deleted, databases from before stack ids", kafka: kafka(false, ""), dbs: []placeState{db("a", true, ""), db("a_views", true, "")},
			wantErr: []string{"none in .data/kafka", "make reset"}},
		{name: "databases dropped", kafka: kafka(true, "x1"), dbs: []placeState{db("a", false, ""), db("a_views", false, "")},
			wantErr: []string{"in .data/kafka but none in database a, database a_views", "make reset"}},
		{name: "one database dropped", kafka: kafka(true, "x1"), dbs: []placeState{db("a", true, "x1"), db("a_views", false, "")},
			wantErr: []string{"none in database a_views", "make reset"}},
		{name: "different stacks", kafka: kafka(true, "x2"), dbs: []placeState{db("a", true, "x1"), db("a_views", true, "x1")},
			wantErr: []string{"different stacks", ".data/kafka stack-id x2", "database a stack-id x1", "make reset"}},
		{name: "id missing in one place", kafka: kafka(true, ""), dbs: []placeState{db("a", true, "x1"), db("a_views", true, "x1")},
			wantErr: []string{".data/kafka stack-id none", "make reset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fresh, err := checkStackIdentity(tt.kafka, tt.dbs, ".data")
			if tt.wantErr == nil {
				if err != nil || fresh != tt.wantFresh {
					t.Fatalf("checkStackIdentity = %v, %v; want %v, nil", fresh, err, tt.wantFresh)
				}
				return
			}
			if !errors.Is(err, errDevDataMismatch) {
				t.Fatalf("checkStackIdentity error = %v; want errDevDataMismatch", err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// devOptions returns options for a stack on throwaway databases (random
// name, dropped in t.Cleanup with its -secure pair) and a temporary -data.
func devOptions(t *testing.T) options {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	o, err := parse([]string{"-database", "t_devstack_" + hex.EncodeToString(b[:]), "-data", filepath.Join(t.TempDir(), "data"),
		"-kafka-addr", "127.0.0.1:0", "-pg-admin-url", pgtest.AdminURL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		names := append(devDatabases(o.database), devDatabases(o.database+secureDBSuffix)...)
		if err := dropDatabases(ctx, o.adminURL, names, true, nil); err != nil {
			t.Errorf("drop test databases: %v", err)
		}
	})
	return o
}

// startAs runs what devstack does with the dev data at start: prepare the
// databases, start the broker on o.dataDir and create the topics, record a
// new stack id, close the broker.
func startAs(ctx context.Context, o options) error {
	id, err := prepareDevData(ctx, o)
	if err != nil {
		return err
	}
	b, err := kafkabroker.Start(kafkabroker.Options{DataDir: filepath.Join(o.dataDir, kafkaDirName)})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopics(ctx, 1, topics...); err != nil {
		return err
	}
	if id != "" {
		return recordStackID(ctx, o, id)
	}
	return nil
}

func databaseExists(t *testing.T, ctx context.Context, adminURL, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

// TestIntegrationDevData walks the dev data through what a developer does:
// first start, restart, `make clean` of the old Makefile (the Kafka log
// deleted), `make reset`, a stack id changed by hand, and data from before
// stack ids.
func TestIntegrationDevData(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	o := devOptions(t)
	names := devDatabases(o.database)

	// First start: databases created, the broker's log written, one id everywhere.
	if err := startAs(ctx, o); err != nil {
		t.Fatalf("first start: %v", err)
	}
	k, err := kafkaState(o.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !k.present || k.id == "" {
		t.Fatalf("after the first start the Kafka side is %+v; want a log and an id", k)
	}
	dbs, err := databaseStates(ctx, o.adminURL, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dbs {
		if !d.present || d.id != k.id {
			t.Fatalf("after the first start %s is %+v; want it with stack id %s", d.what, d, k.id)
		}
	}

	// Restart: accepted, nothing new recorded.
	if id, err := prepareDevData(ctx, o); err != nil || id != "" {
		t.Fatalf("restart: prepareDevData = %q, %v; want \"\", nil", id, err)
	}

	// The old `make clean`: .data gone, the databases kept.
	if err := os.RemoveAll(o.dataDir); err != nil {
		t.Fatal(err)
	}
	_, err = prepareDevData(ctx, o)
	if !errors.Is(err, errDevDataMismatch) || !strings.Contains(err.Error(), "make reset") {
		t.Fatalf("start after .data was deleted: %v; want a mismatch naming make reset", err)
	}

	// An invalid -database is refused before anything is touched.
	if _, err := prepareDevData(ctx, options{database: "bad-name", dataDir: o.dataDir, adminURL: o.adminURL}); err == nil {
		t.Fatal("prepareDevData with -database bad-name succeeded")
	}

	// make reset: both databases dropped, -data removed, each named.
	if err := os.MkdirAll(filepath.Join(o.dataDir, kafkaDirName), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := reset(ctx, o, &out); err != nil {
		t.Fatalf("reset: %v", err)
	}
	for _, want := range []string{"dropping PostgreSQL database " + names[0], "dropping PostgreSQL database " + names[1], "removing " + o.dataDir} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("reset printed %q; want it to contain %q", out.String(), want)
		}
	}
	for _, n := range names {
		if databaseExists(t, ctx, o.adminURL, n) {
			t.Errorf("database %s exists after reset", n)
		}
	}
	if _, err := os.Stat(o.dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after reset: %v; want it gone", o.dataDir, err)
	}

	// After the reset a start is a first start again.
	if err := startAs(ctx, o); err != nil {
		t.Fatalf("start after reset: %v", err)
	}

	// Another stack's id in the Kafka data.
	if err := writeKafkaStackID(o.dataDir, "0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareDevData(ctx, o); !errors.Is(err, errDevDataMismatch) || !strings.Contains(err.Error(), "different stacks") {
		t.Fatalf("start with another stack's id: %v; want a mismatch", err)
	}

	// Data from before stack ids: no id anywhere, adopted with a new one.
	if err := os.Remove(filepath.Join(o.dataDir, stackIDName)); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, o.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{n}.Sanitize()+" IS NULL"); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	if err := startAs(ctx, o); err != nil {
		t.Fatalf("start on data from before stack ids: %v", err)
	}
	if id, err := prepareDevData(ctx, o); err != nil || id != "" {
		t.Fatalf("restart after adoption: prepareDevData = %q, %v; want \"\", nil", id, err)
	}
}

// TestIntegrationResetRefusals checks that make reset touches nothing while
// the Kafka address is taken (a running devstack) and fails, rather than
// cutting it, while a session is connected to a dev database.
func TestIntegrationResetRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	o := devOptions(t)
	if err := startAs(ctx, o); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busy := o
	busy.kafkaAddr = ln.Addr().String()
	var out bytes.Buffer
	err = reset(ctx, busy, &out)
	_ = ln.Close()
	if err == nil || !strings.Contains(err.Error(), "make run") {
		t.Fatalf("reset with the Kafka address taken: %v; want an error naming make run", err)
	}
	if out.Len() != 0 || !databaseExists(t, ctx, o.adminURL, o.database) {
		t.Fatalf("reset with the Kafka address taken printed %q or dropped %s; want nothing touched", out.String(), o.database)
	}

	dsn, err := pgtest.WithDatabase(o.adminURL, o.database)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := reset(ctx, o, &out); err == nil || !strings.Contains(err.Error(), "still connected") {
		t.Fatalf("reset with a session connected: %v; want an error saying a session is connected", err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("the connected session was cut: %v", err)
	}
}

// TestIntegrationSecureDataIsNew checks that -secure mode starts on empty
// databases of its own each time, like its broker, and leaves the plaintext
// stack's databases alone.
func TestIntegrationSecureDataIsNew(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	o := devOptions(t)
	o.secure = true
	names := stackDatabases(o)
	if names[0] != o.database+"_secure" || names[1] != o.database+"_secure_views" {
		t.Fatalf("secure databases %q; want %s_secure and %s_secure_views", names, o.database, o.database)
	}
	if err := prepareSecureData(ctx, o); err != nil {
		t.Fatal(err)
	}
	dsn, err := pgtest.WithDatabase(o.adminURL, names[0])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE TABLE left_over (id int)")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := prepareSecureData(ctx, o); err != nil {
		t.Fatalf("second secure start: %v", err)
	}
	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'left_over'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the secure database kept a table across starts; want it new at each start")
	}
	if databaseExists(t, ctx, o.adminURL, o.database) {
		t.Fatalf("a secure start created the plaintext database %s", o.database)
	}
}
