package envconfig

import (
	"fmt"
	"net"
	"strings"
)

// Admin is where a service serves its operator endpoints, away from its
// public API port: Prometheus metrics and, when asked, the Go profiler.
type Admin struct {
	// MetricsAddr is the listen address of GET /metrics (METRICS_ADDR);
	// "" when METRICS_ADDR is "off" (no metrics listener).
	MetricsAddr string
	// PprofAddr is the listen address of the Go profiler (PPROF_ADDR); ""
	// (unset) serves none.
	PprofAddr string
	// PprofRemote is PPROF_ALLOW_REMOTE: only with it may PprofAddr be
	// anything but a loopback address. Log it at Warn.
	PprofRemote bool
}

// MetricsOff is the METRICS_ADDR value that turns the metrics listener
// off (a blank variable means its default, as for every variable).
const MetricsOff = "off"

// Admin reads METRICS_ADDR (host:port, or "off"; give it a loopback
// default), PPROF_ADDR (host:port; unset: off) and PPROF_ALLOW_REMOTE (a
// bool, default false). A PPROF_ADDR whose host is not a loopback address
// (an empty host, 0.0.0.0, a routable IP or a name other than localhost)
// is a problem unless PPROF_ALLOW_REMOTE is true: profiles expose the
// program's memory and cost CPU.
func (p *Parser) Admin() Admin {
	var a Admin
	if v := p.Raw("METRICS_ADDR"); !strings.EqualFold(v, MetricsOff) {
		a.MetricsAddr = p.Addr("METRICS_ADDR")
	}
	if p.IsSet("PPROF_ALLOW_REMOTE") {
		a.PprofRemote = p.Bool("PPROF_ALLOW_REMOTE")
	}
	if p.IsSet("PPROF_ADDR") {
		a.PprofAddr = p.Addr("PPROF_ADDR")
		if host, _, err := net.SplitHostPort(a.PprofAddr); err == nil && !a.PprofRemote && !Loopback(host) {
			p.Fail("PPROF_ADDR", fmt.Sprintf("%q is not a loopback address; set PPROF_ALLOW_REMOTE=true to serve the profiler beyond this host", a.PprofAddr))
		}
	}
	return a
}

// Loopback reports whether host (of a listen address) binds to loopback
// only: "localhost" or a loopback IP. An empty host binds every interface.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
