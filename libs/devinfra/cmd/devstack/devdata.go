package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
)

// The dev stack keeps its data in two places: the Kafka log under -data
// (kafkaDirName) and two PostgreSQL databases on the machine's server (the
// writer's and the one FerretDB keeps the views in). Deleting one without
// the other leaves views and writer that no longer match the log (a rebuild
// then silently loses companies), so each start checks that both places
// belong to one stack: the first start writes a random stack id to
// <data>/stack-id and to each database's COMMENT, and every later start
// refuses to run when they disagree or one is missing.
const (
	kafkaDirName   = "kafka"    // the plaintext broker's log, under -data
	stackIDName    = "stack-id" // the stack id file, under -data
	commentPrefix  = "devstack stack-id="
	resetHint      = "run `make reset` (devstack -reset with the same -database and -data) to delete all dev data, both PostgreSQL databases and %s, and start empty"
	secureDBSuffix = "_secure"
)

// devDatabases returns the PostgreSQL databases of a stack whose writer
// database is name: the writer's, then the views'.
func devDatabases(name string) []string { return []string{name, name + "_views"} }

// stackDatabases returns the databases devstack runs on with o: in -secure
// mode its own pair (suffix _secure), recreated at each start like the
// secured broker's log, so that nothing of a plaintext stack is mixed with it.
func stackDatabases(o options) []string {
	if o.secure {
		return devDatabases(o.database + secureDBSuffix)
	}
	return devDatabases(o.database)
}

// placeState is what one place of dev data holds.
type placeState struct {
	present bool   // holds data (a non-empty Kafka log, an existing database)
	id      string // the stack id written there; "" when none
	what    string // how to name the place to the developer
}

// errDevDataMismatch marks a refusal to start on dev data that does not
// belong together.
var errDevDataMismatch = errors.New("dev data mismatch")

// checkStackIdentity decides from the state of the Kafka log and of the
// databases whether devstack may start on them. fresh reports that a new
// stack id must be recorded; err wraps errDevDataMismatch and says what is
// wrong and what to do.
//
//   - no data anywhere: a first start, a new id;
//   - data everywhere, one id everywhere: the same stack;
//   - data everywhere, no id anywhere: dev data from before stack ids; it is
//     adopted with a new id (whether it matched cannot be known any more);
//   - anything else (a place without data while another has some, or ids
//     that differ or are missing in some places): a mismatch.
func checkStackIdentity(kafka placeState, dbs []placeState, dataDir string) (fresh bool, err error) {
	places := append([]placeState{kafka}, dbs...)
	var present, withID []placeState
	for _, p := range places {
		if p.present {
			present = append(present, p)
		}
		if p.id != "" {
			withID = append(withID, p)
		}
	}
	hint := fmt.Sprintf(resetHint, dataDir)
	switch {
	case len(present) == 0: // a stale id without data is no data
		return true, nil
	case len(present) == len(places) && len(withID) == 0:
		return true, nil
	}
	if len(present) < len(places) {
		var have, missing []string
		for _, p := range places {
			if p.present {
				have = append(have, p.what)
			} else {
				missing = append(missing, p.what)
			}
		}
		return false, fmt.Errorf("%w: found data of an earlier `make run` in %s but none in %s "+
			"(deleted by hand or by an older `make clean`?): the views and the writer would not match the Kafka log; %s",
			errDevDataMismatch, strings.Join(have, ", "), strings.Join(missing, ", "), hint)
	}
	for _, p := range places {
		if p.id != withID[0].id {
			return false, fmt.Errorf("%w: the dev data belongs to different stacks (%s): "+
				"the views and the writer would not match the Kafka log; %s",
				errDevDataMismatch, describeIDs(places), hint)
		}
	}
	return false, nil
}

// describeIDs lists each place with its stack id, for an error message.
func describeIDs(places []placeState) string {
	parts := make([]string, 0, len(places))
	for _, p := range places {
		id := p.id
		if id == "" {
			id = "none"
		}
		parts = append(parts, p.what+" stack-id "+id)
	}
	return strings.Join(parts, ", ")
}

// newStackID returns a random stack id (16 hex digits).
func newStackID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new stack id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// kafkaState reads the Kafka side of the stack under dataDir: present when
// the broker's log directory holds anything, with the id of the stack-id file.
func kafkaState(dataDir string) (placeState, error) {
	s := placeState{what: filepath.Join(dataDir, kafkaDirName)}
	entries, err := os.ReadDir(filepath.Join(dataDir, kafkaDirName))
	switch {
	case err == nil:
		s.present = len(entries) > 0
	case !errors.Is(err, fs.ErrNotExist):
		return s, fmt.Errorf("read the Kafka data: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, stackIDName))
	switch {
	case err == nil:
		s.id = strings.TrimSpace(string(b))
	case !errors.Is(err, fs.ErrNotExist):
		return s, fmt.Errorf("read the stack id: %w", err)
	}
	return s, nil
}

// writeKafkaStackID writes id to the stack-id file under dataDir.
func writeKafkaStackID(dataDir, id string) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("write the stack id: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, stackIDName), []byte(id+"\n"), 0o644); err != nil {
		return fmt.Errorf("write the stack id: %w", err)
	}
	return nil
}

// databaseStates reads the PostgreSQL side of the stack through the admin
// URL: for each name, whether the database exists and the stack id in its
// comment.
func databaseStates(ctx context.Context, adminURL string, names []string) ([]placeState, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s (is it running?): %w", redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	states := make([]placeState, 0, len(names))
	for _, name := range names {
		s := placeState{what: "database " + name}
		var comment *string
		err := conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, name).Scan(&comment)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("look up database %s: %w", name, err)
		default:
			s.present = true
			if comment != nil {
				s.id, _ = strings.CutPrefix(*comment, commentPrefix)
				if s.id == *comment { // a comment devstack did not write
					s.id = ""
				}
			}
		}
		states = append(states, s)
	}
	return states, nil
}

// setDatabaseStackIDs writes id into the comment of each database.
func setDatabaseStackIDs(ctx context.Context, adminURL string, names []string, id string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s: %w", redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, name := range names {
		// COMMENT takes no parameters; id is hex and the name a validated identifier.
		q := "COMMENT ON DATABASE " + pgx.Identifier{name}.Sanitize() + " IS '" + commentPrefix + id + "'"
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("write the stack id on database %s: %w", name, err)
		}
	}
	return nil
}

// prepareDevData makes the plaintext stack's databases ready: it checks
// that the Kafka log under o.dataDir and the databases belong to one stack
// (see checkStackIdentity) and creates the missing databases. It returns the
// id to record with recordStackID once the broker has written its log, or
// "" when the places already carry their id.
func prepareDevData(ctx context.Context, o options) (string, error) {
	names := stackDatabases(o)
	for _, n := range names {
		if err := pgtest.ValidateName(n); err != nil {
			return "", fmt.Errorf("-database: %w", err)
		}
	}
	kafka, err := kafkaState(o.dataDir)
	if err != nil {
		return "", err
	}
	dbs, err := databaseStates(ctx, o.adminURL, names)
	if err != nil {
		return "", err
	}
	fresh, err := checkStackIdentity(kafka, dbs, o.dataDir)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if err := pgtest.EnsureDatabase(ctx, o.adminURL, n); err != nil {
			return "", fmt.Errorf("is PostgreSQL running on the admin URL? %w", err)
		}
	}
	if !fresh {
		return "", nil
	}
	return newStackID()
}

// recordStackID writes id to the plaintext stack's databases and to the
// stack-id file. Called once the broker has created its topics, so that the
// Kafka log is not empty: a crash before this point leaves data without ids
// everywhere, which the next start adopts, never a false mismatch.
func recordStackID(ctx context.Context, o options, id string) error {
	if err := setDatabaseStackIDs(ctx, o.adminURL, stackDatabases(o), id); err != nil {
		return err
	}
	return writeKafkaStackID(o.dataDir, id)
}

// prepareSecureData recreates the -secure stack's databases empty: the
// secured broker keeps no log, so neither may the views nor the writer.
func prepareSecureData(ctx context.Context, o options) error {
	names := stackDatabases(o)
	if err := dropDatabases(ctx, o.adminURL, names, true, nil); err != nil {
		return err
	}
	for _, n := range names {
		if err := pgtest.EnsureDatabase(ctx, o.adminURL, n); err != nil {
			return fmt.Errorf("is PostgreSQL running on the admin URL? %w", err)
		}
	}
	return nil
}

// dropDatabases drops each database that exists, naming it on out (when
// not nil). force terminates the sessions still connected; without it a
// connected session makes the drop fail.
func dropDatabases(ctx context.Context, adminURL string, names []string, force bool, out io.Writer) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s (is it running?): %w", redact(adminURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, name := range names {
		if err := pgtest.ValidateName(name); err != nil {
			return err
		}
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
			return fmt.Errorf("look up database %s: %w", name, err)
		}
		if !exists {
			continue
		}
		if out != nil {
			fmt.Fprintf(out, "dropping PostgreSQL database %s\n", name)
		}
		q := "DROP DATABASE " + pgx.Identifier{name}.Sanitize()
		if force {
			q += " WITH (FORCE)"
		}
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("drop database %s (is `make run` or another session still connected to it?): %w", name, err)
		}
	}
	return nil
}

// reset deletes all dev data of both modes: the plaintext and -secure
// databases and the -data directory, naming each on out. It refuses while
// something listens on the Kafka address (a running `make run`), and a
// session still connected to a database makes it fail rather than be cut.
func reset(ctx context.Context, o options, out io.Writer) error {
	if err := probeFree(o.kafkaAddr); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	names := append(devDatabases(o.database), devDatabases(o.database+secureDBSuffix)...)
	if err := dropDatabases(ctx, o.adminURL, names, false, out); err != nil {
		return err
	}
	if _, err := os.Stat(o.dataDir); err == nil {
		fmt.Fprintf(out, "removing %s\n", o.dataDir)
	}
	if err := os.RemoveAll(o.dataDir); err != nil {
		return fmt.Errorf("remove %s: %w", o.dataDir, err)
	}
	fmt.Fprintln(out, "dev data deleted; the next `make run` starts empty")
	return nil
}

// probeFree fails when addr cannot be listened on (something, such as a
// running devstack, holds it).
func probeFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is in use (is `make run` running?): %w", addr, err)
	}
	return ln.Close()
}
