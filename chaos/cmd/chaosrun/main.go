// Command chaosrun is the fault-injection scenario runner of PropAlpes
// Companies (issue 5). It starts the real processes — an embedded Kafka
// broker and a Mongo-wire server as child processes of its own (so they can
// be killed and restarted on the same port and data), two writers
// (commandd) and three readers (queryd) on fixed ports, over fresh databases
// of the local PostgreSQL server — drives a seeded mixed load (HTTP
// commands, some of them refused on purpose; Kafka commands, some of them
// bad on purpose, one with a ~1 MB traceparent header; poison messages on
// the event topic, see poison.go), injects faults at seeded points (kills,
// SIGTERMs, a stopped reader, a frozen relay leader), waits for quiescence
// and checks the invariants:
//
//   - every company in PostgreSQL equals its view (fields and version);
//   - /v1/estadisticas equals PostgreSQL's counts;
//   - no view without a row: the views listed page by page are exactly the
//     companies of PostgreSQL;
//   - every committed event is on the topic: per company versions 1..n with
//     no gap, in order, on one partition, each equal to its row of the
//     writer's event log (compania_eventos), the last equal to the company;
//   - no event whose transaction rolled back: no event outside the event
//     log or beyond PostgreSQL's version, and no event or row carrying the
//     values of a request the writers refused;
//   - the event DLQ holds exactly the poison that must be dead-lettered and
//     the commands DLQ exactly the bad commands, each with its reason and
//     original headers, a second copy only where at-least-once delivery
//     explains it (dlqcheck.go);
//   - successful HTTP state changes equal SUM(version) in PostgreSQL;
//   - the Kafka command with a huge traceparent ran without it: its company
//     is in PostgreSQL and in the views, its events are on the topic with
//     no oversized header, it is not dead-lettered (hugeheader.go);
//   - while a relay leader was frozen, the other writer took the relay over
//     (takeover.go); the per-company order checks above hold across it.
//
// It prints each figure; a failed check prints the seed. The exit status is
// 0 only when every check passes. Usage:
//
//	chaosrun -short -seed 42           # CI form: a few hundred commands, one fault of each kind
//	chaosrun -commands 10000 -nfaults 40
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
)

// Fault kinds.
const (
	faultKillWriter = "kill-writer"
	faultKillRelay  = "kill-relay"
	faultKillReader = "kill-reader"
	faultKillBroker = "kill-broker"
	faultKillMongo  = "kill-mongo"
	faultTermWriter = "term-writer"
	faultTermReader = "term-reader"
	faultStopReader = "stop-reader"
	// faultFreezeRelay stops (SIGSTOP) the writer leading the outbox relay
	// while rows wait to be published, for freezeFor — longer than the
	// relay's lease (leaseTTL) — then resumes it (SIGCONT).
	faultFreezeRelay = "freeze-relay"
)

var allFaults = []string{faultKillWriter, faultKillRelay, faultKillReader, faultKillBroker,
	faultKillMongo, faultTermWriter, faultTermReader, faultStopReader, faultFreezeRelay}

// leaseTTL is the writers' OUTBOX_LEASE_TTL: how long a relay leader keeps
// its lease without renewing it. freezeFor, the length of a freeze-relay
// fault, exceeds it, so that the other writer takes the lease over while
// the leader is frozen.
const (
	leaseTTL  = 2 * time.Second
	freezeFor = 5 * time.Second
)

type options struct {
	seed     uint64
	commands int
	faults   []string
	nfaults  int
	short    bool
	adminURL string
	repo     string
	keep     bool
	race     bool
	logDir   string
	workers  int
	// dumpStuck: a process still running this long after a SIGTERM fault
	// gets SIGQUIT, so that its goroutines land in the children's log (0: off).
	dumpStuck time.Duration
	soakMode  bool        // -soak: run soak instead of the fault scenario
	soak      soakOptions // its flags (soak.go)
}

func main() {
	child := flag.String("child", "", "internal: run an infrastructure child (kafka or mongo)")
	addr := flag.String("addr", "", "internal: the child's listen address")
	data := flag.String("data", "", "internal: the kafka child's data directory")
	pgURL := flag.String("pg", "", "internal: the mongo child's PostgreSQL URL")
	var o options
	var faults string
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the load and the fault points (0: from the clock)")
	flag.IntVar(&o.commands, "commands", 10000, "HTTP commands to send")
	flag.StringVar(&faults, "faults", strings.Join(allFaults, ","), "fault kinds to inject, comma separated")
	flag.IntVar(&o.nfaults, "nfaults", 0, "faults to inject (0: one per kind with -short, 4 per kind otherwise)")
	flag.BoolVar(&o.short, "short", false, "CI form: 300 commands (unless -commands is given) and one fault of each kind")
	flag.StringVar(&o.adminURL, "pg-admin-url", envOr("PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL URL allowed to create databases")
	flag.StringVar(&o.repo, "repo", "", "workspace root holding go.work (default: found from the working directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the databases and the run directory")
	flag.BoolVar(&o.race, "race", false, "build the services with -race")
	flag.StringVar(&o.logDir, "logs", "", "directory for the children's logs (default: a temporary run directory)")
	flag.IntVar(&o.workers, "workers", 8, "concurrent HTTP clients")
	flag.DurationVar(&o.dumpStuck, "dump-stuck", 0, "diagnosis: SIGQUIT a process still running this long after a SIGTERM fault, dumping its goroutines to the children's log (0: off; the services' SHUTDOWN_TIMEOUT is 10s)")
	soakFlags(&o)
	flag.Parse()
	if *child != "" {
		if err := runChild(*child, *addr, *data, *pgURL); err != nil {
			fmt.Fprintln(os.Stderr, "chaosrun child:", err)
			os.Exit(1)
		}
		return
	}
	commandsSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "commands" {
			commandsSet = true
		}
	})
	if o.short && !commandsSet {
		o.commands = 300
	}
	for _, f := range strings.Split(faults, ",") {
		if f = strings.TrimSpace(f); f == "" || f == "none" {
			continue
		}
		known := false
		for _, k := range allFaults {
			known = known || k == f
		}
		if !known {
			fmt.Fprintf(os.Stderr, "chaosrun: unknown fault %q (known: %s)\n", f, strings.Join(allFaults, ","))
			os.Exit(2)
		}
		o.faults = append(o.faults, f)
	}
	if o.nfaults == 0 {
		o.nfaults = len(o.faults)
		if !o.short {
			o.nfaults = 4 * len(o.faults)
		}
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ok, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaosrun: %v\nseed %d\n", err, o.seed)
		os.Exit(1)
	}
	if !ok && o.soakMode {
		fmt.Println("FAIL: soak")
		os.Exit(1)
	}
	if !ok {
		fmt.Printf("FAIL: reproduce with: chaosrun -seed %d -commands %d -nfaults %d -faults %s\n",
			o.seed, o.commands, o.nfaults, strings.Join(o.faults, ","))
		os.Exit(1)
	}
	fmt.Printf("PASS (seed %d)\n", o.seed)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// stack is the running system of one scenario.
type stack struct {
	o        options
	broker   *service
	mongo    *service
	writers  []*service
	readers  []*service
	db       *pgxpool.Pool
	rng      *rand.Rand // the fault scheduler's choices
	findings *findings
}

func (s *stack) all() []*service {
	out := []*service{s.broker, s.mongo}
	out = append(out, s.writers...)
	return append(out, s.readers...)
}

func run(ctx context.Context, o options) (bool, error) {
	start := time.Now()
	fmt.Printf("chaosrun: seed %d, %d commands, %d faults of %v\n", o.seed, o.commands, o.nfaults, o.faults)
	repo := o.repo
	if repo == "" {
		var err error
		if repo, err = findWorkspace(); err != nil {
			return false, err
		}
	}
	dir, err := os.MkdirTemp("", "chaosrun-")
	if err != nil {
		return false, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	if err := buildServices(ctx, repo, dir, o.race); err != nil {
		return false, err
	}
	fmt.Printf("built the services in %s\n", time.Since(start).Round(time.Millisecond))
	self, err := os.Executable()
	if err != nil {
		return false, err
	}

	// Databases: the writer's and the one FerretDB keeps the views in.
	base := fmt.Sprintf("chaos_%d_%d", o.seed%1_000_000, time.Now().UnixNano()%1_000_000)
	writerDB, viewsDB := base+"_w", base+"_v"
	for _, n := range []string{writerDB, viewsDB} {
		if err := pgtest.EnsureDatabase(ctx, o.adminURL, n); err != nil {
			return false, fmt.Errorf("create database %s: %w", n, err)
		}
	}
	if !o.keep {
		defer dropDatabases(o.adminURL, writerDB, viewsDB)
	}
	writerURL, err := pgtest.WithDatabase(o.adminURL, writerDB)
	if err != nil {
		return false, err
	}
	viewsURL, err := pgtest.WithDatabase(o.adminURL, viewsDB)
	if err != nil {
		return false, err
	}

	logDir := o.logDir
	if logDir == "" {
		logDir = dir
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return false, err
	}
	logf, err := os.Create(filepath.Join(logDir, "children.log"))
	if err != nil {
		return false, err
	}
	defer logf.Close()

	// broker, mongo, 2 writers, 3 readers, then the admin (METRICS_ADDR)
	// listeners of the 2 writers and 3 readers.
	ports := make([]string, 12)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return false, err
		}
	}
	s := &stack{o: o, rng: rand.New(rand.NewPCG(o.seed, 0xfa17)), findings: &findings{}}
	s.broker = &service{name: "broker", bin: self, addr: ports[0], logf: logf, ready: lineReady,
		args: []string{"-child", "kafka", "-addr", ports[0], "-data", filepath.Join(dir, "kafka")}}
	s.mongo = &service{name: "mongo", bin: self, addr: ports[1], logf: logf, ready: lineReady,
		args: []string{"-child", "mongo", "-addr", ports[1], "-pg", viewsURL}}
	defer func() {
		for _, sv := range s.all() {
			if sv.running() {
				sv.signal(syscall.SIGCONT, false)
				sv.signal(syscall.SIGTERM, true)
			}
		}
		for _, sv := range s.all() {
			if _, ok := sv.waitExit(20 * time.Second); !ok {
				sv.signal(syscall.SIGKILL, true)
				sv.waitExit(5 * time.Second)
			}
		}
	}()
	if err := s.broker.start(ctx); err != nil {
		return false, err
	}
	if err := s.mongo.start(ctx); err != nil {
		return false, err
	}
	mongoURI := s.mongo.line
	for i := range 2 {
		s.writers = append(s.writers, &service{name: fmt.Sprintf("writer%d", i+1), bin: filepath.Join(dir, "commandd"),
			addr: ports[2+i], metricsAddr: ports[7+i], logf: logf, ready: httpReady, env: []string{
				"HTTP_ADDR=" + ports[2+i],
				"METRICS_ADDR=" + ports[7+i],
				"DATABASE_URL=" + writerURL,
				"KAFKA_BROKERS=" + ports[0],
				"KAFKA_TOPIC_PARTITIONS=6",
				"KAFKA_COMMANDS_GROUP_ID=" + commandGroup,
				"SHUTDOWN_TIMEOUT=10s",
				"OUTBOX_POLL_INTERVAL=200ms",
				"OUTBOX_LEASE_TTL=" + leaseTTL.String(),
				"LOG_LEVEL=info",
			}})
	}
	for i := range 3 {
		s.readers = append(s.readers, &service{name: fmt.Sprintf("reader%d", i+1), bin: filepath.Join(dir, "queryd"),
			addr: ports[4+i], metricsAddr: ports[9+i], logf: logf, ready: httpReady, env: []string{
				"HTTP_ADDR=" + ports[4+i],
				"METRICS_ADDR=" + ports[9+i],
				"KAFKA_BROKERS=" + ports[0],
				"KAFKA_TOPIC_PARTITIONS=6",
				"KAFKA_GROUP_ID=" + queryGroup,
				"MONGO_URI=" + mongoURI,
				"MONGO_DATABASE=chaos_views",
				"SHUTDOWN_TIMEOUT=10s",
				"LOG_LEVEL=info",
			}})
	}
	for _, sv := range append(append([]*service{}, s.writers...), s.readers...) {
		if err := sv.start(ctx); err != nil {
			return false, err
		}
	}
	pcfg, err := pgxpool.ParseConfig(writerURL)
	if err != nil {
		return false, err
	}
	pcfg.MaxConns = 4
	if s.db, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return false, err
	}
	defer s.db.Close()
	fmt.Printf("stack up in %s (broker %s, mongo %s, writers %s %s, readers %s %s %s); children's logs: %s\n",
		time.Since(start).Round(time.Millisecond), ports[0], mongoURI, ports[2], ports[3], ports[4], ports[5], ports[6], logf.Name())

	if o.soakMode {
		return s.soak(ctx)
	}

	// The load and the faults.
	loadStart := time.Now()
	res, err := s.drive(ctx)
	if err != nil {
		return false, err
	}
	fmt.Printf("load done in %s: %d HTTP commands, %d kafka commands (%d bad), %d poison events, %d faults injected\n",
		time.Since(loadStart).Round(time.Millisecond), res.ops.Load(), res.kafkaSent, len(res.bad), len(res.poison), res.faultsDone)

	// Quiescence, then the checks.
	qStart := time.Now()
	if err := s.quiesce(ctx, res); err != nil {
		s.findings.add("quiescence: %v", err)
	} else {
		fmt.Printf("quiescent after %s\n", time.Since(qStart).Round(time.Millisecond))
	}
	ok := s.check(ctx, res)
	fmt.Printf("total run time %s\n", time.Since(start).Round(time.Millisecond))
	if n := s.findings.len(); n > 0 {
		fmt.Printf("%d findings during the run:\n%s", n, s.findings.String())
		ok = false
	}
	if !ok {
		fmt.Printf("children's logs kept in %s\n", logf.Name())
		if !o.keep && o.logDir == "" {
			// keep the run directory (the logs) for inspection
			keepDir := dir + "-failed"
			_ = os.Rename(dir, keepDir)
			fmt.Printf("(moved to %s)\n", keepDir)
		}
	}
	return ok, nil
}

// findWorkspace walks up from the working directory to the go.work file.
func findWorkspace() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("no go.work above the working directory; pass -repo")
		}
		d = p
	}
}

func buildServices(ctx context.Context, repo, dir string, race bool) error {
	// GOWORK must be absolute (make chaos passes -repo ..).
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/propalpes/companias/services/command/cmd/commandd",
		"github.com/propalpes/companias/services/query/cmd/queryd")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(repo, "go.work"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the services: %w\n%s", err, out)
	}
	return nil
}

func dropDatabases(adminURL string, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosrun: drop databases:", err)
		return
	}
	defer conn.Close(ctx)
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "chaosrun: drop database %s: %v\n", n, err)
		}
	}
}
