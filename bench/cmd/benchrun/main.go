// Command benchrun runs every benchmark of PropAlpes Companies in one go.
// It measures the system end to end on the embedded stack (kfake broker,
// FerretDB on PostgreSQL, fresh PostgreSQL databases, the two service
// binaries built with go build) and compares each figure with a raw ceiling
// measured in the same run: pgx for the writer, kafka-go for the relay,
// mongo-driver for the projection and the reader. Then it runs the Go
// benchmarks (go test -bench) of every package that declares one. With
// -secure (the default) it also measures create, commit → Kafka, POST →
// visible and the projection catch-up with the services on a second
// broker secured with TLS, SASL/SCRAM-SHA-512 and ACLs, as a second line
// next to the plaintext figures. It
// prints a Markdown report, writes it to -out (bench/RESULTS.md by default)
// and draws PNG plots into -plots (bench/plots), which the report embeds.
// Every figure is the median over -runs runs with the spread (min–max).
//
// Usage (from bench/, see the Makefile):
//
//	go run ./cmd/benchrun [-runs 3] [-dur 3s] [-conc 1,8,32] [-rate 50] ...
//	go run ./cmd/benchrun -quick   # a short run while developing
//
// It needs PostgreSQL on PG_ADMIN_URL (default the local trust server) and
// the go tool on PATH. It is a benchmark, not a test: it runs for several
// minutes and its figures depend on the machine.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runBench(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

// bench holds the settings of one benchmark run.
type bench struct {
	runs        int
	dur         time.Duration
	concs       []int
	readConcs   []int
	rate        int
	rateDur     time.Duration
	projEvents  int
	projTimeout time.Duration
	out         string
	plotsDir    string
	plotDPI     int
	keep        bool
	quick       bool
	system      bool   // measure the system on the embedded stack
	secure      bool   // add the TLS + SCRAM line of figures 1, 2, 3 and 5
	peer        bool   // measure the Watermill peer baseline next to the writer
	peerOnly    bool   // measure the peer figure alone
	peerConcs   []int  // concurrencies of the peer figure
	goBench     bool   // run the Go benchmarks of the services
	goBenchTime string // -benchtime of the Go benchmarks ("": go test's default)
	soakSeries  string // -soak-plots: draw this soak series file instead of benchmarking
	names       *names
	args        []string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad positive integer %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// quickDir is where -quick writes its report and plots unless -out or
// -plots say otherwise: outside the source tree, so that figures of a
// quick run are never mistaken for the real ones.
func quickDir() string { return filepath.Join(os.TempDir(), "benchrun-quick") }

// peerDir is where -peer-only writes its partial report and plot unless
// -out or -plots say otherwise.
func peerDir() string { return filepath.Join(os.TempDir(), "benchrun-peer") }

func parse(args []string) (*bench, error) {
	b := &bench{args: args, names: &names{run: strconv.FormatInt(time.Now().Unix()%1_000_000, 36)}}
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.IntVar(&b.runs, "runs", 3, "runs per figure, and -count of the Go benchmarks (median and spread are over these)")
	fs.DurationVar(&b.dur, "dur", 3*time.Second, "length of each closed-loop throughput run")
	conc := fs.String("conc", "1,8,32", "concurrencies of the create benchmark")
	readConc := fs.String("read-conc", "1,8", "concurrencies of the read benchmark")
	fs.IntVar(&b.rate, "rate", 50, "fixed command rate (per second) of the latency figures")
	fs.DurationVar(&b.rateDur, "rate-dur", 10*time.Second, "length of each fixed-rate run")
	fs.IntVar(&b.projEvents, "proj-events", 5000, "events pre-loaded for the projection catch-up, and rows of the relay backlog")
	fs.DurationVar(&b.projTimeout, "proj-timeout", 3*time.Minute, "longest wait for one projection catch-up or relay drain")
	fs.StringVar(&b.out, "out", "RESULTS.md", "file the Markdown report is written to")
	fs.StringVar(&b.plotsDir, "plots", "plots", "directory the PNG plots are written to (the report links them relative to -out)")
	fs.IntVar(&b.plotDPI, "plot-dpi", plotDPI, "resolution of the plots (they are 12 × 6 inches)")
	fs.BoolVar(&b.keep, "keep", false, "keep the work directory (service logs and binaries)")
	fs.BoolVar(&b.quick, "quick", false, "a short run for development: -runs 1 -dur 1s -rate-dur 3s -proj-events 1000 -gobench-time 1x,\n"+
		"report and plots in "+quickDir()+"; its figures are not results")
	fs.BoolVar(&b.system, "system", true, "measure the system against its raw ceilings on the embedded stack")
	fs.BoolVar(&b.secure, "secure", true, "also measure create, commit → Kafka, POST → visible and the projection catch-up\n"+
		"with the services on a secured broker (TLS, SASL/SCRAM-SHA-512, ACLs), as a second line")
	fs.BoolVar(&b.peer, "peer", true, "measure the peer baseline (gin + Watermill SQL outbox + Forwarder to Kafka, bench/peer/watermill)\n"+
		"next to the writer: create rate over HTTP and end to end, and commit → Kafka latency")
	fs.BoolVar(&b.peerOnly, "peer-only", false, "measure the peer figure alone (implies -peer, -secure=false, -gobench=false); see make peer")
	peerConc := fs.String("peer-conc", "8,32", "concurrencies of the peer figure")
	fs.BoolVar(&b.goBench, "gobench", true, "run the Go benchmarks (go test -bench) of every package that has one")
	fs.StringVar(&b.goBenchTime, "gobench-time", "", "-benchtime of the Go benchmarks (default go test's, 1s)")
	fs.StringVar(&b.soakSeries, "soak-plots", "", "draw the series file of `make soak` (chaos/soak/series.json) as PNGs beside it\n"+
		"(lag, freshness, RSS, goroutines over time) at -plot-dpi, and exit without benchmarking")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	def := func(name string, apply func()) {
		if !set[name] {
			apply()
		}
	}
	if b.peerOnly {
		// A partial report: never over the real RESULTS.md and plots.
		def("out", func() { b.out = filepath.Join(peerDir(), "RESULTS.md") })
		def("plots", func() { b.plotsDir = filepath.Join(peerDir(), "plots") })
	}
	if b.quick {
		def("runs", func() { b.runs = 1 })
		def("dur", func() { b.dur = time.Second })
		def("rate-dur", func() { b.rateDur = 3 * time.Second })
		def("proj-events", func() { b.projEvents = 1000 })
		def("gobench-time", func() { b.goBenchTime = "1x" })
		if !b.peerOnly {
			def("out", func() { b.out = filepath.Join(quickDir(), "RESULTS.md") })
			def("plots", func() { b.plotsDir = filepath.Join(quickDir(), "plots") })
		}
	}
	var err error
	if b.concs, err = intList(*conc); err != nil {
		return nil, err
	}
	if b.readConcs, err = intList(*readConc); err != nil {
		return nil, err
	}
	if b.peerConcs, err = intList(*peerConc); err != nil {
		return nil, err
	}
	if b.peerOnly {
		b.peer, b.system, b.secure, b.goBench = true, true, false, false
	}
	if b.runs < 1 || b.rate < 1 || b.projEvents < 1 || b.plotDPI < 1 {
		return nil, errors.New("-runs, -rate, -proj-events and -plot-dpi must be positive")
	}
	if !b.system && !b.goBench {
		return nil, errors.New("-system=false and -gobench=false leave nothing to run")
	}
	return b, nil
}

func runBench(ctx context.Context, args []string) error {
	b, err := parse(args)
	if err != nil {
		return err
	}
	if b.soakSeries != "" {
		written, err := soakPlots(b.soakSeries, b.plotDPI)
		for _, f := range written {
			fmt.Println("soak plot written to", f)
		}
		return err
	}
	started := time.Now()
	m := describeMachine(ctx)
	res := &results{}
	if b.system {
		if res, err = measureSystem(ctx, b); err != nil {
			return err
		}
	}
	res.machine = m
	if b.goBench {
		b.logf("Go benchmarks of the services: -count %d, -benchtime %s", b.runs, cmp.Or(b.goBenchTime, "1s (default)"))
		if res.goBench, err = runGoBenchmarks(ctx, b, runtime.GOMAXPROCS(0)); err != nil {
			return err
		}
	}
	res.elapsed = time.Since(started)

	outAbs, err := filepath.Abs(b.out)
	if err != nil {
		return err
	}
	plotsAbs, err := filepath.Abs(b.plotsDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(outAbs), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if res.plots, err = res.writePlots(b, plotsAbs, filepath.Dir(outAbs)); err != nil {
		return err
	}
	report := res.markdown(b)
	fmt.Println(report)
	if err := os.WriteFile(outAbs, []byte(report), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	b.logf("report written to %s, plots to %s, in %s", outAbs, plotsAbs, res.elapsed.Round(time.Second))
	if g := res.goBench; g != nil && len(g.failures) > 0 {
		return fmt.Errorf("%d package(s) of Go benchmarks failed (see the report)", len(g.failures))
	}
	return nil
}

// measureSystem starts the embedded stack, builds the services, measures
// every figure and stops the stack again.
func measureSystem(ctx context.Context, b *bench) (*results, error) {
	workDir, err := os.MkdirTemp("", "benchrun-")
	if err != nil {
		return nil, err
	}
	if !b.keep {
		defer os.RemoveAll(workDir)
	}
	b.logf("work directory %s (service logs)", workDir)
	s, err := startStack(ctx, workDir)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if b.secure {
		if err := s.startSecured(ctx, b.runs); err != nil {
			return nil, err
		}
	}
	b.logf("building the service binaries")
	if err := s.build(ctx); err != nil {
		return nil, err
	}
	if b.peer {
		b.logf("building the Watermill peer (bench/%s, GOWORK=off)", peerModule)
		if err := s.buildPeer(ctx); err != nil {
			return nil, err
		}
	}
	return measure(ctx, b, s)
}
