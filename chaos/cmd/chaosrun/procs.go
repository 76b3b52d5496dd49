package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// service is one supervised child process: a service binary or an
// infrastructure child of chaosrun. It keeps its command line so that it can
// be restarted on the same port and data.
type service struct {
	name string
	bin  string
	args []string
	env  []string
	addr string // host:port of its HTTP API or its listener
	// metricsAddr is the host:port of a service's admin listener (GET
	// /metrics, METRICS_ADDR); "" for the infrastructure children.
	metricsAddr string
	ready       func(ctx context.Context, s *service) error
	logf        *os.File

	op sync.Mutex // held by a fault from the signal until the restart

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	leading  bool   // the current instance leads the outbox relay (see relayLine)
	line     string // the first "READY" line of an infrastructure child
	readyCh  chan string
	expected bool // the current instance was stopped on purpose
	starts   int
	tail     []string
	marks    []logMark // watched log records, over every instance
}

// logMark is a watched log record of a service (see watchedLogs).
type logMark struct {
	msg      string
	instance int // which start of the service logged it
	// gen counts the "joined generation" records this instance logged up to
	// and including this one: records with the same instance and gen were
	// logged within one consumer-group generation of one member.
	gen       int
	at        time.Time
	partition int   // of a "poison message"; -1 otherwise
	offset    int64 // of a "poison message"; -1 otherwise
}

// watchedLogs are the log messages the checks need: a reader joining a
// consumer-group generation, a reader about to dead-letter a poison
// message, and dead-letter writes that failed and are sent again.
var watchedLogs = []string{logJoinedGeneration, logPoison, logEventDLQRetry, logCommandDLQRetry}

const (
	logJoinedGeneration = "joined generation"            // libs/kafkakit/groupconsumer (readers' and writers' groups)
	logPoison           = "poison message"               // services/query/internal/ports/consumer
	logEventDLQRetry    = "write dead letters; retrying" // libs/kafkakit/groupconsumer, in a reader
	logCommandDLQRetry  = "write dead letters; retrying" // libs/kafkakit/groupconsumer, in a writer
)

// Log lines of the writers' outbox relay that tell whether it leads. A
// writer leads from its "is leading" line until it logs that it lost its
// lease (the relay's leadership is a lease that a frozen or cut-off leader
// loses after OUTBOX_LEASE_TTL) or its database session (which, with a
// session-bound lock, ends the leadership too), or until it exits.
const (
	logRelayLeading     = "outbox relay is leading"
	logRelayLostLease   = "outbox relay lost its lease"
	logRelayLostSession = "outbox relay lost its database session"
)

// relayLine reports what line says about the relay's leadership: +1 gained,
// -1 lost, 0 nothing. A line is matched by substring, so that a longer
// message ("outbox relay lost its lease; standing by") counts too.
func relayLine(line string) int {
	switch {
	case strings.Contains(line, logRelayLeading):
		return 1
	case strings.Contains(line, logRelayLostLease), strings.Contains(line, logRelayLostSession):
		return -1
	}
	return 0
}

// lineTime is the "time" of a JSON log line, or now when it has none.
func lineTime(line string) time.Time {
	var rec struct {
		Time time.Time `json:"time"`
	}
	if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rec) == nil && !rec.Time.IsZero() {
		return rec.Time
	}
	return time.Now()
}

// start starts a new instance and waits until it is ready.
func (s *service) start(ctx context.Context) error {
	s.mu.Lock()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}, s.env...)
	r, w, err := os.Pipe()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.cmd = cmd
	s.done = make(chan struct{})
	s.err = nil
	s.leading = false
	s.expected = false
	s.readyCh = make(chan string, 1)
	s.starts++
	s.tail = nil
	n := s.starts
	done := s.done
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	w.Close()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		s.scan(r, n)
		r.Close()
	}()
	go func() {
		err := cmd.Wait()
		<-scanned
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(done)
	}()
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		err := s.ready(rctx, s)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			s.mu.Lock()
			s.expected = true // reported by the caller, not the supervisor
			s.mu.Unlock()
			return fmt.Errorf("%s exited while starting: %v\n%s", s.name, s.exitErr(), s.lastLines(30))
		case <-rctx.Done():
			return fmt.Errorf("%s not ready within 90s: %v\n%s", s.name, err, s.lastLines(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startRetry starts s, retrying up to 5 times one second apart (an
// orchestrator would restart a process that exits while its dependencies
// are still coming back); note receives each failed attempt.
func (s *service) startRetry(ctx context.Context, note func(string, ...any)) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = s.start(ctx); err == nil || ctx.Err() != nil {
			return err
		}
		note("start %s, attempt %d: %v", s.name, attempt, firstLine(err.Error()))
		time.Sleep(time.Second)
	}
	return err
}

func firstLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	out := lines[0]
	if len(lines) > 1 {
		out += " / " + lines[len(lines)-1]
	}
	return out
}

func (s *service) scan(r io.Reader, n int) {
	gen := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if s.logf != nil {
			fmt.Fprintf(s.logf, "[%s#%d] %s\n", s.name, n, line)
		}
		s.mu.Lock()
		switch relayLine(line) {
		case 1:
			s.leading = true
			// Kept apart from watchedLogs: matched by substring, and the
			// takeover check needs every instance's records.
			s.marks = append(s.marks, logMark{msg: logRelayLeading, instance: n, gen: gen, at: lineTime(line), partition: -1, offset: -1})
		case -1:
			s.leading = false
			if strings.Contains(line, logRelayLostLease) {
				s.marks = append(s.marks, logMark{msg: logRelayLostLease, instance: n, gen: gen, at: lineTime(line), partition: -1, offset: -1})
			}
		}
		if m, ok := watchedLine(line); ok {
			if m.msg == logJoinedGeneration {
				gen++
			}
			m.instance, m.gen = n, gen
			s.marks = append(s.marks, m)
		}
		if strings.HasPrefix(line, "READY ") {
			select {
			case s.readyCh <- strings.TrimPrefix(line, "READY "):
			default:
			}
		}
		if len(s.tail) >= 400 {
			s.tail = append(s.tail[:0], s.tail[200:]...)
		}
		s.tail = append(s.tail, line)
		s.mu.Unlock()
	}
}

// watchedLine reports whether line is a JSON log record of one of
// watchedLogs, and returns it (instance and gen left to the caller).
func watchedLine(line string) (logMark, bool) {
	if !strings.HasPrefix(line, "{") {
		return logMark{}, false
	}
	interesting := false
	for _, m := range watchedLogs {
		interesting = interesting || strings.Contains(line, `"msg":"`+m+`"`)
	}
	if !interesting {
		return logMark{}, false
	}
	rec := struct {
		Time      time.Time `json:"time"`
		Msg       string    `json:"msg"`
		Partition *int      `json:"partition"`
		Offset    *int64    `json:"offset"`
	}{}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Time.IsZero() || !slices.Contains(watchedLogs, rec.Msg) {
		return logMark{}, false
	}
	m := logMark{msg: rec.Msg, at: rec.Time, partition: -1, offset: -1}
	if rec.Partition != nil && rec.Offset != nil {
		m.partition, m.offset = *rec.Partition, *rec.Offset
	}
	return m, true
}

// logMarks returns the watched log records msg of s, over every instance.
func (s *service) logMarks(msg string) []logMark {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logMark
	for _, m := range s.marks {
		if m.msg == msg {
			out = append(out, m)
		}
	}
	return out
}

func (s *service) lastLines(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail[max(0, len(s.tail)-n):], "\n")
}

func (s *service) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *service) isLeading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading
}

func (s *service) running() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig to the current instance, marking the stop as expected
// when expect is set.
func (s *service) signal(sig syscall.Signal, expect bool) {
	s.mu.Lock()
	if expect {
		s.expected = true
	}
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// waitExit waits up to d for the current instance to exit.
func (s *service) waitExit(d time.Duration) (error, bool) {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
		return s.exitErr(), true
	case <-time.After(d):
		return nil, false
	}
}

// httpReady is the readiness check of a service: GET /readyz answers 200.
func httpReady(ctx context.Context, s *service) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz %d", resp.StatusCode)
	}
	return nil
}

// lineReady is the readiness check of an infrastructure child: it printed
// its READY line.
func lineReady(ctx context.Context, s *service) error {
	s.mu.Lock()
	ch := s.readyCh
	s.mu.Unlock()
	select {
	case l := <-ch:
		s.mu.Lock()
		s.line = l
		s.mu.Unlock()
		return nil
	case <-time.After(200 * time.Millisecond):
		return fmt.Errorf("no READY line yet")
	case <-ctx.Done():
		return ctx.Err()
	}
}

var probeClient = &http.Client{Timeout: 3 * time.Second}

// freePort returns a loopback address with a port free right now, below
// the kernel's ephemeral range (32768 and up on Linux). The stack reserves
// its ports at the start and binds them later, again after every restart;
// a port from the ephemeral range could meanwhile be handed to any other
// process that listens on port 0 (the tests running beside this one) and
// fail a start with "address already in use".
func freePort() (string, error) {
	const lo, hi = 20000, 32000
	for range 200 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo)))
		if err != nil {
			continue // taken: try another
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port in [%d, %d) after 200 tries", lo, hi)
}

// getJSON decodes GET url into out and returns the status.
func getJSON(ctx context.Context, url string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", url, err)
		}
	}
	return resp.StatusCode, nil
}
