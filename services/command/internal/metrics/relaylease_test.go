package metrics_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/propalpes/companias/services/command/internal/metrics"
)

// fakeLease is a LeaseSource whose epoch is set by the test; it leads
// while the epoch is positive, as the relay does.
type fakeLease struct{ epoch atomic.Int64 }

func (f *fakeLease) Leading() bool { return f.epoch.Load() > 0 }
func (f *fakeLease) Epoch() int64  { return f.epoch.Load() }

func TestRelayLease(t *testing.T) {
	t.Parallel()
	src := &fakeLease{}
	reg := prometheus.NewRegistry()
	if err := reg.Register(metrics.NewRelayLease(src)); err != nil {
		t.Fatal(err)
	}
	const head = `
# HELP companias_relay_leader 1 while this process's outbox relay holds the lease and publishes, 0 while it stands by; summed over the writer replicas, 1 in steady state.
# TYPE companias_relay_leader gauge
# HELP companias_relay_lease_epoch Epoch of the outbox relay lease this process holds (each new leader's is higher), 0 while it does not lead.
# TYPE companias_relay_lease_epoch gauge
`
	for _, c := range []struct {
		epoch          int64
		leader, valEpo string
	}{
		{0, "0", "0"},   // standing by
		{7, "1", "7"},   // took the lease
		{0, "0", "0"},   // lost it
		{12, "1", "12"}, // took it again, at a later epoch
	} {
		src.epoch.Store(c.epoch)
		want := head + "companias_relay_leader " + c.leader + "\ncompanias_relay_lease_epoch " + c.valEpo + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
			t.Errorf("epoch %d: %v", c.epoch, err)
		}
	}
}

func TestRelayLeaseRefusesADuplicateRegistration(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if err := reg.Register(metrics.NewRelayLease(&fakeLease{})); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(metrics.NewRelayLease(&fakeLease{})); err == nil {
		t.Fatal("registering a second RelayLease = nil error")
	}
}
