// Package service wires the query service (the reader) from its
// configuration and runs it: the topics and the MongoDB view store
// (waited for at start), the live projection consumer and the rebuild
// host, the HTTP API behind a start-up handler, and the admin listeners.
// It is the one place that knows every adapter and port, as the command
// service's package service is; cmd/queryd keeps only the command line.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
	"github.com/propalpes/companias/libs/telemetry/admin"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/libs/telemetry/tracing"
	"github.com/propalpes/companias/services/query/internal/config"
	"github.com/propalpes/companias/services/query/internal/metrics"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/ports/httpapi"
)

// Run runs the HTTP server, the projection consumer and the rebuild host
// until ctx is cancelled or one of them fails. The HTTP server listens
// first: while Kafka or MongoDB cannot be reached, Run waits for them
// (retrying with backoff, logging what it waits for), /healthz answers 200
// and /readyz 503; a cancellation then stops it cleanly. Shutdown order: the
// HTTP server drains (bounded by ShutdownTimeout); then the consumer and the
// rebuild host stop, closing their Kafka readers and writers on the way out
// (bounded by ShutdownTimeout too); then the Mongo client disconnects.
// auth verifies the API's bearer tokens; nil leaves the API open.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, auth httpapi.Authenticator) (err error) {
	tracer, stopTracing, err := tracing.StartLogged(tracing.Config{
		Endpoint: cfg.Tracing.Endpoint, ServiceName: cfg.Tracing.ServiceName, SampleRatio: cfg.Tracing.SampleRatio,
	}, cfg.ShutdownTimeout, log)
	if err != nil {
		return err
	}
	defer stopTracing() // last: after the consumer stopped making spans

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
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
	srv := cfg.HTTP.Server(handler, log)

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
			log.Info("query service stopped while waiting for its dependencies", "err", httpErr)
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
	log.Info("query service stopped", "err", err)
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

// serveHTTP serves the API on ln until ctx is cancelled, then drains it
// within timeout (see envconfig.Serve).
func serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration, log *slog.Logger) error {
	log.Info("http api listening", "addr", ln.Addr().String())
	if err := envconfig.Serve(ctx, srv, ln, timeout); err != nil {
		return err
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
