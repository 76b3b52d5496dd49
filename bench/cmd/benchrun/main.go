// Command benchrun measures the PropAlpes Companies system end to end on
// the embedded stack (kfake broker, FerretDB on PostgreSQL, fresh
// PostgreSQL databases, the two service binaries built with go build) and
// compares each figure with a raw ceiling measured in the same run: pgx for
// the writer, kafka-go for the relay, mongo-driver for the reader. It prints
// a Markdown report and writes it to -out (bench/RESULTS.md by default).
//
// Usage (from bench/, see the Makefile):
//
//	go run ./cmd/benchrun [-runs 3] [-dur 3s] [-conc 1,8,32] [-rate 50] ...
//
// It needs PostgreSQL on PG_ADMIN_URL (default the local trust server) and
// the go tool on PATH. It is a benchmark, not a test: it runs for several
// minutes and its figures depend on the machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
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
	keep        bool
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

func parse(args []string) (*bench, error) {
	b := &bench{args: args, names: &names{run: strconv.FormatInt(time.Now().Unix()%1_000_000, 36)}}
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.IntVar(&b.runs, "runs", 3, "runs per figure (median and spread are over these)")
	fs.DurationVar(&b.dur, "dur", 3*time.Second, "length of each closed-loop throughput run")
	conc := fs.String("conc", "1,8,32", "concurrencies of the create benchmark")
	readConc := fs.String("read-conc", "1,8", "concurrencies of the read benchmark")
	fs.IntVar(&b.rate, "rate", 50, "fixed command rate (per second) of the latency figures")
	fs.DurationVar(&b.rateDur, "rate-dur", 10*time.Second, "length of each fixed-rate run")
	fs.IntVar(&b.projEvents, "proj-events", 5000, "events pre-loaded for the projection catch-up")
	fs.DurationVar(&b.projTimeout, "proj-timeout", 3*time.Minute, "longest wait for one projection catch-up")
	fs.StringVar(&b.out, "out", "RESULTS.md", "file the Markdown report is written to")
	fs.BoolVar(&b.keep, "keep", false, "keep the work directory (service logs and binaries)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if b.concs, err = intList(*conc); err != nil {
		return nil, err
	}
	if b.readConcs, err = intList(*readConc); err != nil {
		return nil, err
	}
	if b.runs < 1 || b.rate < 1 || b.projEvents < 1 {
		return nil, errors.New("-runs, -rate and -proj-events must be positive")
	}
	return b, nil
}

func runBench(ctx context.Context, args []string) error {
	b, err := parse(args)
	if err != nil {
		return err
	}
	started := time.Now()
	workDir, err := os.MkdirTemp("", "benchrun-")
	if err != nil {
		return err
	}
	if !b.keep {
		defer os.RemoveAll(workDir)
	}
	b.logf("work directory %s (service logs)", workDir)
	m := describeMachine(ctx)

	s, err := startStack(ctx, workDir)
	if err != nil {
		return err
	}
	defer s.close()
	b.logf("building the service binaries")
	if err := s.build(ctx); err != nil {
		return err
	}
	res, err := measure(ctx, b, s)
	if err != nil {
		return err
	}
	res.machine = m
	res.elapsed = time.Since(started)
	report := res.markdown(b)
	fmt.Println(report)
	if err := os.WriteFile(b.out, []byte(report), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	b.logf("report written to %s in %s", b.out, res.elapsed.Round(time.Second))
	return nil
}
