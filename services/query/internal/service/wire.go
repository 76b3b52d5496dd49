package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/propalpes/companias/libs/kafkakit/grouplag"
	"github.com/propalpes/companias/services/query/internal/config"
	"github.com/propalpes/companias/services/query/internal/metrics"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/rebuild"
	"github.com/propalpes/companias/services/query/internal/view"
)

// consumerConfig is the consumer configuration shared by the live
// projection and the rebuild's replay (whose GroupID is a prefix); its
// Dialer is built by kafkakit from cfg.Kafka (TLS, SASL).
func consumerConfig(cfg config.Config, log *slog.Logger) (consumer.Config, error) {
	dialer, err := cfg.Kafka.Dialer()
	if err != nil {
		return consumer.Config{}, fmt.Errorf("build kafka dialer: %w", err)
	}
	return consumer.Config{
		Brokers:           cfg.Kafka.Brokers,
		Dialer:            dialer,
		Topic:             cfg.KafkaEventsTopic,
		GroupID:           cfg.KafkaGroupID,
		DLQTopic:          cfg.KafkaEventsDLQTopic,
		BatchSize:         cfg.ProjectionBatchSize,
		Linger:            cfg.ProjectionLinger,
		WriteTimeout:      cfg.ProjectionWriteTimeout,
		SessionTimeout:    cfg.KafkaMembership.SessionTimeout,
		HeartbeatInterval: cfg.KafkaMembership.HeartbeatInterval,
		RebalanceTimeout:  cfg.KafkaMembership.RebalanceTimeout,
		Logger:            log,
	}, nil
}

// rebuildConfig is the configuration of a rebuilder: the replay consumer's
// and a kafkakit Transport for its own requests.
func rebuildConfig(cfg config.Config, log *slog.Logger) (rebuild.Config, error) {
	cc, err := consumerConfig(cfg, log)
	if err != nil {
		return rebuild.Config{}, err
	}
	tr, err := cfg.Kafka.Transport()
	if err != nil {
		return rebuild.Config{}, fmt.Errorf("build kafka transport: %w", err)
	}
	return rebuild.Config{Consumer: cc, Transport: tr}, nil
}

// projection is the read-model side of serve: the live consumer, the
// rebuild service and the live consumer's lag collector. The workers create
// and close their own Kafka clients inside their Run; run closes the
// collector's idle connections when they stopped.
type projection struct {
	live    *consumer.Consumer
	rebuild *rebuild.Rebuilder
	lag     *grouplag.Collector
}

// newProjection builds the live consumer, reporting applied events, dead
// letters and version gaps to m and its batches to tracer (nil: no spans), and the rebuild
// service (whose replay m and tracer do not see).
func newProjection(cfg config.Config, inf *infra, log *slog.Logger, m *metrics.Metrics, tracer trace.Tracer) (*projection, error) {
	liveCfg, err := consumerConfig(cfg, log.With("component", "consumer"))
	if err != nil {
		return nil, err
	}
	liveCfg.OnApplied = m.Applied
	liveCfg.OnDeadLetter = m.DeadLettered
	liveCfg.OnVersionGap = m.VersionGap
	liveCfg.Tracer = tracer
	live, err := consumer.New(liveCfg,
		consumer.WriterFunc(inf.store.WriteViews))
	if err != nil {
		return nil, fmt.Errorf("build consumer: %w", err)
	}
	rbCfg, err := rebuildConfig(cfg, log.With("component", "rebuild"))
	if err != nil {
		return nil, err
	}
	rb, err := rebuild.New(rbCfg, inf.store)
	if err != nil {
		return nil, fmt.Errorf("build rebuilder: %w", err)
	}
	// The lag of the partitions the live consumer owns (not the replay's):
	// summed over the replicas, the group's lag.
	lag, err := grouplag.New(live, cfg.Kafka, grouplag.Options{Logger: log.With("component", "lag")})
	if err != nil {
		return nil, fmt.Errorf("build lag collector: %w", err)
	}
	return &projection{live: live, rebuild: rb, lag: lag}, nil
}

// run runs the live consumer and hosts rebuilds until ctx is cancelled.
// Both return nil on a clean cancel; a worker that stops by itself while
// ctx is live is an error.
func (p *projection) run(ctx context.Context) error {
	defer p.lag.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	for name, run := range map[string]func(context.Context) error{"consumer": p.live.Run, "rebuilder": p.rebuild.Run} {
		go func() {
			err := run(ctx)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				cancel() // stop the other worker too
				err = fmt.Errorf("%s: %w", name, err)
			}
			errc <- err
		}()
	}
	// Wait for both, so that nothing writes to the store after run returns.
	return errors.Join(<-errc, <-errc)
}

// Status lists the live consumer's partitions followed, while a rebuild
// runs on this replica, by the replay's (State view.StateRebuilding).
func (p *projection) Status() []view.PartitionStatus {
	return append(p.live.Status(), p.rebuild.Status()...)
}

// Joined reports whether the live consumer is a member of its group.
func (p *projection) Joined() bool { return p.live.Joined() }

// Rebuild rebuilds the views from the start of the events topic in the
// caller's goroutine, reporting progress to onProgress, and returns the
// last progress once the new generation is switched in; a rebuild that
// ends in any other state is an error. It fails at once when Kafka or
// MongoDB cannot be reached.
func Rebuild(ctx context.Context, cfg config.Config, log *slog.Logger, onProgress func(view.RebuildProgress)) (_ view.RebuildProgress, err error) {
	inf, err := openInfra(ctx, cfg, log)
	if err != nil {
		return view.RebuildProgress{}, err
	}
	defer func() { err = errors.Join(err, inf.close(cfg.ShutdownTimeout)) }()
	rbCfg, err := rebuildConfig(cfg, log.With("component", "rebuild"))
	if err != nil {
		return view.RebuildProgress{}, err
	}
	rb, err := rebuild.New(rbCfg, inf.store)
	if err != nil {
		return view.RebuildProgress{}, fmt.Errorf("build rebuilder: %w", err)
	}
	p, err := rb.Rebuild(ctx, onProgress)
	if err != nil {
		return p, fmt.Errorf("rebuild: %w", err)
	}
	if p.State != rebuild.StateDone {
		return p, fmt.Errorf("rebuild ended in state %s: %s", p.State, p.Error)
	}
	return p, nil
}
