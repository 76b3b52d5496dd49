package main

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg/draw"
)

var testMeta = plotMeta{machine: "Test CPU, nproc 2", runs: 3, date: "2026-01-02"}

// samples returns n latencies spread from lo upwards, ascending.
func samples(n int, lo time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = lo + time.Duration(i*i)*time.Microsecond/10
	}
	return out
}

// testDPI keeps the rendering in tests fast (it is slow with -race); the
// layout is in inches and does not depend on it.
const testDPI = 24

// checkPNG writes p at dpi and checks it decodes as a PNG of
// plotPixels(dpi) size; it returns the file's bytes.
func checkPNG(t *testing.T, p figure, dpi int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.png")
	if err := savePNG(p, path, dpi); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	w, h := plotPixels(dpi)
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Errorf("image is %v, want %dx%d", got, w, h)
	}
	return b
}

func TestPlotPixels(t *testing.T) {
	if w, h := plotPixels(plotDPI); w != 1440 || h != 720 {
		t.Errorf("plotPixels = %dx%d, want 1440x720", w, h)
	}
}

func latencyFixture() []latSeries {
	return []latSeries{
		{name: "POST c=1", lat: samples(3000, 800*time.Microsecond), p50: agg{0.9, 0.8, 1.0}, p99: agg{7, 3, 8}},
		{name: "raw pgx c=1", lat: samples(6000, 300*time.Microsecond), p50: agg{0.34, 0.33, 0.39}, p99: agg{3.5, 1.9, 5.8}, dashed: true},
	}
}

func TestLatencyPlotIsAPNGAndDeterministic(t *testing.T) {
	mk := func() []byte {
		p, err := latencyPlot("Commands", testMeta, "curves: the median run", latencyFixture())
		if err != nil {
			t.Fatal(err)
		}
		return checkPNG(t, p, testDPI)
	}
	if !bytes.Equal(mk(), mk()) {
		t.Error("the same data gave two different images")
	}
}

func TestSavePNGError(t *testing.T) {
	p, err := latencyPlot("Commands", testMeta, "", latencyFixture())
	if err != nil {
		t.Fatal(err)
	}
	if err := savePNG(p, filepath.Join(t.TempDir(), "missing", "p.png"), testDPI); err == nil {
		t.Error("no error writing into a directory that does not exist")
	}
}

func TestLatencyPlotTitleStatesTheRun(t *testing.T) {
	p, err := latencyPlot("Commands", testMeta, "shown", latencyFixture())
	if err != nil {
		t.Fatal(err)
	}
	want := "Commands\nTest CPU, nproc 2 · median of 3 runs, spread min–max · 2026-01-02"
	if p.Title.Text != want {
		t.Errorf("title = %q, want %q", p.Title.Text, want)
	}
	if p.X.Label.Text == "" || p.Y.Label.Text == "" {
		t.Error("an axis has no label")
	}
	if p.Y.Min <= 0 || p.Y.Max <= p.Y.Min {
		t.Errorf("log axis range %v–%v", p.Y.Min, p.Y.Max)
	}
}

func TestLatencyPlotWithoutSamples(t *testing.T) {
	if _, err := latencyPlot("Empty", testMeta, "", []latSeries{{name: "none"}}); err == nil {
		t.Error("no error for a plot without samples")
	}
}

func TestPercentileLine(t *testing.T) {
	lat := samples(10000, time.Millisecond)
	pts := percentileLine(lat)
	if len(pts) >= len(lat) || len(pts) < 100 {
		t.Errorf("%d points for %d samples, want thinned but detailed", len(pts), len(lat))
	}
	if pts[0].X != 0 || pts[0].Y != 1 {
		t.Errorf("first point %+v, want the smallest sample at percentile 0", pts[0])
	}
	last := pts[len(pts)-1]
	if last.Y != ms(lat[len(lat)-1]) || math.Abs(last.X-nines(0.9999)) > 1e-9 {
		t.Errorf("last point %+v, want the largest sample at 99.99", last)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].X <= pts[i-1].X || pts[i].Y < pts[i-1].Y {
			t.Fatalf("points not ascending at %d: %+v %+v", i, pts[i-1], pts[i])
		}
	}
	// A sample of zero is drawn at the log axis floor.
	if p := percentileLine([]time.Duration{0}); p[0].Y != minPlotMs {
		t.Errorf("zero drawn at %v, want %v", p[0].Y, minPlotMs)
	}
}

func TestTicks(t *testing.T) {
	var labels []string
	for _, tk := range (logTicks{}).Ticks(0.3, 60) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := fmtList(labels); got != "0.5 1 2 5 10 20 50" {
		t.Errorf("log tick labels %s", got)
	}
	labels = nil
	for _, tk := range (percentileTicks{}).Ticks(0, nines(0.999)) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := fmtList(labels); got != "0 50 90 99 99.9" {
		t.Errorf("percentile tick labels %s", got)
	}
}

func fmtList(xs []string) string {
	var b bytes.Buffer
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestFreshnessPlot(t *testing.T) {
	var vis, kaf plotter.XYs
	for i := range 500 {
		x := float64(i) / 50
		vis = append(vis, plotter.XY{X: x, Y: 10 + float64(i%37)})
		kaf = append(kaf, plotter.XY{X: x, Y: 2 + float64(i%11)/2})
	}
	p, err := freshnessPlot("Freshness", testMeta, "time (s)", []freshSeries{
		{name: "POST → visible", pts: vis, p50: 14, p99: 44, spread: "44.0 (40.0–46.0)", shape: draw.CircleGlyph{}},
		{name: "commit → Kafka", pts: kaf, p50: 3, p99: 7, spread: "7.0 (6.0–9.0)", color: 1, shape: draw.TriangleGlyph{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, p, testDPI)
	if _, err := freshnessPlot("Empty", testMeta, "", nil); err == nil {
		t.Error("no error for a plot without samples")
	}
}

func TestThroughputPlot(t *testing.T) {
	p, err := throughputPlot("Throughput", testMeta, []barGroup{
		{title: "Create, c=1", unit: "requests/s", sysName: "POST", rawName: "pgx", system: agg{780, 767, 1100}, raw: agg{2215, 960, 2481}},
		{title: "Relay", unit: "rows/s", sysName: "relay", rawName: "kafka-go", system: agg{9000, 8000, 9500}, raw: agg{20000, 18000, 21000}},
		{title: "Projection", unit: "events/s", sysName: "reader", rawName: "bulk", system: agg{963, 669, 975}, raw: agg{1148, 1058, 1196}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, p, testDPI)
	if _, err := throughputPlot("Empty", testMeta, nil); err == nil {
		t.Error("no error for a plot without groups")
	}
}

// TestWritePlots draws every plot of a small result set and checks the
// paths the report links, relative to the report's directory.
func TestWritePlots(t *testing.T) {
	mk := func(ops int, lo time.Duration) run {
		r := newRun(samples(ops, lo), time.Second)
		return r
	}
	res := &results{
		machine: machine{date: "2026-01-02T03:04:05Z", cpu: "Test CPU", nproc: 2},
		create:  []createFigure{{conc: 1, writer: []run{mk(700, time.Millisecond)}, raw: []run{mk(2000, 300*time.Microsecond)}}},
		reads:   []readFigure{{conc: 1, reader: []run{mk(1000, 900*time.Microsecond)}, raw: []run{mk(1500, 600*time.Microsecond)}}},
		drain:   []drainRun{{rows: 100, relayRate: 9000, rawRate: 20000}},
		proj:    []projRun{{readerRate: 963, rawRate: 1148}},
		fresh: []latencyRun{{fresh: mk(10, 10*time.Millisecond), kafka: mk(10, 2*time.Millisecond), points: []freshPoint{
			{at: 0, kafka: 2 * time.Millisecond, visible: 12 * time.Millisecond},
			{at: 20 * time.Millisecond, kafka: -1, visible: 14 * time.Millisecond},
			{at: 40 * time.Millisecond, kafka: 3 * time.Millisecond, visible: -1},
		}}},
	}
	root := t.TempDir()
	b := &bench{runs: 1, dur: time.Second, rate: 50, plotDPI: testDPI}
	got, err := res.writePlots(b, filepath.Join(root, "plots"), root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{plotThroughput, plotLatencyCommands, plotLatencyQueries, plotFreshness} {
		if got[name] != "plots/"+name {
			t.Errorf("link of %s = %q, want plots/%s", name, got[name], name)
		}
		if _, err := os.Stat(filepath.Join(root, "plots", name)); err != nil {
			t.Error(err)
		}
	}
	if g := res.throughputGroups(); len(g) != 4 || g[1].system.med != 9000 || g[2].raw.med != 1148 || g[3].rawName != "FindOne" {
		t.Errorf("throughput groups = %+v", g)
	}
}
