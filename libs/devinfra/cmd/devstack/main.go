// Command devstack runs the whole PropAlpes Companies system on one machine
// with embedded infrastructure — the default of `make run`:
//
//   - an in-process Kafka-protocol broker (kfake) on 127.0.0.1:9092, its data
//     kept under -data so a restart keeps the topics and the consumer offsets;
//   - an in-process MongoDB-wire server (FerretDB v1 on PostgreSQL) on
//     127.0.0.1:27017;
//   - the PostgreSQL databases it needs (-database and <database>_views),
//     created on the local server if missing;
//   - the command service (writer) on 127.0.0.1:8080 and the query service
//     (reader) on 127.0.0.1:8081, as child processes, with their metrics
//     (admin listeners) on 127.0.0.1:9090 and 127.0.0.1:9091.
//
// With -secure (`make run-secure`) the broker runs like a hardened cluster:
// a TLS listener with a certificate from a CA generated at start, SASL
// SCRAM-SHA-512 and ACLs, one least-privilege principal per service and an
// "external" one (see kafkabroker.ServicePrincipals). The admin principal
// creates the topics (the dead-letter topics with a finite retention); the
// services connect with KAFKA_TLS_* and KAFKA_SASL_* (passwords in 0600
// files under -data) and do not create topics; the external principal's
// librdkafka settings are written to <data>/kafka-client.properties for
// `kcat -F`. The secured broker keeps nothing on disk: its CA, passwords and
// records are new at each start, and so are its databases (<database>_secure
// and <database>_secure_views, dropped and created empty).
//
// The dev data of `make run` lives in two places, the Kafka log under -data
// and the two databases; a stack id recorded in both at the first start
// makes a later start refuse to run on places of different stacks, or on
// one without the other, naming `make reset` (see devdata.go). -reset
// (`make reset`) deletes all of it.
//
// Ctrl-C (SIGINT) or SIGTERM stops the services gracefully, then the
// embedded servers. It is a development tool, never a production setup.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

type options struct {
	commandBin, queryBin   string
	commandAddr, queryAddr string
	// Admin listeners (METRICS_ADDR) of the two services.
	commandMetrics, queryMetrics string
	kafkaAddr, mongoAddr         string
	adminURL                     string
	database                     string
	dataDir                      string
	partitions                   int
	logLevel                     string
	secure                       bool
	reset                        bool
	dlqRetention                 time.Duration
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.StringVar(&o.commandBin, "command", "bin/companias-command", "path of the command service binary")
	fs.StringVar(&o.queryBin, "query", "bin/companias-query", "path of the query service binary")
	fs.StringVar(&o.commandAddr, "command-addr", "127.0.0.1:8080", "HTTP address of the command service")
	fs.StringVar(&o.queryAddr, "query-addr", "127.0.0.1:8081", "HTTP address of the query service")
	fs.StringVar(&o.commandMetrics, "command-metrics-addr", "127.0.0.1:9090", "metrics (admin) address of the command service")
	fs.StringVar(&o.queryMetrics, "query-metrics-addr", "127.0.0.1:9091", "metrics (admin) address of the query service")
	fs.StringVar(&o.kafkaAddr, "kafka-addr", "127.0.0.1:9092", "address of the embedded Kafka broker")
	fs.StringVar(&o.mongoAddr, "mongo-addr", "127.0.0.1:27017", "address of the embedded MongoDB-wire server")
	fs.StringVar(&o.adminURL, "pg-admin-url", envOr("PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"PostgreSQL URL with the right to create databases")
	fs.StringVar(&o.database, "database", "propalpes", "PostgreSQL database of the command service; the views are in <database>_views (-secure: <database>_secure and <database>_secure_views, new at each start)")
	fs.StringVar(&o.dataDir, "data", ".data", "directory for the embedded broker's data (the Kafka log and the stack id)")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of each topic")
	fs.StringVar(&o.logLevel, "log-level", envOr("LOG_LEVEL", "info"), "log level of the services")
	fs.BoolVar(&o.secure, "secure", false, "run the broker secured: TLS, SASL/SCRAM-SHA-512 and ACLs, one principal per service")
	fs.BoolVar(&o.reset, "reset", false, "delete all dev data (the -database databases of both modes and -data) and exit; starts nothing")
	fs.DurationVar(&o.dlqRetention, "dlq-retention", 168*time.Hour, "retention of the dead-letter topics with -secure")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// The services run with AUTH_MODE unset, which they accept on loopback
	// only: say so here rather than through a service that will not start.
	for _, a := range []struct{ flag, addr string }{{"-command-addr", o.commandAddr}, {"-query-addr", o.queryAddr}} {
		if host, _, err := net.SplitHostPort(a.addr); err != nil || !envconfig.Loopback(host) {
			return o, fmt.Errorf("%s %q: want a loopback address such as 127.0.0.1:8080 (the services run without authentication)", a.flag, a.addr)
		}
	}
	if o.dlqRetention < time.Millisecond {
		return o, fmt.Errorf("-dlq-retention %s: want at least 1ms (dead letters hold personal data; they must not be kept forever)", o.dlqRetention)
	}
	return o, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	// The services' format: JSON lines on stderr, one "service" attribute.
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", "devstack")
	if o.reset {
		return reset(ctx, o, os.Stdout)
	}

	// PostgreSQL: the writer's database and the one FerretDB stores views
	// in; with the Kafka log under -data, the stack's dev data.
	dbNames := stackDatabases(o)
	var stackID string
	if o.secure {
		err = prepareSecureData(ctx, o)
	} else {
		stackID, err = prepareDevData(ctx, o)
	}
	if err != nil {
		return err
	}
	dbURL, err := pgtest.WithDatabase(o.adminURL, dbNames[0])
	if err != nil {
		return err
	}
	ferretURL, err := pgtest.WithDatabase(o.adminURL, dbNames[1])
	if err != nil {
		return err
	}

	var (
		broker   *kafkabroker.Broker
		kafkaEnv map[string][]string // by service: its KAFKA_* connection settings
		secured  secureStack
	)
	if o.secure {
		secured, err = startSecureKafka(ctx, o)
		if err != nil {
			return err
		}
		broker, kafkaEnv = secured.broker, secured.env
	} else {
		broker, err = kafkabroker.Start(kafkabroker.Options{Addr: o.kafkaAddr, DataDir: filepath.Join(o.dataDir, "kafka")})
		if err != nil {
			return fmt.Errorf("start embedded Kafka broker: %w", err)
		}
		if err := broker.CreateTopics(ctx, o.partitions, topics...); err != nil {
			broker.Close()
			return fmt.Errorf("create topics: %w", err)
		}
		kafkaEnv = map[string][]string{
			commandService: {"KAFKA_BROKERS=" + broker.Addr()},
			queryService:   {"KAFKA_BROKERS=" + broker.Addr()},
		}
		if stackID != "" {
			if err := recordStackID(ctx, o, stackID); err != nil {
				broker.Close()
				return err
			}
			log.Info("dev data: new stack id recorded", "stack_id", stackID, "data", o.dataDir, "databases", strings.Join(dbNames, ","))
		}
	}
	defer broker.Close()

	mongo, err := mongowire.Start(ctx, mongowire.Options{Addr: o.mongoAddr, Handler: "postgresql", PostgreSQLURL: ferretURL})
	if err != nil {
		return fmt.Errorf("start embedded MongoDB-wire server: %w", err)
	}
	defer func() {
		if err := mongo.Close(); err != nil {
			log.Warn("close MongoDB-wire server", "err", err)
		}
	}()

	common := []string{"LOG_LEVEL=" + o.logLevel, "KAFKA_TOPIC_PARTITIONS=" + fmt.Sprint(o.partitions)}
	services := []*exec.Cmd{
		child(o.commandBin, slices.Concat(common, kafkaEnv[commandService], []string{"HTTP_ADDR=" + o.commandAddr, "METRICS_ADDR=" + o.commandMetrics, "DATABASE_URL=" + dbURL})),
		child(o.queryBin, slices.Concat(common, kafkaEnv[queryService], []string{"HTTP_ADDR=" + o.queryAddr, "METRICS_ADDR=" + o.queryMetrics, "MONGO_URI=" + mongo.URI()})),
	}
	exited := make(chan error, len(services))
	for _, c := range services {
		if err := c.Start(); err != nil {
			stopAll(services)
			return fmt.Errorf("start %s: %w", c.Path, err)
		}
		go func(c *exec.Cmd) { exited <- describeExit(c, c.Wait()) }(c)
	}

	// FerretDB looks documents up by _id with a full scan unless this index
	// workaround exists (see libs/devinfra/mongowire); collections appear as
	// the query service creates them, so keep ensuring it.
	go keepIDIndexes(ctx, mongo, log)

	mode := "embedded defaults"
	if o.secure {
		mode = "embedded defaults, Kafka secured"
	}
	fmt.Printf(`
PropAlpes Companies is running (%s):
  command API (writer)  http://%s       e.g. curl -s http://%s/health
  query API   (reader)  http://%s       e.g. curl -s http://%s/v1/estadisticas
  OpenAPI               http://%s/openapi.json  http://%s/openapi.json
  Metrics               http://%s/metrics  http://%s/metrics
  Kafka (kfake)         %s   topics: %s
  MongoDB wire          %s
  PostgreSQL            %s
%sPress Ctrl-C to stop.
`, mode, o.commandAddr, o.commandAddr, o.queryAddr, o.queryAddr, o.commandAddr, o.queryAddr, o.commandMetrics, o.queryMetrics,
		broker.Addr(), strings.Join(topics, ", "), mongo.URI(), redact(dbURL), secured.banner())

	select {
	case <-ctx.Done():
		log.Info("stopping")
		stopAll(services)
		for range services {
			<-exited
		}
		return nil
	case err := <-exited:
		stopAll(services)
		for range len(services) - 1 {
			<-exited
		}
		return fmt.Errorf("a service stopped unexpectedly: %w", err)
	}
}

func child(bin string, env []string) *exec.Cmd {
	c := exec.Command(bin)
	c.Env = append(os.Environ(), env...)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	// Own process group: the terminal's Ctrl-C reaches devstack only, which
	// then stops the services in order.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return c
}

// stopAll sends SIGTERM to every running service and SIGKILL to those still
// running after 20 s.
func stopAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		if c.Process != nil {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
	}
	time.AfterFunc(20*time.Second, func() {
		for _, c := range cmds {
			if c.Process != nil {
				_ = c.Process.Kill()
			}
		}
	})
}

func describeExit(c *exec.Cmd, err error) error {
	if err == nil {
		return fmt.Errorf("%s exited", filepath.Base(c.Path))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s: %w", filepath.Base(c.Path), ee)
	}
	return err
}

func keepIDIndexes(ctx context.Context, m *mongowire.Server, log *slog.Logger) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if err := m.EnsureIDIndexes(ctx); err != nil && ctx.Err() == nil {
			log.Debug("ensure _id indexes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
