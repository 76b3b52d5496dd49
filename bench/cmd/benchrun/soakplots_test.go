package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSeries writes a synthetic soak series of n samples (the format of
// chaosrun's soakseries.go) and returns its path. Lag is unknown in the
// first sample and the freshness window of the third has no probe.
func writeSeries(t *testing.T, n int) string {
	t.Helper()
	type point struct {
		AtSec      float64            `json:"t_s"`
		Lag        *float64           `json:"lag"`
		FreshP50Ms *float64           `json:"fresh_p50_ms"`
		FreshP95Ms *float64           `json:"fresh_p95_ms"`
		FreshMaxMs *float64           `json:"fresh_max_ms"`
		FreshLost  int64              `json:"fresh_lost"`
		RSSMiB     map[string]float64 `json:"rss_mib"`
		Goroutines map[string]float64 `json:"goroutines"`
	}
	f := func(v float64) *float64 { return &v }
	var pts []point
	for i := range n {
		p := point{AtSec: float64(i * 10), Lag: f(float64(i % 3)), FreshP50Ms: f(20 + float64(i)), FreshP95Ms: f(40 + float64(i)), FreshMaxMs: f(90),
			RSSMiB:     map[string]float64{"kafka": 120 + float64(i), "commandd-1": 40, "queryd-1": 35 + float64(i%2)},
			Goroutines: map[string]float64{"commandd-1": 60, "queryd-1": 80}}
		if i == 0 {
			p.Lag = nil
		}
		if i == 2 {
			p.FreshP50Ms, p.FreshP95Ms, p.FreshMaxMs = nil, nil, nil
		}
		if i == 4 {
			delete(p.RSSMiB, "queryd-1") // a process restarted: unreadable once
		}
		pts = append(pts, p)
	}
	b, err := json.Marshal(map[string]any{"date": "2026-12-07T00:00:00Z", "machine": "test, 2 CPUs", "rate": 25, "every_s": 10,
		"processes": []string{"kafka", "commandd-1", "queryd-1"}, "services": []string{"commandd-1", "queryd-1"}, "samples": pts})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "soak", "series.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSoakPlots(t *testing.T) {
	t.Parallel()
	path := writeSeries(t, 8)
	written, err := soakPlots(path, testDPI)
	if err != nil {
		t.Fatalf("soakPlots: %v", err)
	}
	want := []string{"lag.png", "freshness.png", "rss.png", "goroutines.png"}
	if len(written) != len(want) {
		t.Fatalf("soakPlots wrote %q, want %q", written, want)
	}
	for i, f := range want {
		if written[i] != filepath.Join(filepath.Dir(path), f) {
			t.Errorf("plot %d written to %s, want %s beside the series", i, written[i], f)
		}
		b, err := os.ReadFile(written[i])
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s is not a PNG: %v", f, err)
		}
		if w, h := plotPixels(testDPI); img.Bounds().Dx() != w || img.Bounds().Dy() != h {
			t.Errorf("%s is %v, want %dx%d", f, img.Bounds().Size(), w, h)
		}
	}
}

func TestSoakPlotsRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct{ path, want string }{
		"missing file":   {filepath.Join(dir, "absent.json"), "no such file"},
		"not JSON":       {write("bad.json", "{"), "unexpected end"},
		"no samples":     {write("empty.json", `{"samples":[]}`), "no samples"},
		"lag never read": {write("nolag.json", `{"processes":["p"],"services":["p"],"samples":[{"t_s":0,"rss_mib":{"p":1},"goroutines":{"p":1}}]}`), "lag.png: no values"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := soakPlots(tc.path, testDPI); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("soakPlots = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSoakPlotsFlag(t *testing.T) {
	t.Parallel()
	path := writeSeries(t, 3)
	if err := runBench(t.Context(), []string{"-soak-plots", path, "-plot-dpi", "24"}); err != nil {
		t.Fatalf("benchrun -soak-plots: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "goroutines.png")); err != nil {
		t.Fatalf("benchrun -soak-plots drew nothing: %v", err)
	}
}
