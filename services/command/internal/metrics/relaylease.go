package metrics

import "github.com/prometheus/client_golang/prometheus"

// LeaseSource reports the outbox relay's lease in this process;
// *outbox.Relay implements it. Neither method may block.
type LeaseSource interface {
	// Leading reports whether this process's relay holds the lease and
	// may publish.
	Leading() bool
	// Epoch returns the epoch of the lease held while Leading, else 0.
	Epoch() int64
}

// RelayLease is a collector of the outbox relay's lease in this process,
// read at each scrape:
//
//	companias_relay_leader       1 while this process's relay leads, else 0
//	companias_relay_lease_epoch  epoch of the lease it holds (0 when standing by)
//
// One writer replica at a time leads, so across the replicas
// sum(companias_relay_leader) is 1 in steady state: 0 means that nobody
// relays the outbox (the backlog grows), and a change of
// max(companias_relay_lease_epoch) marks a takeover.
type RelayLease struct {
	src           LeaseSource
	leader, epoch *prometheus.Desc
}

// NewRelayLease returns a RelayLease collector of src. Register it with the
// service's registry once the relay is built.
func NewRelayLease(src LeaseSource) *RelayLease {
	return &RelayLease{
		src: src,
		leader: prometheus.NewDesc("companias_relay_leader",
			"1 while this process's outbox relay holds the lease and publishes, 0 while it stands by; summed over the writer replicas, 1 in steady state.", nil, nil),
		epoch: prometheus.NewDesc("companias_relay_lease_epoch",
			"Epoch of the outbox relay lease this process holds (each new leader's is higher), 0 while it does not lead.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (r *RelayLease) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.leader
	ch <- r.epoch
}

// Collect implements prometheus.Collector. The two values are read one
// after the other: across a change of leadership in between, a scrape may
// show a leader with epoch 0 or a standby with its last epoch.
func (r *RelayLease) Collect(ch chan<- prometheus.Metric) {
	leader := 0.0
	if r.src.Leading() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(r.leader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(r.epoch, prometheus.GaugeValue, float64(r.src.Epoch()))
}
