// Package e2e holds the end-to-end tests of PropAlpes Companies: they build
// the command (writer) and query (reader) service binaries once, run them as
// child processes against embedded infrastructure (the kfake Kafka broker, a
// FerretDB MongoDB-wire server and fresh PostgreSQL databases) and check the
// whole system through its public interfaces only: HTTP, Kafka and the
// writer's PostgreSQL tables. The package has no non-test code.
//
// Run them with `go test -race ./e2e/` from the workspace root; they need
// PostgreSQL on 127.0.0.1:5432 (or $PGTEST_ADMIN_URL, see pgtest) and the go
// command on $PATH. Under -race the services are built with -race too
// (E2E_CHILD_RACE=0 or 1 overrides). A failing test prints the last log
// lines of the services it ran.
package e2e
