package service

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/propalpes/companias/libs/telemetry/buildinfo"
	"github.com/propalpes/companias/services/command/internal/adapters/outbox"
	"github.com/propalpes/companias/services/command/internal/metrics"
)

// newMetrics registers on reg the Go runtime and process collectors, the
// build information (companias_command_build_info), the service's event
// metrics (returned, for the hooks of the HTTP router, the relay and the
// intake) and the outbox backlog collector (returned, for its Run, which
// reads db every metrics.DefaultBacklogInterval).
func newMetrics(reg prometheus.Registerer, build buildinfo.Info, db metrics.Querier, log *slog.Logger) (*metrics.Metrics, *metrics.Backlog, error) {
	backlog := metrics.NewBacklog(db, metrics.BacklogOptions{Logger: log})
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build.Gauge("companias_command_build_info"),
		backlog,
	} {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	m, err := metrics.New(reg)
	if err != nil {
		return nil, nil, err
	}
	m.InitParkReasons(outbox.ParkReasons())
	return m, backlog, nil
}
