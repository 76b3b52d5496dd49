package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleOutput is `go test -bench` output of two counts, with the lines
// that are not results that go test and the benchmarks print.
const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/propalpes/companias/services/query/internal/adapters/mongoview
cpu: AMD EPYC
BenchmarkApply/postgres+idindex/insert-2         	      20	  51234567 ns/op	       780.5 views/s	 1234567 B/op	   12345 allocs/op
BenchmarkApply/postgres+idindex/insert-2         	      20	  61234567 ns/op	       650.2 views/s	 1234000 B/op	   12340 allocs/op
BenchmarkIntegrationCommitToPublish/BatchTimeout=5ms-2         	     300	         0 ns/op	         3.100 p50-ms	        12.50 p99-ms
    bench_test.go:42: BenchmarkApply took a while
BenchmarkIntegrationCommitToPublish/BatchTimeout=5ms-2         	     300	         0 ns/op	         2.900 p50-ms	        10.50 p99-ms
BenchmarkRead/sqlite/get-20-2   	    1000	    123456 ns/op
--- BENCH: BenchmarkRead
PASS
ok  	github.com/propalpes/companias/services/query/internal/adapters/mongoview	12.345s
`

func TestParseBenchOutput(t *testing.T) {
	lines, err := parseBenchOutput(strings.NewReader(sampleOutput), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 5 {
		t.Fatalf("got %d result lines, want 5: %+v", len(lines), lines)
	}
	l := lines[0]
	if l.pkg != "github.com/propalpes/companias/services/query/internal/adapters/mongoview" ||
		l.name != "BenchmarkApply/postgres+idindex/insert" || l.iters != 20 {
		t.Errorf("first line = %+v", l)
	}
	want := []metric{{51234567, "ns/op"}, {780.5, "views/s"}, {1234567, "B/op"}, {12345, "allocs/op"}}
	if len(l.metrics) != len(want) {
		t.Fatalf("metrics = %+v, want %+v", l.metrics, want)
	}
	for i := range want {
		if l.metrics[i] != want[i] {
			t.Errorf("metric %d = %+v, want %+v", i, l.metrics[i], want[i])
		}
	}
	// Only the -GOMAXPROCS suffix goes; a name that ends in a number keeps it.
	if got := lines[4].name; got != "BenchmarkRead/sqlite/get-20" {
		t.Errorf("name = %q, want BenchmarkRead/sqlite/get-20", got)
	}
}

func TestParseBenchOutputKeepsNamesWithOneProc(t *testing.T) {
	lines, err := parseBenchOutput(strings.NewReader("BenchmarkX-2 10 5 ns/op\n"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].name != "BenchmarkX-2" {
		t.Errorf("got %+v, want the name as printed (go test adds no suffix with GOMAXPROCS 1)", lines)
	}
}

func TestParseBenchOutputRejectsBadValue(t *testing.T) {
	_, err := parseBenchOutput(strings.NewReader("BenchmarkX-2 10 five ns/op\n"), 2)
	if err == nil || !strings.Contains(err.Error(), `"five"`) {
		t.Errorf("err = %v, want one naming the bad value", err)
	}
}

func TestGroupBench(t *testing.T) {
	lines, err := parseBenchOutput(strings.NewReader(sampleOutput), 2)
	if err != nil {
		t.Fatal(err)
	}
	gs := groupBench(lines)
	if len(gs) != 3 {
		t.Fatalf("got %d benchmarks, want 3: %+v", len(gs), gs)
	}
	apply := gs[0]
	if apply.runs != 2 || strings.Join(apply.units, ",") != "ns/op,views/s,B/op,allocs/op" {
		t.Errorf("apply = %+v", apply)
	}
	if a, ok := apply.stat("views/s"); !ok || a != (agg{med: (780.5 + 650.2) / 2, lo: 650.2, hi: 780.5}) {
		t.Errorf("views/s = %+v, %v", a, ok)
	}
	if _, ok := apply.stat("p99-ms"); ok {
		t.Error("a unit the benchmark does not report is reported")
	}
	if c := gs[1]; c.name != "BenchmarkIntegrationCommitToPublish/BatchTimeout=5ms" || c.runs != 2 {
		t.Errorf("second = %+v", c)
	}
}

func TestHasBenchmark(t *testing.T) {
	for src, want := range map[string]bool{
		"func BenchmarkApply(b *testing.B) {":      true,
		"func Benchmark(b *testing.B) {":           true,
		"func BenchmarkX_y(tb *testing.B) {":       true,
		"func Benchmarkapply(b *testing.B) {":      false, // not a benchmark for go test
		"func BenchmarkApply(t *testing.T) {":      false,
		"// func BenchmarkApply(b *testing.B) {":   false,
		"func (s *S) BenchmarkApply(b *testing.B)": false,
		"func benchmarkApply(b *testing.B) {":      false,
	} {
		if got := hasBenchmark([]byte("package x\n\n" + src + "\n")); got != want {
			t.Errorf("hasBenchmark(%q) = %v, want %v", src, got, want)
		}
	}
}

// TestBenchPackagesFindsThisModule runs the real go list on a throwaway
// module: a package with a benchmark is listed, one without is not.
func TestBenchPackagesFindsThisModule(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("a/a.go", "package a\n")
	write("a/a_test.go", "package a_test\n\nimport \"testing\"\n\nfunc BenchmarkA(b *testing.B) {}\n")
	write("b/b.go", "package b\n")
	write("b/b_test.go", "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n")
	t.Chdir(dir)
	t.Setenv("GOWORK", "off")
	pkgs, err := benchPackages(t.Context(), "./...")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pkgs, ",") != "example.com/m/a" {
		t.Errorf("benchPackages = %v, want [example.com/m/a]", pkgs)
	}
}

func TestBenchPackagesReportsGoListError(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("GOWORK", "off")
	if _, err := benchPackages(t.Context(), "example.com/does/not/exist"); err == nil {
		t.Error("no error for a pattern go list cannot load")
	}
}

func TestGoTestArgs(t *testing.T) {
	got := shellJoin(goTestArgs("example.com/m/a", 3, "1x"))
	want := "test -run '^$' -bench . -count 3 -benchmem -timeout 60m -benchtime 1x example.com/m/a"
	if got != want {
		t.Errorf("goTestArgs = %s, want %s", got, want)
	}
	if got := shellJoin(goTestArgs("p", 1, "")); strings.Contains(got, "benchtime") {
		t.Errorf("goTestArgs without benchtime = %s", got)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 51234567: "51234567", 780.5: "780", 12.345: "12.3", 3.1: "3.10", 0.01234: "0.0123"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
	if got := fmtStat(agg{med: 2, lo: 1, hi: 3}, 3); got != "2.00 (1.00–3.00)" {
		t.Errorf("fmtStat = %q", got)
	}
	if got := fmtStat(agg{med: 2, lo: 2, hi: 2}, 1); got != "2.00" {
		t.Errorf("fmtStat of one run = %q", got)
	}
}
