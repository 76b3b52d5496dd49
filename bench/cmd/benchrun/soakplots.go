package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// soakSeries is the series file `make soak` writes (chaos/cmd/chaosrun,
// soakseries.go: the same JSON field names; change both together). Only
// what the plots use is decoded.
type soakSeries struct {
	Date     string  `json:"date"`
	Machine  string  `json:"machine"`
	Rate     float64 `json:"rate"`
	EverySec float64 `json:"every_s"`
	// Processes and Services fix the order (and colours) of the RSS and
	// goroutine lines.
	Processes []string `json:"processes"`
	Services  []string `json:"services"`
	Samples   []struct {
		AtSec      float64            `json:"t_s"`
		Lag        *float64           `json:"lag"`
		FreshP50Ms *float64           `json:"fresh_p50_ms"`
		FreshP95Ms *float64           `json:"fresh_p95_ms"`
		FreshMaxMs *float64           `json:"fresh_max_ms"`
		RSSMiB     map[string]float64 `json:"rss_mib"`
		Goroutines map[string]float64 `json:"goroutines"`
	} `json:"samples"`
}

// readSoakSeries reads and checks a series file.
func readSoakSeries(path string) (soakSeries, error) {
	var s soakSeries
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("soak plots: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("soak plots: %s: %w", path, err)
	}
	if len(s.Samples) == 0 {
		return s, fmt.Errorf("soak plots: %s has no samples", path)
	}
	return s, nil
}

// soakPlots draws the series file at path as lag.png, freshness.png,
// rss.png and goroutines.png in the file's directory, at dpi. A plot whose
// series has no value at all (e.g. the lag was never readable) is an error:
// an empty picture would pass for a flat line.
func soakPlots(path string, dpi int) ([]string, error) {
	s, err := readSoakSeries(path)
	if err != nil {
		return nil, err
	}
	caption := fmt.Sprintf("%s · %.1f commands/s, a sample every %gs · %s", s.Machine, s.Rate, s.EverySec, s.Date)
	dir := filepath.Dir(path)
	type line struct {
		name string
		get  func(i int) (float64, bool)
	}
	at := func(m map[string]float64, k string) (float64, bool) { v, ok := m[k]; return v, ok }
	ptr := func(p *float64) (float64, bool) {
		if p == nil {
			return 0, false
		}
		return *p, true
	}
	figs := []struct {
		file, title, yLabel string
		lines               []line
	}{
		{"lag.png", "Soak: the readers' group lag", "messages", []line{
			{"group lag", func(i int) (float64, bool) { return ptr(s.Samples[i].Lag) }},
		}},
		{"freshness.png", "Soak: freshness (POST → visible on a reader), per sample window", "ms", []line{
			{"p50", func(i int) (float64, bool) { return ptr(s.Samples[i].FreshP50Ms) }},
			{"p95", func(i int) (float64, bool) { return ptr(s.Samples[i].FreshP95Ms) }},
			{"max", func(i int) (float64, bool) { return ptr(s.Samples[i].FreshMaxMs) }},
		}},
		{"rss.png", "Soak: resident memory (VmRSS) of every process", "MiB", nil},
		{"goroutines.png", "Soak: goroutines of every service", "goroutines", nil},
	}
	for _, p := range s.Processes {
		figs[2].lines = append(figs[2].lines, line{p, func(i int) (float64, bool) { return at(s.Samples[i].RSSMiB, p) }})
	}
	for _, sv := range s.Services {
		figs[3].lines = append(figs[3].lines, line{sv, func(i int) (float64, bool) { return at(s.Samples[i].Goroutines, sv) }})
	}

	var written []string
	for _, f := range figs {
		c := newChart(f.title, plotMeta{}, "time since the constant load started (s)", f.yLabel)
		c.Title.Text = f.title + "\n" + caption
		c.X.Min, c.Y.Min = 0, 0
		ymax, drawn := 0.0, 0
		for li, l := range f.lines {
			var pts plotter.XYs
			for i := range s.Samples {
				if v, ok := l.get(i); ok && !math.IsNaN(v) {
					pts = append(pts, plotter.XY{X: s.Samples[i].AtSec, Y: v})
					ymax = max(ymax, v)
				}
			}
			if len(pts) == 0 {
				continue
			}
			lp, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return written, fmt.Errorf("soak plot %s: %w", f.file, err)
			}
			lp.Color, sc.Color = plotutil.Color(li), plotutil.Color(li)
			lp.Width = vg.Points(1.5)
			sc.Shape = plotutil.Shape(li)
			c.Add(lp, sc)
			c.addLegend(l.name, lp, sc)
			drawn++
		}
		if drawn == 0 {
			return written, fmt.Errorf("soak plot %s: no values in %s", f.file, path)
		}
		c.Y.Max = max(ymax*1.1, 1)
		out := filepath.Join(dir, f.file)
		if err := savePNG(c, out, dpi); err != nil {
			return written, err
		}
		written = append(written, out)
	}
	return written, nil
}
