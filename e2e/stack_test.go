package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
)

// Topics of the system, created up front with topicPartitions partitions.
const (
	eventsTopic     = "topic-eventos-compania"
	commandsTopic   = "topic-comando-crear-compania"
	commandsDLQ     = commandsTopic + ".dlq"
	topicPartitions = 6
)

// binaries are the service executables built once by TestMain.
var binaries struct {
	command, query string
}

// TestMain builds the two service binaries from the workspace into a
// temporary directory, runs the tests and removes the directory.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "companias-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	if err := buildServices(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the services:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built the service binaries in %s\n", time.Since(start).Round(time.Millisecond))
	}
	binaries.command = filepath.Join(dir, "commandd")
	binaries.query = filepath.Join(dir, "queryd")
	return m.Run()
}

// buildServices runs one `go build` of both service commands from the
// workspace root (found through `go env GOWORK`). When the tests run with
// -race, the services are built with -race too, so a data race in a service
// under this load makes it exit non-zero (66) and fails the test;
// E2E_CHILD_RACE=0 or 1 overrides that choice.
func buildServices(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	out, err := exec.Command(goBin, "env", "GOWORK").Output()
	if err != nil {
		return fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return errors.New("the e2e tests must run inside the go.work workspace")
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	race := raceEnabled
	switch os.Getenv("E2E_CHILD_RACE") {
	case "0":
		race = false
	case "1":
		race = true
	}
	if race {
		args = append(args, "-race")
	}
	args = append(args,
		"github.com/propalpes/companias/services/command/cmd/commandd",
		"github.com/propalpes/companias/services/query/cmd/queryd")
	cmd := exec.Command(goBin, args...)
	cmd.Dir = filepath.Dir(work)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %w\n%s", cmd.Args, err, out)
	}
	return nil
}

// infra is the embedded infrastructure of one test: a Kafka broker with the
// topics created, a MongoDB-wire server over its own PostgreSQL database, and
// the writer's PostgreSQL database.
type infra struct {
	broker    *kafkabroker.Broker
	mongo     *mongowire.Server
	writerDSN string
	db        *pgxpool.Pool // the writer's database, for direct checks
}

// startInfra starts the infrastructure of t; t.Cleanup stops it after the
// services (cleanups run last-in first-out and services start later).
func startInfra(t *testing.T) *infra {
	t.Helper()
	return startInfraWith(t, nil)
}

// startInfraWith is startInfra with a broker secured by sec (nil: plaintext);
// on a secured broker the admin principal creates the topics.
func startInfraWith(t *testing.T, sec *kafkabroker.Security) *infra {
	t.Helper()
	ctx := t.Context()
	writerDSN := pgtest.NewDatabase(t)
	viewsDSN := pgtest.NewDatabase(t)

	broker := kafkabroker.StartT(t, kafkabroker.Options{Security: sec}, topicPartitions,
		eventsTopic, eventsTopic+".dlq", commandsTopic, commandsDLQ)

	mongo, err := mongowire.Start(ctx, mongowire.Options{Handler: mongowire.HandlerPostgreSQL, PostgreSQLURL: viewsDSN})
	if err != nil {
		t.Fatalf("start mongowire: %v", err)
	}
	t.Cleanup(func() {
		if err := mongo.Close(); err != nil {
			t.Errorf("close mongowire: %v", err)
		}
	})
	// FerretDB scans a whole collection for every _id lookup unless the
	// index workaround exists; collections appear as the reader creates
	// them, so keep ensuring it (as devstack does).
	runtest.Start(t, func(ctx context.Context) error {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			_ = mongo.EnsureIDIndexes(ctx) // collections may not exist yet
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
	})

	pcfg, err := pgxpool.ParseConfig(writerDSN)
	if err != nil {
		t.Fatalf("parse writer DSN: %v", err)
	}
	pcfg.MaxConns = 2 // PostgreSQL's max_connections is shared by every test
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatalf("open writer database: %v", err)
	}
	t.Cleanup(pool.Close)
	return &infra{broker: broker, mongo: mongo, writerDSN: writerDSN, db: pool}
}

// shutdownTimeout is the SHUTDOWN_TIMEOUT given to both services.
const shutdownTimeout = 10 * time.Second

// startWriter starts the command service on a free port.
func (in *infra) startWriter(t *testing.T, extra ...string) *proc {
	t.Helper()
	env := append([]string{
		"HTTP_ADDR=127.0.0.1:0",
		"METRICS_ADDR=127.0.0.1:0", // the fixed default would collide between services
		"DATABASE_URL=" + in.writerDSN,
		"KAFKA_BROKERS=" + in.broker.Addr(),
		"KAFKA_TOPIC_PARTITIONS=6",
		"KAFKA_COMMANDS_GROUP_ID=e2e-command",
		"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
		"OUTBOX_POLL_INTERVAL=200ms",
		"LOG_LEVEL=info",
	}, extra...)
	return startProc(t, "writer", binaries.command, env)
}

// startReader starts the query service on a free port.
func (in *infra) startReader(t *testing.T, extra ...string) *proc {
	t.Helper()
	env := append([]string{
		"HTTP_ADDR=127.0.0.1:0",
		"METRICS_ADDR=127.0.0.1:0", // the fixed default would collide between services
		"KAFKA_BROKERS=" + in.broker.Addr(),
		"KAFKA_TOPIC_PARTITIONS=6",
		"KAFKA_GROUP_ID=e2e-query",
		"MONGO_URI=" + in.mongo.URI(),
		"MONGO_DATABASE=e2e_views",
		"SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
		"LOG_LEVEL=info",
	}, extra...)
	return startProc(t, "reader", binaries.query, env)
}

// proc is a running service binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	base string // http://host:port of its HTTP API

	logs *lineLog
	done chan struct{} // closed when the process has exited
	err  error         // the result of Wait, set before done is closed

	stopOnce sync.Once
}

// startProc starts bin with env, waits until it logs its listening address
// and answers GET /readyz with 200, and registers a cleanup that stops it
// with SIGTERM and fails the test on a non-zero exit.
func startProc(t *testing.T, name, bin string, env []string) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	cmd := exec.Command(bin)
	// A minimal environment: the developer's variables must not leak in.
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	if v := os.Getenv("GORACE"); v != "" {
		base = append(base, "GORACE="+v)
	}
	cmd.Env = append(base, env...)
	cmd.Stdout, cmd.Stderr = w, w
	// The kernel kills the child if the test process dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, logs: newLineLog(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	w.Close()
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		p.logs.scan(r)
		r.Close()
	}()
	go func() {
		err := cmd.Wait()
		<-scanned
		p.err = err
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })

	select {
	case addr := <-p.logs.addr:
		p.base = "http://" + addr
	case <-p.done:
		t.Fatalf("%s exited before listening: %v\n%s", name, p.err, p.logs.tail(50))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not log its listening address within 60s\n%s", name, p.logs.tail(50))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, _, err := doJSON(t.Context(), http.MethodGet, p.base+"/readyz", nil, nil)
		if err == nil && status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60s (status %d, error %v)\n%s", name, status, err, p.logs.tail(50))
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited while starting: %v\n%s", name, p.err, p.logs.tail(50))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p
}

// signal sends SIGTERM to p if it is still running.
func (p *proc) terminate() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// wait waits up to timeout for p to exit and returns how it ended; it kills
// p and reports an error when it did not exit in time.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		if p.err != nil {
			if race := p.logs.raceReport(); race != "" {
				return fmt.Errorf("%s exited with %w after a data race report:\n%s", p.name, p.err, race)
			}
			return fmt.Errorf("%s exited with %w", p.name, p.err)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, timeout)
	}
}

// stop sends SIGTERM and fails t unless p exits with status 0 within the
// shutdown timeout (plus a margin for process teardown). It runs once.
func (p *proc) stop(t *testing.T) {
	p.stopOnce.Do(func() {
		p.terminate()
		if err := p.wait(shutdownTimeout + 5*time.Second); err != nil {
			t.Errorf("%v\n%s", err, p.logs.tail(80))
		} else if t.Failed() {
			t.Logf("last log lines of %s:\n%s", p.name, p.logs.tail(40))
		}
	})
}

// lineLog keeps the last lines a child wrote and reports the address of
// its HTTP API: both services log JSON "http api listening" with an "addr"
// key (and other listeners, such as the metrics one, other messages).
type lineLog struct {
	mu    sync.Mutex
	lines []string
	race  []string // the first lines of the first data race report
	addr  chan string
}

const (
	maxLogLines  = 4000
	maxRaceLines = 200
)

func newLineLog() *lineLog { return &lineLog{addr: make(chan string, 1)} }

func (l *lineLog) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if !sent {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Addr != "" && rec.Msg == "http api listening" {
				l.addr <- rec.Addr
				sent = true
			}
		}
		l.mu.Lock()
		if (len(l.race) > 0 || strings.Contains(line, "WARNING: DATA RACE")) && len(l.race) < maxRaceLines {
			l.race = append(l.race, line)
		}
		if len(l.lines) == maxLogLines {
			l.lines = append(l.lines[:0], l.lines[maxLogLines/2:]...)
		}
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
}

func (l *lineLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := max(0, len(l.lines)-n)
	return strings.Join(l.lines[from:], "\n")
}

// raceReport returns the start of the first data race report ("" if none).
func (l *lineLog) raceReport() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.race, "\n")
}

// httpClient is shared by every test; it keeps enough idle connections for
// the concurrent clients.
var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	},
}

// doJSON sends body (JSON-encoded unless nil) with the extra headers and
// decodes a JSON answer into a generic value. It returns the status, the
// response headers and the transport error, if any; out may be nil.
func doJSON(ctx context.Context, method, url string, body any, hdr map[string]string) (int, http.Header, error) {
	return doInto(ctx, method, url, body, hdr, nil)
}

// doInto is doJSON decoding a 2xx answer into out (when out is not nil).
func doInto(ctx context.Context, method, url string, body any, hdr map[string]string, out any) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, fmt.Errorf("read %s %s answer: %w", method, url, err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("decode %s %s answer %q: %w", method, url, data, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// compania is a company as both services render it in JSON (the reader adds
// fields that are ignored here).
type compania struct {
	ID                 string    `json:"id"`
	Nombre             string    `json:"nombre"`
	Email              string    `json:"email"`
	Identificacion     string    `json:"identificacion"`
	Estado             string    `json:"estado"`
	MotivoRechazo      *string   `json:"motivo_rechazo"`
	FechaCreacion      time.Time `json:"fecha_creacion"`
	FechaActualizacion time.Time `json:"fecha_actualizacion"`
	Version            int64     `json:"version"`
	// Historial is the reader's list of estado changes, oldest first (the
	// writer does not send it).
	Historial []cambioEstado `json:"historial"`
}

// cambioEstado is one entry of a view's historial.
type cambioEstado struct {
	Estado  string    `json:"estado"`
	Fecha   time.Time `json:"fecha"`
	Version int64     `json:"version"`
	Motivo  *string   `json:"motivo"`
}

// historialProblem describes how the view v's historial disagrees with the
// estado of row, the company's PostgreSQL row ("" when it agrees): it starts
// with PENDIENTE at version 1 and creation time, and a company that left
// PENDIENTE has exactly one more entry, for its estado (with the motivo of a
// rejection).
func historialProblem(row compania, v compania) string {
	h := v.Historial
	wantLen := 2
	if row.Estado == "PENDIENTE" {
		wantLen = 1
	}
	switch {
	case len(h) != wantLen:
		return fmt.Sprintf("historial has %d entries, want %d for estado %s: %+v", len(h), wantLen, row.Estado, h)
	case h[0].Estado != "PENDIENTE" || h[0].Version != 1 || !h[0].Fecha.Equal(row.FechaCreacion):
		return fmt.Sprintf("historial starts with %+v, want PENDIENTE v1 at %s", h[0], row.FechaCreacion)
	case wantLen == 2 && (h[1].Estado != row.Estado || h[1].Version < 2 || h[1].Version > row.Version):
		return fmt.Sprintf("historial ends with %+v, want %s at a version in 2..%d", h[1], row.Estado, row.Version)
	case wantLen == 2 && str(h[1].Motivo) != str(row.MotivoRechazo):
		return fmt.Sprintf("historial motivo %s, want %s", str(h[1].Motivo), str(row.MotivoRechazo))
	}
	return ""
}

// diff lists the fields in which got differs from want ("" when equal).
func (want compania) diff(got compania) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: want %v, got %v", field, w, g)) }
	if want.ID != got.ID {
		add("id", want.ID, got.ID)
	}
	if want.Nombre != got.Nombre {
		add("nombre", want.Nombre, got.Nombre)
	}
	if want.Email != got.Email {
		add("email", want.Email, got.Email)
	}
	if want.Identificacion != got.Identificacion {
		add("identificacion", want.Identificacion, got.Identificacion)
	}
	if want.Estado != got.Estado {
		add("estado", want.Estado, got.Estado)
	}
	if str(want.MotivoRechazo) != str(got.MotivoRechazo) {
		add("motivo_rechazo", str(want.MotivoRechazo), str(got.MotivoRechazo))
	}
	if !want.FechaCreacion.Equal(got.FechaCreacion) {
		add("fecha_creacion", want.FechaCreacion, got.FechaCreacion)
	}
	if !want.FechaActualizacion.Equal(got.FechaActualizacion) {
		add("fecha_actualizacion", want.FechaActualizacion, got.FechaActualizacion)
	}
	if want.Version != got.Version {
		add("version", want.Version, got.Version)
	}
	return strings.Join(d, "; ")
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return fmt.Sprintf("%q", *p)
}

// pgCompanias reads every row of the writer's companias table by id.
func (in *infra) pgCompanias(t *testing.T) map[string]compania {
	t.Helper()
	rows, err := in.db.Query(t.Context(), `SELECT id::text, nombre, email, identificacion, estado, motivo_rechazo,
		fecha_creacion, fecha_actualizacion, version FROM companias`)
	if err != nil {
		t.Fatalf("query companias: %v", err)
	}
	defer rows.Close()
	out := make(map[string]compania)
	for rows.Next() {
		var c compania
		if err := rows.Scan(&c.ID, &c.Nombre, &c.Email, &c.Identificacion, &c.Estado, &c.MotivoRechazo,
			&c.FechaCreacion, &c.FechaActualizacion, &c.Version); err != nil {
			t.Fatalf("scan companias: %v", err)
		}
		out[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read companias: %v", err)
	}
	return out
}

// readView gets the reader's view of id once it reaches minVersion, asking
// the reader to wait up to 5 s per request and retrying its 503 answers
// until deadline.
func readView(ctx context.Context, reader *proc, id string, minVersion int64, deadline time.Time) (compania, error) {
	url := fmt.Sprintf("%s/v1/companias/%s?min_version=%d&wait=5s", reader.base, id, minVersion)
	for {
		var v compania
		status, _, err := doInto(ctx, http.MethodGet, url, nil, nil, &v)
		if err == nil && status == http.StatusOK {
			return v, nil
		}
		if err == nil && status != http.StatusServiceUnavailable {
			return compania{}, fmt.Errorf("GET %s: status %d", url, status)
		}
		if time.Now().After(deadline) {
			return compania{}, fmt.Errorf("GET %s: not reached before the deadline (status %d, error %v)", url, status, err)
		}
		if err != nil { // a transport error: back off a little
			select {
			case <-ctx.Done():
				return compania{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// estadisticas is the reader's GET /v1/estadisticas answer.
type estadisticas struct {
	Total     int64            `json:"total"`
	PorEstado map[string]int64 `json:"por_estado"`
}
