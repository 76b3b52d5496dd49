package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/seedwork/retry"
)

// stack is the embedded infrastructure of one benchmark run: a kfake
// broker, FerretDB on PostgreSQL, and fresh PostgreSQL databases.
type stack struct {
	admin     string
	prefix    string // unique database name prefix of this run
	dbs       []string
	broker    *kafkabroker.Broker
	secured   *securedKafka // nil with -secure=false
	mongo     *mongowire.Server
	workDir   string
	cmdBin    string
	queryBin  string
	peerBin   string // the Watermill peer (bench/peer/watermill), when built
	stopIndex context.CancelFunc
	indexDone chan struct{}
}

// newDatabase creates the database prefix_suffix and returns its URL.
func (s *stack) newDatabase(ctx context.Context, suffix string) (string, error) {
	name := s.prefix + "_" + suffix
	if err := pgtest.EnsureDatabase(ctx, s.admin, name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	s.dbs = append(s.dbs, name)
	return pgtest.WithDatabase(s.admin, name)
}

func startStack(ctx context.Context, workDir string) (_ *stack, err error) {
	s := &stack{admin: pgtest.AdminURL(), prefix: fmt.Sprintf("bench_%x", time.Now().UnixNano()&0xffffffffff), workDir: workDir}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	ferretURL, err := s.newDatabase(ctx, "views")
	if err != nil {
		return nil, err
	}
	if s.broker, err = kafkabroker.Start(kafkabroker.Options{}); err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if s.mongo, err = mongowire.Start(ctx, mongowire.Options{PostgreSQLURL: ferretURL, Logger: quiet}); err != nil {
		return nil, fmt.Errorf("start FerretDB: %w", err)
	}
	// Like devstack: FerretDB needs the GIN _id index workaround on every
	// collection, which appear as the services create them.
	ictx, cancel := context.WithCancel(context.Background())
	s.stopIndex, s.indexDone = cancel, make(chan struct{})
	go func() {
		defer close(s.indexDone)
		for {
			_ = s.mongo.EnsureIDIndexes(ictx)
			select {
			case <-ictx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return s, nil
}

// plain is the plaintext broker as the bench's own clients reach it.
func (s *stack) plain() kafkaSide {
	return kafkaSide{addr: s.broker.Addr(), cfg: kafkakit.Config{Brokers: []string{s.broker.Addr()}, ClientID: benchClientID}}
}

// build compiles the two service binaries into the work directory.
func (s *stack) build(ctx context.Context) error {
	s.cmdBin = filepath.Join(s.workDir, "companias-command")
	s.queryBin = filepath.Join(s.workDir, "companias-query")
	for _, b := range []struct{ out, pkg string }{
		{s.cmdBin, "github.com/propalpes/companias/services/command/cmd/commandd"},
		{s.queryBin, "github.com/propalpes/companias/services/query/cmd/queryd"},
	} {
		c := exec.CommandContext(ctx, "go", "build", "-o", b.out, b.pkg)
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b.pkg, err)
		}
	}
	return nil
}

func (s *stack) close() {
	if s.stopIndex != nil {
		s.stopIndex()
		<-s.indexDone
	}
	if s.mongo != nil {
		_ = s.mongo.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
	if s.secured != nil {
		s.secured.broker.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: drop databases:", err)
		return
	}
	defer conn.Close(ctx)
	for _, db := range s.dbs {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun: drop database:", db, err)
		}
	}
}

// service is a running service binary.
type service struct {
	name string
	addr string // HTTP host:port
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done is closed
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startService runs bin with env (plus HTTP_ADDR on a free port, and no
// metrics listener), its
// output going to workDir/name.log, and waits until /readyz answers 200.
func (s *stack) startService(ctx context.Context, name, bin string, env ...string) (*service, error) {
	sv, err := s.spawn(name, bin, env...)
	if err != nil {
		return nil, err
	}
	if err := sv.waitReady(ctx, 90*time.Second); err != nil {
		sv.stop()
		return nil, err
	}
	return sv, nil
}

// spawn starts the service without waiting for it. It reaches the
// plaintext broker unless env sets KAFKA_BROKERS (see securedKafka.env).
func (s *stack) spawn(name, bin string, env ...string) (*service, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(s.workDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	c := exec.Command(bin)
	// Later entries win: env may override KAFKA_BROKERS, not HTTP_ADDR.
	// METRICS_ADDR off: the bench reads no metrics, and the services' fixed
	// loopback defaults would collide between the ones it runs at once.
	c.Env = append(os.Environ(), "LOG_LEVEL=warn", "METRICS_ADDR=off", "KAFKA_BROKERS="+s.broker.Addr())
	c.Env = append(append(c.Env, env...), "HTTP_ADDR="+addr)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	sv := &service{name: name, addr: addr, cmd: c, done: make(chan struct{})}
	go func() { sv.err = c.Wait(); logf.Close(); close(sv.done) }()
	return sv, nil
}

func (sv *service) url(path string) string { return "http://" + sv.addr + path }

func (sv *service) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-sv.done:
			return fmt.Errorf("%s exited before it was ready: %v (see its log)", sv.name, sv.err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sv.url("/readyz"), nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not ready within %s", sv.name, within)
}

// stop sends SIGTERM and waits up to 20 s, then kills. It is idempotent.
func (sv *service) stop() {
	if sv == nil || sv.cmd.Process == nil {
		return
	}
	select {
	case <-sv.done:
		return
	default:
	}
	_ = sv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sv.done:
	case <-time.After(20 * time.Second):
		_ = sv.cmd.Process.Kill()
		<-sv.done
	}
}

// sleepCtx waits d with retry.Sleep; it returns nil once d elapsed (at
// once for d ≤ 0 on a live ctx), or ctx's error if ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if !retry.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}

var errStatus = errors.New("unexpected HTTP status")
