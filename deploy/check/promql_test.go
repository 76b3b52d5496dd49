package check

import (
	"errors"
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// metricKind is what a metric name's definition says about its series.
type metricKind int

const (
	// plainMetric has one series name: a counter, a gauge, or a name given
	// to prometheus.NewDesc (whose type is only known at Collect).
	plainMetric metricKind = iota
	// histogramMetric also has the series name_bucket, name_sum, name_count.
	histogramMetric
	// summaryMetric also has name_sum and name_count.
	summaryMetric
)

// scrapeMetrics are the series Prometheus writes itself for every target.
var scrapeMetrics = map[string]metricKind{"up": plainMetric}

// nameArgFuncs are the calls whose first argument is a metric's full name:
// prometheus.NewDesc, and libs/telemetry/buildinfo's Info.Gauge (the
// services' *_build_info gauges).
var nameArgFuncs = map[string]metricKind{
	"NewDesc": plainMetric,
	"Gauge":   plainMetric,
}

// metricOpts are the client_golang option types whose Namespace, Subsystem
// and Name fields make a metric name, with the kind of metric they make.
var metricOpts = map[string]metricKind{
	"CounterOpts": plainMetric, "GaugeOpts": plainMetric, "Opts": plainMetric,
	"UntypedOpts": plainMetric, "HistogramOpts": histogramMetric, "SummaryOpts": summaryMetric,
}

// sourceMetrics returns the metric names the Go source under root's
// services/ and libs/ defines (test files and testdata excluded): the names
// given to prometheus.NewDesc and the Namespace_Subsystem_Name of the
// client_golang option literals (CounterOpts{Name: …} and the like). A name
// is a string literal, a concatenation of them, a constant of the same
// package or prometheus.BuildFQName of those; other expressions are skipped.
func sourceMetrics(t testing.TB, root string) map[string]metricKind {
	t.Helper()
	out := map[string]metricKind{}
	pkgs := map[string][]*ast.File{} // by directory
	for _, top := range []string{"services", "libs"} {
		if _, err := os.Stat(filepath.Join(root, top)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := goparser.ParseFile(token.NewFileSet(), path, nil, goparser.SkipObjectResolution)
			if err != nil {
				return err
			}
			pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], f)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, files := range pkgs {
		consts := map[string]ast.Expr{}
		for _, f := range files {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							consts[n.Name] = vs.Values[i]
						}
					}
				}
			}
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && len(n.Args) > 0 {
						if kind, ok := nameArgFuncs[sel.Sel.Name]; ok {
							if name, ok := goString(n.Args[0], consts, 0); ok {
								out[name] = kind
							}
						}
					}
				case *ast.CompositeLit:
					sel, ok := n.Type.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					kind, ok := metricOpts[sel.Sel.Name]
					if !ok {
						return true
					}
					parts := map[string]string{}
					for _, el := range n.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						key, ok := kv.Key.(*ast.Ident)
						if !ok {
							continue
						}
						if s, ok := goString(kv.Value, consts, 0); ok {
							parts[key.Name] = s
						}
					}
					if parts["Name"] != "" {
						out[fqName(parts["Namespace"], parts["Subsystem"], parts["Name"])] = kind
					}
				}
				return true
			})
		}
	}
	return out
}

// fqName joins the non-empty parts with "_", as prometheus.BuildFQName does.
func fqName(namespace, subsystem, name string) string {
	var parts []string
	for _, p := range []string{namespace, subsystem, name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "_")
}

// goString evaluates e as a constant string expression of its package.
func goString(e ast.Expr, consts map[string]ast.Expr, depth int) (string, bool) {
	if depth > 10 {
		return "", false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.ParenExpr:
		return goString(e.X, consts, depth+1)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		l, ok := goString(e.X, consts, depth+1)
		if !ok {
			return "", false
		}
		r, ok := goString(e.Y, consts, depth+1)
		return l + r, ok
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return goString(v, consts, depth+1)
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "BuildFQName" && len(e.Args) == 3 {
			var parts [3]string
			for i, a := range e.Args {
				s, ok := goString(a, consts, depth+1)
				if !ok {
					return "", false
				}
				parts[i] = s
			}
			return fqName(parts[0], parts[1], parts[2]), true
		}
	}
	return "", false
}

// promqlChecker checks PromQL expressions against the metrics that exist.
type promqlChecker struct {
	parser parser.Parser
	known  map[string]metricKind
}

// newPromQLChecker returns a checker that knows the metrics the services'
// source defines and the series Prometheus adds (up).
func newPromQLChecker(t testing.TB) *promqlChecker {
	t.Helper()
	known := sourceMetrics(t, repoRoot(t))
	if len(known) < 10 {
		t.Fatalf("found only %d metric names in the services' source (%v): the scan is broken", len(known), sorted(kindKeys(known)))
	}
	for n, k := range scrapeMetrics {
		known[n] = k
	}
	return &promqlChecker{parser: parser.NewParser(parser.Options{}), known: known}
}

func kindKeys(m map[string]metricKind) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// seriesKnown reports whether a series name exists: a known metric, or
// the _bucket, _sum or _count series of a known histogram (_sum and _count
// also of a summary).
func (c *promqlChecker) seriesKnown(name string) bool {
	if _, ok := c.known[name]; ok {
		return true
	}
	for suffix, kinds := range map[string][]metricKind{
		"_bucket": {histogramMetric},
		"_sum":    {histogramMetric, summaryMetric},
		"_count":  {histogramMetric, summaryMetric},
	} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if k, ok := c.known[base]; ok && slices.Contains(kinds, k) {
				return true
			}
		}
	}
	return false
}

// check parses expr with the Prometheus PromQL parser and returns the
// metric names it selects; it fails on a syntax or type error, on a
// selector without a literal metric name (a regular expression on
// __name__ cannot be checked), and on a name that is not a known series.
func (c *promqlChecker) check(expr string) ([]string, error) {
	e, err := c.parser.ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var names []string
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%q: selector %s names no metric literally", expr, vs))
		case !c.seriesKnown(name):
			errs = append(errs, fmt.Errorf("%q: metric %s is defined nowhere in services/ or libs/", expr, name))
		default:
			names = append(names, name)
		}
		return nil
	})
	if len(names) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%q selects no metric", expr))
	}
	return names, errors.Join(errs...)
}

func TestSourceMetrics(t *testing.T) {
	t.Parallel()
	got := sourceMetrics(t, repoRoot(t))
	for name, kind := range map[string]metricKind{
		"companias_http_requests_total":                   plainMetric,     // CounterVec, libs/telemetry
		"companias_http_request_duration_seconds":         histogramMetric, // HistogramVec
		"companias_projection_freshness_seconds":          histogramMetric, // Histogram, query service
		"companias_outbox_oldest_unpublished_age_seconds": plainMetric,     // NewDesc, command service
		"companias_relay_leader":                          plainMetric,
		"companias_consumer_lag":                          plainMetric,
		"companias_command_build_info":                    plainMetric, // buildinfo.Info.Gauge
		"companias_query_build_info":                      plainMetric,
	} {
		if k, ok := got[name]; !ok || k != kind {
			t.Errorf("sourceMetrics()[%s] = %v, %v; want %v, true", name, k, ok, kind)
		}
	}

	// The scanner itself, on a package of its own.
	dir := filepath.Join(t.TempDir(), "libs", "x")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `package x

const ns = "acme"
const name = ns + "_jobs_total"

var (
	a = prometheus.NewDesc(name, "help", nil, nil)
	b = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "queue", Name: "wait_seconds"})
	c = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "up"), "help", nil, nil)
	d = prometheus.NewSummary(prometheus.SummaryOpts{Name: "acme_size_bytes"})
	e = prometheus.NewDesc(someVar, "help", nil, nil) // not a constant: skipped
	f = buildinfo.Read().Gauge("acme_build_info")
)
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x_test.go"), []byte("package x\nvar t = prometheus.NewDesc(\"acme_from_test\", \"\", nil, nil)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]metricKind{"acme_jobs_total": plainMetric, "acme_queue_wait_seconds": histogramMetric,
		"acme_up": plainMetric, "acme_size_bytes": summaryMetric, "acme_build_info": plainMetric}
	if got := sourceMetrics(t, filepath.Dir(filepath.Dir(dir))); !mapsEqual(got, want) {
		t.Errorf("sourceMetrics(scratch) = %v, want %v", got, want)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPromQLChecker: the checker the rules and the dashboard go through
// rejects typos, unknown metrics and series a metric does not have.
func TestPromQLChecker(t *testing.T) {
	t.Parallel()
	c := newPromQLChecker(t)
	for _, expr := range []string{
		`max(companias_outbox_oldest_unpublished_age_seconds) > 60`,
		`histogram_quantile(0.99, sum by (le) (rate(companias_projection_freshness_seconds_bucket[5m])))`,
		`sum(rate(companias_http_request_duration_seconds_count[5m]))`,
		`deriv(sum by (topic, group) (companias_consumer_lag)[15m:1m]) > 0`,
		`{__name__="companias_relay_leader"} == 0`,
		`up{job="companias-query"} == 0`,
		`(sum(companias_relay_leader) or vector(0)) < 1`,
	} {
		if _, err := c.check(expr); err != nil {
			t.Errorf("check(%q) = %v, want nil", expr, err)
		}
	}
	for _, tc := range []struct{ expr, want string }{
		{`rate(companias_http_requests_total[5m]`, "parse"},                     // unclosed
		{`sum by (job) rate(companias_http_requests_total[5m])`, "parse"},       // missing parentheses
		{`max(companias_outbox_oldest_unpublished_age_seconds) >`, "parse"},     // no right operand
		{`rate(companias_outbox_backlog_rows)`, "parse"},                        // rate of an instant vector
		{`histogram_quantile(0.99, companias_relay_leader[5m])`, "parse"},       // range vector argument
		{`max(companias_outbox_oldest_unpublished_age_second) > 60`, "nowhere"}, // typo in the name
		{`rate(companias_http_requests_total_bucket[5m])`, "nowhere"},           // a counter has no buckets
		{`companias_outbox_backlog_rows_count`, "nowhere"},                      // nor has a NewDesc gauge
		{`{__name__=~"companias_.+"}`, "names no metric"},                       // unverifiable
		{`vector(1)`, "selects no metric"},
	} {
		if _, err := c.check(tc.expr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check(%q) = %v, want an error containing %q", tc.expr, err, tc.want)
		}
	}
}
