package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// modulePattern selects every package of the workspace.
const modulePattern = "github.com/propalpes/companias/..."

// benchFunc matches the declaration of a Go benchmark: Benchmark followed
// by a name that does not start with a lower-case letter (the rule of the
// testing package).
var benchFunc = regexp.MustCompile(`(?m)^func Benchmark(?:[^\p{Ll}\s(][^\s(]*)?\(\s*\w+\s+\*testing\.B\s*\)`)

// hasBenchmark reports whether Go source declares at least one benchmark.
func hasBenchmark(src []byte) bool { return benchFunc.Match(src) }

// benchPackages lists the packages matching pattern whose test files
// declare a benchmark, in the order go list gives them.
func benchPackages(ctx context.Context, pattern string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-f",
		`{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles ","}},{{join .XTestGoFiles ","}}`, pattern).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("go list %s: %w: %s", pattern, err, ee.Stderr)
		}
		return nil, fmt.Errorf("go list %s: %w", pattern, err)
	}
	var pkgs []string
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 3 {
			continue
		}
		for name := range strings.SplitSeq(f[2], ",") {
			if name == "" {
				continue
			}
			src, err := os.ReadFile(filepath.Join(f[1], name))
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			if hasBenchmark(src) {
				pkgs = append(pkgs, f[0])
				break
			}
		}
	}
	return pkgs, nil
}

// metric is one value of a benchmark result line, with its unit.
type metric struct {
	value float64
	unit  string
}

// benchLine is one result line of `go test -bench` output.
type benchLine struct {
	pkg     string // from the preceding "pkg:" line
	name    string // full name, without the -GOMAXPROCS suffix
	iters   int
	metrics []metric
}

// parseBenchOutput reads `go test -bench` output and returns its result
// lines. procs is the GOMAXPROCS the benchmarks ran with: go test appends
// "-procs" to every name when it is not 1, and that suffix is removed.
// Lines that are not results (headers, logs, PASS, ok) are skipped; a
// result line with a malformed value is an error.
func parseBenchOutput(r io.Reader, procs int) ([]benchLine, error) {
	var (
		out []benchLine
		pkg string
	)
	suffix := "-" + strconv.Itoa(procs)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		// A result: name, iterations, then value-unit pairs.
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		iters, err := strconv.Atoi(f[1])
		if err != nil {
			continue // a log line that starts with a benchmark name
		}
		name := f[0]
		if procs > 1 {
			name = strings.TrimSuffix(name, suffix)
		}
		bl := benchLine{pkg: pkg, name: name, iters: iters}
		for i := 2; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q of %s: %w", n, f[i], name, err)
			}
			bl.metrics = append(bl.metrics, metric{value: v, unit: f[i+1]})
		}
		out = append(out, bl)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// goBench is one benchmark over its -count runs.
type goBench struct {
	pkg, name string
	runs      int
	units     []string             // in the order the benchmark reports them
	values    map[string][]float64 // unit → one value per run
}

// stat returns the median and spread of unit, and whether it was reported.
func (g goBench) stat(unit string) (agg, bool) {
	v, ok := g.values[unit]
	return aggregate(v), ok
}

// groupBench gathers result lines by package and name, in first-seen order.
func groupBench(lines []benchLine) []goBench {
	var out []goBench
	at := map[string]int{}
	for _, l := range lines {
		key := l.pkg + "\x00" + l.name
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, goBench{pkg: l.pkg, name: l.name, values: map[string][]float64{}})
		}
		g := &out[i]
		g.runs++
		for _, m := range l.metrics {
			if _, seen := g.values[m.unit]; !seen {
				g.units = append(g.units, m.unit)
			}
			g.values[m.unit] = append(g.values[m.unit], m.value)
		}
	}
	return out
}

// goBenchResult is the outcome of running the Go benchmarks.
type goBenchResult struct {
	benchtime string
	count     int
	commands  []string
	benches   []goBench
	failures  []string // one per failed package: the command, its error and the end of its output
	elapsed   time.Duration
}

// goTestArgs returns the go test arguments that run the benchmarks of pkg.
func goTestArgs(pkg string, count int, benchtime string) []string {
	args := []string{"test", "-run", "^$", "-bench", ".", "-count", strconv.Itoa(count), "-benchmem", "-timeout", "60m"}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	return append(args, pkg)
}

// runGoBenchmarks runs the benchmarks of every package of the workspace
// that declares one, package by package (so that they never run at the
// same time), each -count times. A package whose benchmarks fail is
// recorded in failures and the others still run.
func runGoBenchmarks(ctx context.Context, b *bench, procs int) (*goBenchResult, error) {
	start := time.Now()
	pkgs, err := benchPackages(ctx, modulePattern)
	if err != nil {
		return nil, err
	}
	res := &goBenchResult{benchtime: b.goBenchTime, count: b.runs}
	var lines []benchLine
	for _, pkg := range pkgs {
		args := goTestArgs(pkg, b.runs, b.goBenchTime)
		cmd := "go " + shellJoin(args)
		res.commands = append(res.commands, cmd)
		b.logf("go benchmarks: %s", cmd)
		var buf bytes.Buffer
		c := exec.CommandContext(ctx, "go", args...)
		c.Stdout = io.MultiWriter(&buf, os.Stderr)
		c.Stderr = c.Stdout
		runErr := c.Run()
		ls, perr := parseBenchOutput(bytes.NewReader(buf.Bytes()), procs)
		for i := range ls {
			if ls[i].pkg == "" {
				ls[i].pkg = pkg
			}
		}
		lines = append(lines, ls...)
		if err := errors.Join(runErr, perr); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.failures = append(res.failures, fmt.Sprintf("`%s`: %v\n\n```\n%s\n```", cmd, err, tail(buf.String(), 20)))
		}
	}
	res.benches = groupBench(lines)
	res.elapsed = time.Since(start)
	return res, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// shellJoin quotes args for a POSIX shell where needed.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$^*?[]\\|&;<>()`!{}") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// num formats a benchmark value with a precision that suits its size.
func num(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 100 || a == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// fmtStat renders a benchmark value as "median (min–max)", or the median
// alone over a single run.
func fmtStat(a agg, runs int) string {
	if runs < 2 {
		return num(a.med)
	}
	return num(a.med) + " (" + num(a.lo) + "–" + num(a.hi) + ")"
}

// goBenchMarkdown writes the section of the Go benchmarks.
func (r *results) goBenchMarkdown(p func(string, ...any)) {
	g := r.goBench
	p("## 6. Go benchmarks of the services")
	p("")
	p("`go test -run '^$' -bench . -count %d -benchmem` (`-benchtime %s`) on every package whose tests declare a", g.count, cmp.Or(g.benchtime, "1s"))
	p("benchmark — found with `go list` and a search for `func Benchmark`, so new ones are picked up — one package")
	p("after the other, after the system figures (the embedded stack of the figures above is stopped by then).")
	p("Each value is the **median over the %d counts, with the spread (min–max)**. The benchmarks start their own", g.count)
	p("embedded broker, FerretDB and PostgreSQL databases; each one's doc comment says what it measures. For a")
	p("benchmark that times one long operation per iteration (a projection catch-up, a backlog drain) its custom")
	p("metrics (events/s, rows/s, …) are the figures to read; a ns/op of 0 (—) means the benchmark reports its")
	p("own figures (p50-ms, p99-ms) instead.")
	p("")
	if len(g.failures) > 0 {
		p("**Failed packages** (their results below are partial or missing):")
		p("")
		for _, f := range g.failures {
			p("* %s", f)
		}
		p("")
	}
	if len(g.benches) == 0 {
		p("No benchmark results.")
		p("")
		return
	}
	pkg := ""
	for _, b := range g.benches {
		if b.pkg != pkg {
			if pkg != "" {
				p("")
			}
			pkg = b.pkg
			p("### %s", strings.TrimPrefix(pkg, strings.TrimSuffix(modulePattern, "...")))
			p("")
			p("| benchmark | runs | ns/op | B/op | allocs/op | other metrics |")
			p("|---|---|---|---|---|---|")
		}
		cell := func(unit string) string {
			a, ok := b.stat(unit)
			if !ok || (unit == "ns/op" && a.hi == 0) {
				return "—"
			}
			return fmtStat(a, len(b.values[unit]))
		}
		var other []string
		for _, u := range b.units {
			if u == "ns/op" || u == "B/op" || u == "allocs/op" {
				continue
			}
			other = append(other, u+" "+cell(u))
		}
		p("| %s | %d | %s | %s | %s | %s |", strings.ReplaceAll(b.name, "|", `\|`), b.runs, cell("ns/op"), cell("B/op"), cell("allocs/op"),
			strings.Join(other, "; "))
	}
	p("")
}
