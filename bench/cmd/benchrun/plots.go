package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of every plot image: 12 × 6 inches, by default at 120 dots per
// inch (1440 × 720 pixels).
const (
	plotWidth  = 12 * vg.Inch
	plotHeight = 6 * vg.Inch
	plotDPI    = 120
)

// plotPixels is the size in pixels of the PNG savePNG writes at dpi.
func plotPixels(dpi int) (w, h int) {
	return int(math.Round(float64(plotWidth/vg.Inch) * float64(dpi))), int(math.Round(float64(plotHeight/vg.Inch) * float64(dpi)))
}

// plotMeta is what every plot states about how it was measured.
type plotMeta struct {
	machine string // e.g. "AMD EPYC, nproc 2"
	runs    int
	date    string // YYYY-MM-DD, UTC
}

// caption is the line under every plot title: the machine, the runs and
// the date.
func (m plotMeta) caption() string {
	return fmt.Sprintf("%s · median of %d runs, spread min–max · %s", m.machine, m.runs, m.date)
}

// figure is an image savePNG can draw.
type figure interface {
	draw(c draw.Canvas)
}

// chart is one plot with its legend drawn to the right of the data, where
// it hides nothing.
type chart struct {
	*plot.Plot
	legend plot.Legend
	labels []string
}

// newChart returns a chart with the house layout: a two-line title (what,
// then the caption), labelled axes and a grid.
func newChart(title string, m plotMeta, xLabel, yLabel string) *chart {
	p := plot.New()
	p.Title.Text = title + "\n" + m.caption()
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	c := &chart{Plot: p, legend: plot.NewLegend()}
	c.legend.Top, c.legend.Left = true, true
	c.legend.TextStyle.Font = font.From(plot.DefaultFont, 10)
	c.legend.Padding = vg.Points(3)
	return c
}

// addLegend adds a legend entry.
func (c *chart) addLegend(label string, th ...plot.Thumbnailer) {
	c.legend.Add(label, th...)
	c.labels = append(c.labels, label)
}

// draw implements figure: the plot on the left, the legend in a column
// as wide as its longest entry on the right, below the title.
func (c *chart) draw(dc draw.Canvas) {
	pad := vg.Points(10)
	var w vg.Length
	for _, l := range c.labels {
		w = max(w, c.legend.TextStyle.Width(l))
	}
	if len(c.labels) > 0 {
		w += c.legend.ThumbnailWidth + 3*pad
	}
	c.Plot.Draw(draw.Crop(dc, 0, -w, 0, 0))
	if len(c.labels) > 0 {
		top := c.Title.TextStyle.Rectangle(c.Title.Text).Size().Y + c.Title.Padding + pad
		c.legend.Draw(draw.Crop(dc, dc.Size().X-w+pad, 0, 0, -top))
	}
}

// savePNG draws f into a PNG image of plotPixels(dpi) size at path. The
// layout is in inches, so it is the same at every dpi.
func savePNG(f figure, path string, dpi int) error {
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(dpi))
	f.draw(draw.New(c))
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(out); err != nil {
		out.Close()
		return fmt.Errorf("write plot %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write plot %s: %w", path, err)
	}
	return nil
}

// logTicks marks a logarithmic axis at 1, 2 and 5 times each power of ten
// (labelled) and at the other integers (unlabelled).
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for i := 1; i < 10; i++ {
			v := base * float64(i)
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			t := plot.Tick{Value: v}
			if i == 1 || i == 2 || i == 5 {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// nines maps a quantile q in [0, 1) to the x position of a percentile
// plot: -log10(1-q), so that 90, 99 and 99.9% are evenly spaced.
func nines(q float64) float64 { return -math.Log10(1 - q) }

// percentileTicks labels a nines axis at the usual percentiles.
type percentileTicks struct{}

// Ticks implements plot.Ticker.
func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for _, p := range []float64{0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99} {
		x := nines(p / 100)
		if x < lo-1e-9 || x > hi+1e-9 {
			continue
		}
		t := plot.Tick{Value: x}
		if p != 75 && p != 95 && p != 99.5 && p != 99.95 {
			t.Label = strconv.FormatFloat(p, 'f', -1, 64)
		}
		ts = append(ts, t)
	}
	return ts
}

// latSeries is one latency distribution of a percentile plot.
type latSeries struct {
	name     string
	lat      []time.Duration // the shown run's latencies, ascending
	p50, p99 agg             // over all runs, in ms
	color    int             // plotutil colour index
	dashed   bool            // raw ceilings are dashed
}

// minPlotMs is the smallest latency a log axis shows; smaller values are
// drawn at it.
const minPlotMs = 0.01

// percentileLine returns the points of a percentile plot of sorted
// samples: sample i at quantile i/n, thinned to steps of at least 0.01 on
// the nines axis, the largest sample always kept.
func percentileLine(lat []time.Duration) plotter.XYs {
	var pts plotter.XYs
	n := len(lat)
	last := math.Inf(-1)
	for i, d := range lat {
		x := nines(float64(i) / float64(n))
		if x-last < 0.01 && i != n-1 {
			continue
		}
		pts = append(pts, plotter.XY{X: x, Y: max(ms(d), minPlotMs)})
		last = x
	}
	return pts
}

// errPoints are markers with vertical min–max bars, for plotter.YErrorBars.
type errPoints []struct{ x, y, lo, hi float64 }

func (e errPoints) Len() int                    { return len(e) }
func (e errPoints) XY(i int) (float64, float64) { return e[i].x, e[i].y }
func (e errPoints) YError(i int) (float64, float64) {
	return e[i].y - e[i].lo, e[i].hi - e[i].y
}

// latencyPlot draws latency by percentile: x is the percentile on a nines
// scale, y the latency in ms on a log scale. Each series is the shown run's
// distribution; a marker with a bar at p50 and p99 gives the median and
// the spread (min–max) of that percentile over all runs.
func latencyPlot(title string, m plotMeta, shown string, series []latSeries) (*chart, error) {
	p := newChart(title, m, "percentile (%) — "+shown, "latency (ms, log scale)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.X.Tick.Marker = percentileTicks{}
	p.X.Min = 0
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for i, s := range series {
		if len(s.lat) == 0 {
			continue
		}
		line, err := plotter.NewLine(percentileLine(s.lat))
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.name, err)
		}
		line.Color = plotutil.Color(s.color)
		line.Width = vg.Points(1.5)
		if s.dashed {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		// Markers sit a little apart so that the bars of the series do not
		// hide each other.
		dx := 0.012 * (float64(i) - float64(len(series)-1)/2)
		pts := errPoints{
			{x: nines(0.5) + dx, y: max(s.p50.med, minPlotMs), lo: max(s.p50.lo, minPlotMs), hi: max(s.p50.hi, minPlotMs)},
			{x: nines(0.99) + dx, y: max(s.p99.med, minPlotMs), lo: max(s.p99.lo, minPlotMs), hi: max(s.p99.hi, minPlotMs)},
		}
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.name, err)
		}
		bars.Color = line.Color
		bars.Width = vg.Points(1.2)
		marks, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.name, err)
		}
		marks.Color = line.Color
		marks.Shape = draw.BoxGlyph{}
		marks.Radius = vg.Points(2.5)
		p.Add(line, bars, marks)
		p.addLegend(fmt.Sprintf("%s: p50 %.2f, p99 %.1f ms", s.name, s.p50.med, s.p99.med), line)
		for _, v := range []float64{ms(s.lat[0]), ms(s.lat[len(s.lat)-1]), s.p50.lo, s.p99.hi} {
			ymin, ymax = min(ymin, max(v, minPlotMs)), max(ymax, max(v, minPlotMs))
		}
	}
	if math.IsInf(ymin, 0) {
		return nil, fmt.Errorf("plot %q: no samples", title)
	}
	p.Y.Min = ymin * 0.8
	p.Y.Max = ymax * 1.25
	return p, nil
}

// freshSeries is one latency over time of the freshness plot.
type freshSeries struct {
	name     string
	pts      plotter.XYs // x: seconds since the run started, y: ms
	p50, p99 float64     // of the shown run, ms
	spread   string      // p99 over all runs, "median (min–max)"
	color    int
	shape    draw.GlyphDrawer
}

// freshnessPlot draws per-command latencies against the time they were
// sent, one run, with that run's p50 (dashed) and p99 (dotted) of each
// series as horizontal lines.
func freshnessPlot(title string, m plotMeta, xLabel string, series []freshSeries) (*chart, error) {
	p := newChart(title, m, xLabel, "latency (ms)")
	xmax, ymax := 0.0, 0.0
	for _, s := range series {
		for _, pt := range s.pts {
			xmax, ymax = max(xmax, pt.X), max(ymax, pt.Y)
		}
	}
	if xmax == 0 {
		return nil, fmt.Errorf("plot %q: no samples", title)
	}
	p.X.Min, p.X.Max = 0, xmax
	p.Y.Min, p.Y.Max = 0, ymax*1.05
	for _, s := range series {
		sc, err := plotter.NewScatter(s.pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.name, err)
		}
		sc.Color = plotutil.Color(s.color)
		sc.Shape = s.shape
		sc.Radius = vg.Points(1.8)
		p.Add(sc)
		p.addLegend(s.name, sc)
		for _, q := range []struct {
			name   string
			v      float64
			dashes []vg.Length
		}{
			{"p50", s.p50, []vg.Length{vg.Points(6), vg.Points(3)}},
			{"p99", s.p99, []vg.Length{vg.Points(2), vg.Points(2)}},
		} {
			l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: q.v}, {X: xmax, Y: q.v}})
			if err != nil {
				return nil, fmt.Errorf("plot %s: %w", s.name, err)
			}
			l.Color = sc.Color
			l.Width = vg.Points(1.2)
			l.Dashes = q.dashes
			p.Add(l)
			p.addLegend(fmt.Sprintf("%s of this run: %.1f ms", q.name, q.v), l)
		}
		p.addLegend(fmt.Sprintf("p99 of all runs: %s ms", s.spread))
	}
	return p, nil
}

// barGroup is one stage of the throughput figure: the system and its raw
// ceiling, each the median and spread over runs.
type barGroup struct {
	title            string // the stage, e.g. "Create, c=8"
	unit             string // e.g. "requests/s"
	sysName, rawName string // bar labels
	system, raw      agg
	vs               string // the title says "N× the <vs>" instead of "N% of raw" when set
}

// pairBars draws the system bar at x = 0 and the raw bar at x = 1, at the
// median, with min–max whiskers.
type pairBars struct {
	g      barGroup
	colors [2]color.Color
}

// Plot implements plot.Plotter.
func (b *pairBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	whisker := draw.LineStyle{Color: color.Black, Width: vg.Points(1)}
	const half = 0.3 // half a bar, in x units
	for j, a := range []agg{b.g.system, b.g.raw} {
		x := float64(j)
		c.FillPolygon(b.colors[j], c.ClipPolygonXY([]vg.Point{
			{X: trX(x - half), Y: trY(0)}, {X: trX(x + half), Y: trY(0)}, {X: trX(x + half), Y: trY(a.med)}, {X: trX(x - half), Y: trY(a.med)},
		}))
		xm, capW := trX(x), (trX(x+half)-trX(x-half))/4
		c.StrokeLines(whisker,
			[]vg.Point{{X: xm, Y: trY(a.lo)}, {X: xm, Y: trY(a.hi)}},
			[]vg.Point{{X: xm - capW, Y: trY(a.lo)}, {X: xm + capW, Y: trY(a.lo)}},
			[]vg.Point{{X: xm - capW, Y: trY(a.hi)}, {X: xm + capW, Y: trY(a.hi)}})
	}
}

// DataRange implements plot.DataRanger.
func (b *pairBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	return -0.5, 1.5, 0, max(b.g.system.hi, b.g.raw.hi)
}

// panels is a figure of small plots in a grid under one title, with a
// note in the first free tile.
type panels struct {
	title string
	note  string
	plots []*plot.Plot
	cols  int
}

// draw implements figure.
func (f *panels) draw(dc draw.Canvas) {
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	ts := plot.New().Title.TextStyle
	dc.FillText(ts, vg.Point{X: dc.Center().X, Y: dc.Max.Y - vg.Points(2)}, f.title)
	body := draw.Crop(dc, 0, 0, 0, -(ts.Rectangle(f.title).Size().Y + vg.Points(12)))
	rows := (len(f.plots) + f.cols) / f.cols // room for the note
	tiles := draw.Tiles{Rows: rows, Cols: f.cols, PadX: vg.Points(18), PadY: vg.Points(18), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	for i, p := range f.plots {
		p.Draw(tiles.At(body, i%f.cols, i/f.cols))
	}
	noteC := tiles.At(body, len(f.plots)%f.cols, len(f.plots)/f.cols)
	sty := ts
	sty.Font = font.From(plot.DefaultFont, 10)
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YTop
	dc.FillText(sty, vg.Point{X: noteC.Min.X + vg.Points(10), Y: noteC.Max.Y - vg.Points(20)}, f.note)
}

// throughputPlot draws one small bar chart per stage, the system against
// its raw ceiling: bars at the median, whiskers min–max, the ratio of the
// medians in the panel's title. Each panel has its own scale.
func throughputPlot(title string, m plotMeta, groups []barGroup) (*panels, error) {
	if len(groups) == 0 {
		return nil, fmt.Errorf("plot %q: no groups", title)
	}
	colors := [2]color.Color{plotutil.Color(0), color.RGBA{R: 0x9a, G: 0x9a, B: 0x9a, A: 0xff}}
	f := &panels{title: title + "\n" + m.caption(), cols: 4,
		note: fmt.Sprintf("Bars: median of %d runs.\nWhiskers: min–max.\nColour: the system.\nGrey: its raw ceiling,\nmeasured in the same run.\nEach panel has its own scale.", m.runs)}
	if vs := groups[0].vs; vs != "" {
		f.note = fmt.Sprintf("Bars: median of %d runs.\nWhiskers: min–max.\nColour: the writer.\nGrey: %s, measured\nalternately in the same run.\nEach panel has its own scale.", m.runs, vs)
	}
	for _, g := range groups {
		p := plot.New()
		p.Title.Text = g.title
		switch {
		case g.raw.med > 0 && g.vs != "":
			p.Title.Text += fmt.Sprintf(": %.2f× %s", g.system.med/g.raw.med, g.vs)
		case g.raw.med > 0:
			p.Title.Text += fmt.Sprintf(": %.0f%% of raw", 100*g.system.med/g.raw.med)
		}
		p.Title.TextStyle.Font = font.From(plot.DefaultFont, 11)
		p.Y.Label.Text = g.unit
		p.Add(plotter.NewGrid())
		p.Add(&pairBars{g: g, colors: colors})
		p.NominalX(g.sysName, g.rawName)
		p.X.Min, p.X.Max = -0.5, 1.5
		p.Y.Min, p.Y.Max = 0, max(g.system.hi, g.raw.hi)*1.1
		f.plots = append(f.plots, p)
	}
	return f, nil
}
