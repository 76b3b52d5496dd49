package buildinfo_test

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/propalpes/companias/libs/telemetry/buildinfo"
)

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8", Path: "example.com/svc/cmd/svcd",
		Main: debug.Module{Path: "example.com/svc", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Path: "example.com/svc/cmd/svcd", Main: debug.Module{Path: "example.com/svc", Version: "(devel)"}}
	tests := []struct {
		name              string
		bi                *debug.BuildInfo
		version, revision string
		want              buildinfo.Info
	}{
		{name: "vcs stamped by the go command", bi: vcs, want: buildinfo.Info{
			Path: "example.com/svc/cmd/svcd", Module: "example.com/svc", Version: "v1.4.0", Revision: "0123abcd",
			Time: "2026-12-01T10:00:00Z", Modified: "true", GoVersion: "go1.26.8"}},
		{name: "linker stamp: its version wins, the vcs revision wins", bi: vcs, version: "v1.5.0-rc1", revision: "ffff", want: buildinfo.Info{
			Path: "example.com/svc/cmd/svcd", Module: "example.com/svc", Version: "v1.5.0-rc1", Revision: "0123abcd",
			Time: "2026-12-01T10:00:00Z", Modified: "true", GoVersion: "go1.26.8"}},
		{name: "-buildvcs=false, no stamp", bi: devel, want: buildinfo.Info{
			Path: "example.com/svc/cmd/svcd", Module: "example.com/svc", Version: "(devel)", Revision: "unknown",
			Time: "unknown", Modified: "unknown", GoVersion: "go1.26.8"}},
		{name: "-buildvcs=false, linker stamp", bi: devel, version: "v1.5.0", revision: "abc", want: buildinfo.Info{
			Path: "example.com/svc/cmd/svcd", Module: "example.com/svc", Version: "v1.5.0", Revision: "abc",
			Time: "unknown", Modified: "unknown", GoVersion: "go1.26.8"}},
		{name: "no build information", bi: nil, want: buildinfo.Info{
			Path: "unknown", Module: "unknown", Version: "unknown", Revision: "unknown",
			Time: "unknown", Modified: "unknown", GoVersion: "unknown"}},
	}
	for _, tt := range tests {
		if got := buildinfo.FromBuildInfo(tt.bi, tt.version, tt.revision); got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestReadInTest(t *testing.T) {
	t.Parallel()
	i := buildinfo.Read()
	if !strings.HasPrefix(i.GoVersion, "go") {
		t.Errorf("Read().GoVersion = %q, want the toolchain's", i.GoVersion)
	}
	for _, f := range []string{i.Path, i.Module, i.Version, i.Revision, i.Time, i.Modified} {
		if f == "" {
			t.Errorf("Read() = %+v, has an empty field", i)
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	i := buildinfo.Info{Path: "p", Module: "example.com/svc", Version: "v1", Revision: "abc", Time: "2026-12-01T10:00:00Z",
		Modified: "true", GoVersion: "go1.26.8"}
	var human bytes.Buffer
	if err := i.Write(&human, "svc", false); err != nil {
		t.Fatal(err)
	}
	if got, want := human.String(), "svc: example.com/svc v1 (revision abc, modified, committed 2026-12-01T10:00:00Z, built with go1.26.8)\n"; got != want {
		t.Errorf("human = %q, want %q", got, want)
	}
	bare := buildinfo.FromBuildInfo(nil, "", "")
	if got, want := bare.String(), "unknown unknown (revision unknown, built with unknown)"; got != want {
		t.Errorf("String without build information = %q, want %q", got, want)
	}
	var js bytes.Buffer
	if err := i.Write(&js, "svc", true); err != nil {
		t.Fatal(err)
	}
	var back buildinfo.Info
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back != i {
		t.Errorf("json %s decodes to %+v, %v; want %+v", js.String(), back, err, i)
	}
	if !strings.Contains(js.String(), `"revision":"abc"`) {
		t.Errorf("json %s lacks the revision", js.String())
	}
}

func TestGauge(t *testing.T) {
	t.Parallel()
	i := buildinfo.Info{Version: "v1", Revision: "abc", GoVersion: "go1.26.8"}
	reg := prometheus.NewRegistry()
	if err := reg.Register(i.Gauge("companias_test_build_info")); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "companias_test_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one companias_test_build_info series", mfs)
	}
	m := mfs[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": "v1", "revision": "abc", "goversion": "go1.26.8"}
	if m.GetGauge().GetValue() != 1 || len(labels) != len(want) {
		t.Errorf("series %v = %v, want 1 with labels %v", labels, m.GetGauge().GetValue(), want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
}
