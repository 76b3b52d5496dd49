package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSeriesPoint(t *testing.T) {
	t.Parallel()
	unknown := seriesPoint(soakSample{at: 20 * time.Second, lag: -1, freshLost: 2})
	if unknown.AtSec != 20 || unknown.Lag != nil || unknown.FreshP50Ms != nil || unknown.FreshMaxMs != nil || unknown.FreshLost != 2 {
		t.Errorf("a sample without lag or probes = %+v; want t 20, no lag, no freshness, 2 lost", unknown)
	}
	p := seriesPoint(soakSample{lag: 3, fresh: []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond},
		rss: map[string]float64{"kafka": 100}, goroutines: map[string]float64{"queryd-1": 70}})
	if p.Lag == nil || *p.Lag != 3 || *p.FreshP50Ms != 20 || *p.FreshMaxMs != 30 || p.RSSMiB["kafka"] != 100 || p.Goroutines["queryd-1"] != 70 {
		t.Errorf("seriesPoint = %+v; want lag 3, p50 20 ms, max 30 ms and the maps", p)
	}
}

// TestWriteSoakSeries checks the file's field names, which are the input
// format of bench/cmd/benchrun -soak-plots.
func TestWriteSoakSeries(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "soak", "series.json")
	lag := 1.0
	in := soakSeries{Rate: 12.5, EverySec: 10, Processes: []string{"kafka"}, Services: []string{"queryd-1"},
		Samples: []soakSeriesPoint{{AtSec: 0, Lag: &lag, RSSMiB: map[string]float64{"kafka": 1}}}}
	if err := writeSoakSeries(path, in); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"date", "machine", "rate", "every_s", "processes", "services", "samples"} {
		if _, ok := got[k]; !ok {
			t.Errorf("series file lacks %q: %s", k, b)
		}
	}
	s0 := got["samples"].([]any)[0].(map[string]any)
	for _, k := range []string{"t_s", "lag", "fresh_p50_ms", "fresh_p95_ms", "fresh_max_ms", "fresh_lost", "rss_mib"} {
		if _, ok := s0[k]; !ok {
			t.Errorf("series sample lacks %q: %v", k, s0)
		}
	}

	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSoakSeries(filepath.Join(blocker, "series.json"), in); err == nil {
		t.Error("writeSoakSeries under a file succeeded; want an error")
	}
}

// TestSoakReportLinksPlots checks the series file and the report's links
// to the plots drawn beside it, relative to the report.
func TestSoakReportLinksPlots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := &stack{broker: &service{name: "kafka"}, mongo: &service{name: "mongo"}, writers: []*service{{name: "writer1"}}}
	s.o.soak.out = filepath.Join(dir, "SOAK.md")
	s.o.soak.series = filepath.Join(dir, "soak", "series.json")
	s.o.soak.every = 2 * time.Second
	samples := []soakSample{{at: 0, lag: 0}, {at: 2 * time.Second, lag: 4}}
	report := s.soakReport(10, soakCapacity{}, samples, "VERDICT\n")
	for _, pl := range soakPlotNames {
		if want := "](soak/" + pl.file + ")"; !strings.Contains(report, want) {
			t.Errorf("report lacks the link %q:\n%s", want, report)
		}
	}
	ser := s.newSoakSeries(10, samples, "test")
	if len(ser.Samples) != 2 || strings.Join(ser.Processes, ",") != "kafka,mongo,writer1" || strings.Join(ser.Services, ",") != "writer1" || ser.EverySec != 2 {
		t.Errorf("newSoakSeries = %+v; want 2 samples, processes kafka,mongo,writer1, services writer1, every 2 s", ser)
	}
}
