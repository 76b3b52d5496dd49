// Command queryd is the query service of the companias bounded context
// (binary companias-query): it projects the integration events of Kafka into
// MongoDB views and serves them over HTTP.
//
// Usage:
//
//	companias-query [serve]        run the HTTP API and the projection consumer (default)
//	companias-query rebuild        rebuild the views from the start of the events topic,
//	                               showing progress on stderr; exits 0 once the new
//	                               views are switched in
//	companias-query version [-json] print the build information
//	companias-query help           print the usage
//
// Configuration comes from the environment only (see package config).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/libs/telemetry/admin"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/libs/telemetry/logs"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/query/internal/config"
	"github.com/propalpes/companias/services/query/internal/consumer"
	"github.com/propalpes/companias/services/query/internal/metrics"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	gin.SetMode(gin.ReleaseMode)
	code := cli.Main(ctx, program(os.Getenv), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// binary is the name of the program in messages and in its usage.
const binary = "companias-query"

const usage = `Usage: companias-query [command]

Commands:
  serve            run the HTTP API and the projection consumer (default)
  rebuild          rebuild the views from the events topic, with progress on stderr
  version [-json]  print the build information (module version, VCS revision, Go version)
  help             print this help ("COMMAND --help" too); help reads no configuration

Configuration is read from the environment: HTTP_ADDR, KAFKA_BROKERS,
KAFKA_EVENTS_TOPIC, KAFKA_EVENTS_DLQ_TOPIC, KAFKA_GROUP_ID,
KAFKA_TOPIC_PARTITIONS, MONGO_URI, MONGO_DATABASE, SHUTDOWN_TIMEOUT, LOG_LEVEL,
AUTH_MODE (none, hs256 or jwks), OTEL_EXPORTER_OTLP_ENDPOINT (tracing, off
unless set) and more (see internal/config).
Exit codes: 0 success, 1 failure, 2 usage error.
`

// program is the companias-query binary: its subcommands over the
// environment read through getenv.
func program(getenv func(string) string) cli.Program {
	// withConfig runs a command that takes no arguments with the
	// configuration and the service's logger.
	withConfig := func(name string, cmd func(ctx context.Context, cfg config.Config, log *slog.Logger, stderr io.Writer) error) cli.Func {
		return func(ctx context.Context, args []string, _, stderr io.Writer) error {
			if err := cli.NoArgs(name, args); err != nil {
				return err
			}
			cfg, err := config.Load(getenv)
			if err != nil {
				return err // "invalid configuration: …", every problem listed
			}
			log := logs.New(stderr, cfg.LogLevel, binary)
			for _, w := range cfg.Kafka.Warnings() {
				log.Warn("weak Kafka security setting", "warning", w)
			}
			return cmd(ctx, cfg, log, stderr)
		}
	}
	return cli.Program{
		Name: binary, Usage: usage, Default: "serve",
		Commands: map[string]cli.Func{
			"serve": withConfig("serve", func(ctx context.Context, cfg config.Config, log *slog.Logger, _ io.Writer) error {
				return serve(ctx, cfg, log)
			}),
			"rebuild": withConfig("rebuild", runRebuild),
			"version": cli.Version(func(w io.Writer, asJSON bool) error {
				return buildinfo.Read().Write(w, binary, asJSON)
			}),
		},
	}
}

// run is the whole program: it returns when the command is done or ctx is
// cancelled, and reports failure as an error (see cli.ExitCode). A clean
// shutdown after cancellation returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return program(getenv).Run(ctx, args, stdout, stderr)
}

// serve runs the HTTP server, the projection consumer and the rebuild host
// until ctx is cancelled or one of them fails. The HTTP server listens
// first: while Kafka or MongoDB cannot be reached, serve waits for them
// (retrying with backoff, logging what it waits for), /healthz answers 200
// and /readyz 503; a cancellation then stops it cleanly. Shutdown order: the
// HTTP server drains (bounded by ShutdownTimeout); then the consumer and the
// rebuild host stop, closing their Kafka readers and writers on the way out
// (bounded by ShutdownTimeout too); then the Mongo client disconnects.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) (err error) {
	auth, err := httpkit.NewAuthenticator(cfg.Auth, log, httpapi.AuthOffWarning, httpapi.AuthScopeRead, httpapi.AuthScopeAdmin)
	if err != nil {
		return err
	}
	tracer, stopTracing, err := tracing.StartLogged(tracing.Config{
		Endpoint: cfg.Tracing.Endpoint, ServiceName: cfg.Tracing.ServiceName, SampleRatio: cfg.Tracing.SampleRatio,
	}, cfg.ShutdownTimeout, log)
	if err != nil {
		return err
	}
	defer stopTracing() // last: after the consumer stopped making spans

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	// The service's own registry, served at GET /metrics on the admin
	// listener (METRICS_ADDR), never on the API port: no global state. It
	// answers from start-up on, with the build information; the other
	// collectors join it once built.
	reg := prometheus.NewRegistry()
	if err := reg.Register(buildinfo.Read().Gauge("companias_query_build_info")); err != nil {
		_ = ln.Close()
		return fmt.Errorf("register metrics: %w", err)
	}
	adm, err := admin.Open(cfg.Admin.MetricsAddr, metrics.Handler(reg, log), cfg.Admin.PprofAddr, cfg.Admin.PprofRemote, cfg.ShutdownTimeout, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	starting := newStartupState()
	handler := &swapHandler{}
	handler.set(startupHandler(starting))
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// The workers run on a context of their own, cancelled only once the
	// HTTP server has drained, so that in-flight reads (and read-your-writes
	// waits) still see the projection advance.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	// httpCtx stops the HTTP server when start-up fails after it listens.
	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	g, gctx := errgroup.WithContext(httpCtx)
	g.Go(func() error {
		defer stopWork()
		return serveHTTP(gctx, srv, ln, cfg.ShutdownTimeout, log)
	})
	adm.Go(workCtx, g, log)

	inf, err := waitInfra(gctx, cfg, log, starting)
	if err != nil {
		stopHTTP()
		httpErr := g.Wait()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			log.Info("query service stopped while waiting for its dependencies", "error", httpErr)
			return httpErr // a stop requested before the dependencies came: clean
		}
		return errors.Join(err, httpErr)
	}
	defer func() { err = errors.Join(err, inf.close(cfg.ShutdownTimeout)) }()

	api, proj, err := buildAPI(cfg, inf, reg, log, auth, tracer)
	if err != nil {
		stopHTTP()
		return errors.Join(err, g.Wait())
	}
	handler.set(api)
	g.Go(func() error { return runBounded(workCtx, proj.run, cfg.ShutdownTimeout) })
	log.Info("query service started",
		"http_addr", ln.Addr().String(),
		"kafka_brokers", cfg.Kafka.Brokers,
		"events_topic", cfg.KafkaEventsTopic,
		"group_id", cfg.KafkaGroupID,
		"mongo_database", cfg.MongoDatabase)
	err = g.Wait()
	log.Info("query service stopped", "error", err)
	return err
}

// The live consumer says which views each batch wrote, so a read-your-writes
// wait is woken only by the batches that wrote its id.
var _ httpapi.IDChangeNotifier = (*consumer.Consumer)(nil)

// buildAPI registers the service's metrics on reg and builds the
// projection (live consumer and rebuild host) and the HTTP API over inf.
func buildAPI(cfg config.Config, inf *infra, reg *prometheus.Registry, log *slog.Logger, auth httpapi.Authenticator, tracer trace.Tracer) (http.Handler, *projection, error) {
	m, err := metrics.New(reg)
	if err != nil {
		return nil, nil, fmt.Errorf("register metrics: %w", err)
	}
	proj, err := newProjection(cfg, inf, log, m, tracer)
	if err != nil {
		return nil, nil, err
	}
	if err := registerCollectors(reg, proj); err != nil {
		return nil, nil, fmt.Errorf("register metrics: %w", err)
	}
	api, err := httpapi.New(httpapi.Deps{
		Views:          inf.store,
		Store:          inf.store,
		Projection:     proj,
		Rebuild:        proj.rebuild,
		Changes:        proj.live,
		Logger:         log,
		ObserveRequest: m.ObserveRequest,
		Auth:           auth,
	}, httpapi.Options{DefaultWait: cfg.ReadWaitDefault, MaxWait: cfg.ReadWaitMax,
		MaxWaits: cfg.ReadWaitMaxWaits, QueryTimeout: cfg.MongoQueryTimeout})
	if err != nil {
		return nil, nil, fmt.Errorf("build http api: %w", err)
	}
	return api, proj, nil
}

// registerCollectors registers on reg the Go runtime and process collectors
// and the collectors read at scrape time: the live consumer's lag for the
// partitions it owns (grouplag, as the command service's intake) and its
// running counters, and the rebuild progress.
func registerCollectors(reg prometheus.Registerer, p *projection) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		p.lag,
		metrics.NewCounters(p.live),
		metrics.NewRebuild(p.rebuild),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// serveHTTP serves on ln until ctx is cancelled, then shuts the server down
// gracefully within timeout. A clean shutdown returns nil.
func serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("http api listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("http server stopped")
	return nil
}

// runBounded runs worker until it returns; once ctx is cancelled it waits
// at most timeout for the worker to stop (kafka-go's group Close can hang
// when a broker is gone), so that shutdown always ends.
func runBounded(ctx context.Context, worker func(context.Context) error, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- worker(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		return fmt.Errorf("projection did not stop within %s", timeout)
	}
}

// runRebuild rebuilds the views from the CLI and reports progress on w
// until the new generation is switched in.
func runRebuild(ctx context.Context, cfg config.Config, log *slog.Logger, w io.Writer) (err error) {
	inf, err := openInfra(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, inf.close(cfg.ShutdownTimeout)) }()

	return runCLIRebuild(ctx, cfg, inf, log, newProgressReporter(w, isTerminal(w)))
}
