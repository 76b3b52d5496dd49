// Package buildinfo says what a binary was built from: its module and
// version, the VCS revision and time, whether the tree was modified, and the
// Go version, read from the build information the Go linker embeds
// (runtime/debug.ReadBuildInfo). It prints them for the version commands and
// exposes them as a *_build_info gauge.
//
// The go command stamps VCS information only when it builds inside a git
// checkout with -buildvcs on: not from a git worktree (.git is a file
// there), not with GOFLAGS=-buildvcs=false, and not in the Docker builds
// (.dockerignore drops .git). The Makefile and the Dockerfiles therefore
// stamp the version and revision with the linker:
//
//	-ldflags "-X github.com/propalpes/companias/libs/telemetry/buildinfo.version=v1.2.3
//	          -X github.com/propalpes/companias/libs/telemetry/buildinfo.revision=<git sha>"
//
// Whatever is known neither way reads "unknown".
package buildinfo

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Unknown stands for a field the binary does not know.
const Unknown = "unknown"

// Stamped by the linker (-X), since -X can only set package string
// variables; empty when the build did not stamp them. Read only by Read.
var (
	version  string
	revision string
)

// Info is the build information of a binary. Every field is set: a value
// the build did not record is Unknown.
type Info struct {
	// Path is the main package's import path.
	Path string `json:"path"`
	// Module is the main module's path.
	Module string `json:"module"`
	// Version is the version stamped with -ldflags -X, else the main
	// module's version when the go command knew one (from a VCS tag, or
	// "(devel)" for a local build).
	Version string `json:"version"`
	// Revision is the VCS revision (vcs.revision), else the one stamped
	// with -ldflags -X.
	Revision string `json:"revision"`
	// Time is the commit time of Revision (vcs.time, RFC 3339).
	Time string `json:"vcs_time"`
	// Modified is "true" when the tree had uncommitted changes, "false"
	// when it had none (vcs.modified).
	Modified string `json:"vcs_modified"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Read returns the build information of the running binary.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return FromBuildInfo(bi, version, revision)
}

// FromBuildInfo builds an Info from bi (nil when the binary has none) and
// the linker-stamped version and revision ("" when not stamped). A stamped
// version wins over the module's; a VCS revision wins over the stamped one,
// since the go command read it from the tree it built.
func FromBuildInfo(bi *debug.BuildInfo, stampedVersion, stampedRevision string) Info {
	i := Info{Version: stampedVersion, Revision: stampedRevision}
	if bi != nil {
		i.Path, i.Module, i.GoVersion = bi.Path, bi.Main.Path, bi.GoVersion
		if i.Version == "" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.time":
				i.Time = s.Value
			case "vcs.modified":
				i.Modified = s.Value
			}
		}
	}
	for _, f := range []*string{&i.Path, &i.Module, &i.Version, &i.Revision, &i.Time, &i.Modified, &i.GoVersion} {
		if *f == "" {
			*f = Unknown
		}
	}
	return i
}

// String is the human line of the version commands:
// "<module> <version> (revision <rev>[, modified][, committed <vcs time>],
// built with <go version>)"; the parts the build did not record are left
// out, but for the revision, which reads Unknown.
func (i Info) String() string {
	rev := i.Revision
	if i.Modified == "true" {
		rev += ", modified"
	}
	if i.Time != Unknown {
		rev += ", committed " + i.Time
	}
	return fmt.Sprintf("%s %s (revision %s, built with %s)", i.Module, i.Version, rev, i.GoVersion)
}

// Write prints i on w for a version command: as one JSON object when
// asJSON, else as the String line prefixed by name (the binary's name).
func (i Info) Write(w io.Writer, name string, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(i)
	}
	_, err := fmt.Fprintf(w, "%s: %s\n", name, i)
	return err
}

// Gauge returns the gauge name (companias_command_build_info,
// companias_query_build_info), always 1, with the labels version, revision
// and goversion: join it to other series to see which build runs where.
// Register it on the service's registry.
func (i Info) Gauge(name string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: name,
		Help: "Always 1; the labels say which build of the service runs (version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{
			"version":   i.Version,
			"revision":  i.Revision,
			"goversion": i.GoVersion,
		},
	})
	g.Set(1)
	return g
}
