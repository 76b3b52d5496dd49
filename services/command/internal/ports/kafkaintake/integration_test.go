package kafkaintake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/app/command"
)

// intakeEnv is one test's broker, topics, consumer group and database.
type intakeEnv struct {
	t      *testing.T
	broker *kafkabroker.Broker
	topic  string
	dlq    string
	group  string
	dsn    string
	pool   *pgxpool.Pool
	tr     *kafka.Transport
	writer *kafka.Writer
}

func newIntakeEnv(t *testing.T, partitions int) *intakeEnv {
	t.Helper()
	ctx := context.Background()
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	topic := "cmds-" + suffix
	e := &intakeEnv{
		t:     t,
		topic: topic,
		dlq:   deadletter.Topic(topic),
		group: "companias-command-" + suffix,
		tr:    &kafka.Transport{},
	}
	e.broker = kafkabroker.StartT(t, kafkabroker.Options{}, partitions, e.topic, e.dlq)
	e.dsn = pgtest.NewDatabase(t)
	pool, err := postgres.Open(ctx, e.dsn, postgres.WithMaxConns(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	e.pool = pool
	e.writer = &kafka.Writer{Addr: kafka.TCP(e.broker.Addr()), Topic: e.topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, Transport: e.tr}
	t.Cleanup(func() { _ = e.writer.Close(); e.tr.CloseIdleConnections() })
	return e
}

// handler is the real use case on the real PostgreSQL repository, built
// with opts.
func (e *intakeEnv) handler(opts ...postgres.RepositoryOption) *command.CrearCompaniaHandler {
	return command.NewCrearCompaniaHandler(postgres.NewRepository(e.pool, opts...),
		func() string { return uuid.Must(uuid.NewV7()).String() }, time.Now, nil)
}

func (e *intakeEnv) consumer(cr Creator) (*Consumer, *logRecords) {
	e.t.Helper()
	logs := &logRecords{}
	c, err := New(Config{
		Brokers: []string{e.broker.Addr()}, GroupID: e.group, Topic: e.topic,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		MaxWait: 200 * time.Millisecond, CloseTimeout: 15 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond, JoinGroupBackoff: 100 * time.Millisecond,
	}, cr, slog.New(logs))
	if err != nil {
		e.t.Fatal(err)
	}
	return c, logs
}

func (e *intakeEnv) produce(msgs ...kafka.Message) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.writer.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
}

// committed returns the group's committed offset of a partition (-1: none).
func (e *intakeEnv) committed(partition int) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(e.broker.Addr()), Transport: e.tr}
	resp, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: e.group,
		Topics: map[string][]int{e.topic: {partition}}})
	if err != nil {
		e.t.Fatalf("offset fetch: %v", err)
	}
	if errors.Is(resp.Error, kafka.GroupIdNotFound) {
		return -1 // the group has not committed yet
	}
	if resp.Error != nil {
		e.t.Fatalf("offset fetch: %v", resp.Error)
	}
	for _, p := range resp.Topics[e.topic] {
		if p.Partition == partition {
			return p.CommittedOffset
		}
	}
	return -1
}

func (e *intakeEnv) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *intakeEnv) companias() int { return e.count(`SELECT count(*) FROM companias`) }

// deadLetters reads exactly n messages from partition 0 of the DLQ topic.
func (e *intakeEnv) deadLetters(n int) []kafka.Message {
	e.t.Helper()
	return e.broker.ReadT(e.t, e.dlq, 0, n)
}

func msg(key, value string) kafka.Message {
	return kafka.Message{Key: []byte(key), Value: []byte(value)}
}

func TestIntegrationCreatesCompaniaAndCommits(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 3)
	c, logs := e.consumer(e.handler())
	e.produce(
		msg("a", cmdJSON("cmd-a", "Alfa SAS", "100")),
		msg("b", cmdJSON("cmd-b", "Beta SAS", "200")),
		msg("c", cmdJSON("cmd-c", "Gamma SAS", "300")),
	)
	stop := start(t, c)
	eventually(t, "three companias", func() bool { return e.companias() == 3 })
	eventually(t, "offsets committed", func() bool {
		sum := int64(0)
		for p := range 3 {
			if o := e.committed(p); o > 0 {
				sum += o
			}
		}
		return sum == 3
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := e.count(`SELECT count(*) FROM idempotency_keys WHERE scope = $1`, "kafka:"+e.topic); n != 3 {
		t.Errorf("%d idempotency records in scope kafka:%s, want 3", n, e.topic)
	}
	if n := e.count(`SELECT count(*) FROM outbox`); n != 3 {
		t.Errorf("%d outbox rows, want 3", n)
	}
	if n := len(logs.messages("command dead-lettered")); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

func TestIntegrationRedeliveredCommandCreatesOnce(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 1)
	c, _ := e.consumer(e.handler())
	e.produce(msg("k", validCmd), msg("k", validCmd))
	stop := start(t, c)
	eventually(t, "both committed", func() bool { return e.committed(0) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Sent a third time, to a restarted consumer.
	e.produce(msg("k", validCmd))
	c2, _ := e.consumer(e.handler())
	start(t, c2)
	eventually(t, "third committed", func() bool { return e.committed(0) == 3 })
	if n := e.companias(); n != 1 {
		t.Errorf("%d companias, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM idempotency_keys`); n != 1 {
		t.Errorf("%d idempotency records, want 1", n)
	}
}

func TestIntegrationDeadLettersAndMovesOn(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 1)
	c, logs := e.consumer(e.handler())
	cases := []struct {
		name, value, reason string
		errText             []string
	}{
		{"malformed JSON", `{"id":`, deadletter.ReasonMalformed, []string{"malformed command"}},
		{"unknown field", `{"id":"x","data":{},"extra":1}`, deadletter.ReasonMalformed, []string{`unknown field "extra"`}},
		{"missing id", `{"data":{"nombre":"A","email":"a@b.co","identificacion":"1"}}`, deadletter.ReasonMalformed, []string{"id is required"}},
		{"invalid email", `{"id":"bad-email","data":{"nombre":"Delta","email":"not-an-email","identificacion":"400"}}`,
			deadletter.ReasonInvalid, []string{"email"}},
		{"all fields invalid", `{"id":"bad-all","data":{"nombre":"","email":"x","identificacion":"!!"}}`,
			deadletter.ReasonInvalid, []string{"nombre", "email", "identificacion"}},
		{"duplicate compania", cmdJSON("dup", "Acme SAS", "900123456-7"), deadletter.ReasonConflict, []string{"compania"}},
		{"same id, other body", `{"id":"cmd-1","data":{"nombre":"Otra","email":"o@acme.co","identificacion":"1"}}`,
			deadletter.ReasonConflict, []string{"Idempotency-Key"}},
	}
	msgs := []kafka.Message{msg("first", validCmd)} // offset 0 creates Acme SAS
	for _, tc := range cases {
		m := msg("bad", tc.value)
		m.Headers = []kafka.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, msg("last", cmdJSON("last", "Ultima SAS", "999")))
	e.produce(msgs...)
	start(t, c)
	eventually(t, "all committed", func() bool { return e.committed(0) == int64(len(msgs)) })
	if n := e.companias(); n != 2 {
		t.Errorf("%d companias, want 2 (the first and the last)", n)
	}
	dl := e.deadLetters(len(cases))
	for i, tc := range cases {
		m := dl[i]
		get := func(k string) string { v, _ := header(m.Headers, k); return v }
		if string(m.Value) != tc.value || string(m.Key) != "bad" {
			t.Errorf("%s: dead letter %q/%q", tc.name, m.Key, m.Value)
		}
		if get(deadletter.HeaderReason) != tc.reason || get(deadletter.HeaderTopic) != e.topic ||
			get(deadletter.HeaderPartition) != "0" || get(deadletter.HeaderOffset) != fmt.Sprint(i+1) ||
			get(deadletter.HeaderConsumer) != e.group || get("traceparent") == "" {
			t.Errorf("%s: headers %v", tc.name, m.Headers)
		}
		if _, err := time.Parse(time.RFC3339Nano, get(deadletter.HeaderTime)); err != nil {
			t.Errorf("%s: %s: %v", tc.name, deadletter.HeaderTime, err)
		}
		for _, want := range tc.errText {
			if got := get(deadletter.HeaderError); !strings.Contains(got, want) {
				t.Errorf("%s: error %q does not mention %q", tc.name, got, want)
			}
		}
	}
	if n := len(logs.messages("command dead-lettered")); n != len(cases) {
		t.Errorf("%d dead-letter log lines, want %d", n, len(cases))
	}
}

// TestIntegrationDatabaseOutageIsRetried takes the database away (no new
// connections, existing ones terminated) while a command waits, then brings
// it back: the command is retried, not committed meanwhile, not lost.
func TestIntegrationDatabaseOutageIsRetried(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 1)
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	u, err := url.Parse(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	setAllowed := func(allowed bool) {
		t.Helper()
		if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %t`, dbName, allowed)); err != nil {
			t.Fatal(err)
		}
		if !allowed {
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { setAllowed(true) }) // before the database is dropped

	c, logs := e.consumer(e.handler())
	stop := start(t, c)
	setAllowed(false)
	e.produce(msg("k", validCmd))
	eventually(t, "retries", func() bool { return len(logs.messages("command failed; retrying")) >= 3 })
	if o := e.committed(0); o >= 0 {
		t.Fatalf("offset %d committed while the database was down", o)
	}
	setAllowed(true)
	eventually(t, "commit after recovery", func() bool { return e.committed(0) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := e.companias(); n != 1 {
		t.Errorf("%d companias, want 1", n)
	}
	if n := len(logs.messages("command dead-lettered")); n != 0 {
		t.Errorf("a transient failure was dead-lettered")
	}
}

// stopAfter runs the real use case, then cancels the consumer's context
// before it can commit: a crash between the transaction and the commit.
type stopAfter struct {
	Creator
	cancel context.CancelFunc
	calls  atomic.Int32
}

func (s *stopAfter) Handle(ctx context.Context, cmd command.CrearCompania) (command.Result, error) {
	res, err := s.Creator.Handle(ctx, cmd)
	s.calls.Add(1)
	s.cancel()
	return res, err
}

func TestIntegrationCommitOnlyAfterTransaction(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 1)
	e.produce(msg("k", validCmd))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cr := &stopAfter{Creator: e.handler(), cancel: cancel}
	c, _ := e.consumer(cr)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not stop")
	}
	if cr.calls.Load() != 1 || e.companias() != 1 {
		t.Fatalf("calls %d, companias %d; want 1, 1", cr.calls.Load(), e.companias())
	}
	if o := e.committed(0); o >= 0 {
		t.Fatalf("offset %d committed by a consumer stopped before its commit", o)
	}

	// Restart: the message is redelivered and replayed.
	replays := &countingCreator{Creator: e.handler()}
	c2, _ := e.consumer(replays)
	start(t, c2)
	eventually(t, "commit after restart", func() bool { return e.committed(0) == 1 })
	if n := e.companias(); n != 1 {
		t.Errorf("%d companias, want 1", n)
	}
	if replays.replayed.Load() != 1 {
		t.Errorf("replayed = %d, want 1", replays.replayed.Load())
	}
}

// countingCreator counts replays.
type countingCreator struct {
	Creator
	calls, replayed atomic.Int32
}

func (c *countingCreator) Handle(ctx context.Context, cmd command.CrearCompania) (command.Result, error) {
	c.calls.Add(1)
	res, err := c.Creator.Handle(ctx, cmd)
	if err == nil && res.Replayed {
		c.replayed.Add(1)
	}
	return res, err
}

// TestIntegrationRebalanceCreatesEachCommandOnce runs two group members
// while partitions move between them (a second member joins, then the first
// leaves): messages fetched but not committed before a rebalance are
// delivered again, and each command still creates exactly one company.
func TestIntegrationRebalanceCreatesEachCommandOnce(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 3)
	batch := func(from, to int) []kafka.Message {
		var out []kafka.Message
		for i := from; i < to; i++ {
			out = append(out, msg(fmt.Sprint("k", i), cmdJSON(fmt.Sprint("cmd-", i), fmt.Sprint("Compania ", i), fmt.Sprint(1000+i))))
		}
		return out
	}
	e.produce(batch(0, 30)...)
	// A stalls on its sixth command until B has processed one, so the
	// rebalance happens with A's message in flight.
	gate := make(chan struct{})
	a, _ := e.consumer(&gatedCreator{Creator: e.handler(), after: 5, gate: gate})
	stopA := start(t, a)
	eventually(t, "A made progress", func() bool { return e.companias() >= 5 })
	bCreator := &countingCreator{Creator: e.handler()}
	b, _ := e.consumer(bCreator)
	start(t, b)
	eventually(t, "B got partitions", func() bool { return bCreator.calls.Load() > 0 })
	close(gate)
	e.produce(batch(30, 45)...)
	eventually(t, "45 companias", func() bool { return e.companias() == 45 })
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	e.produce(batch(45, 60)...)
	eventually(t, "60 companias", func() bool { return e.companias() == 60 })
	eventually(t, "all committed", func() bool {
		sum := int64(0)
		for p := range 3 {
			if o := e.committed(p); o > 0 {
				sum += o
			}
		}
		return sum == 60
	})
	if n := e.count(`SELECT count(*) FROM idempotency_keys`); n != 60 {
		t.Errorf("%d idempotency records, want 60", n)
	}
}

// gatedCreator blocks every call after the first `after` until gate closes.
type gatedCreator struct {
	Creator
	after int32
	n     atomic.Int32
	gate  chan struct{}
}

func (g *gatedCreator) Handle(ctx context.Context, cmd command.CrearCompania) (command.Result, error) {
	if g.n.Add(1) > g.after {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return command.Result{}, ctx.Err()
		}
	}
	return g.Creator.Handle(ctx, cmd)
}

// A command with a 1,048,000-byte traceparent header runs without it: its
// company is created, its outbox row carries no traceparent (so it is no
// larger than any other), and the drop is logged with the length only. The
// next command, with a valid traceparent, keeps it.
func TestIntegrationHugeTraceparentDropped(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 1)
	c, logs := e.consumer(e.handler())
	const valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	huge := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-" + strings.Repeat("f", 1_048_000-56)
	poisoned := msg("a", cmdJSON("cmd-huge", "Alfa SAS", "100"))
	poisoned.Headers = []kafka.Header{{Key: "traceparent", Value: []byte(huge)}}
	traced := msg("b", cmdJSON("cmd-traced", "Beta SAS", "200"))
	traced.Headers = []kafka.Header{{Key: "traceparent", Value: []byte(valid)}}
	e.produce(poisoned)
	e.produce(traced)
	start(t, c)
	eventually(t, "both committed", func() bool { return e.committed(0) == 2 })

	if n := e.companias(); n != 2 {
		t.Fatalf("%d companias, want 2", n)
	}
	var withHeader, biggest int
	if err := e.pool.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE headers @> '[{"key":"traceparent"}]'),
		coalesce(max(length(key) + length(value) + length(headers::text)), 0) FROM outbox`).Scan(&withHeader, &biggest); err != nil {
		t.Fatal(err)
	}
	if withHeader != 1 || biggest > 4096 {
		t.Errorf("outbox: %d rows with a traceparent (want 1, the valid one), largest row %d bytes", withHeader, biggest)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE strpos(headers::text, $1) > 0`, valid); n != 1 {
		t.Errorf("%d outbox rows carry the valid traceparent, want 1", n)
	}
	dropped := logs.messages("invalid traceparent dropped")
	if len(dropped) != 1 || dropped[0]["length"] != "1048000" {
		t.Fatalf("drop logs %v, want one with length 1048000", dropped)
	}
	for k, v := range dropped[0] {
		if strings.Contains(v, "0af7651916cd43dd") {
			t.Errorf("log attribute %s holds the traceparent", k)
		}
	}
	if n := len(logs.messages("command dead-lettered")); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// A command whose event's record would exceed the repository's limit is
// dead-lettered with reason invalid and nothing of it is stored; the
// partition moves on to the next command.
func TestIntegrationRecordTooLargeDeadLettered(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 1)
	c, _ := e.consumer(e.handler(postgres.WithMaxRecordBytes(1024)))
	// Valid: 200 two-byte characters of nombre and a 254-character email.
	email := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	big := fmt.Sprintf(`{"id":"cmd-big","data":{"nombre":%q,"email":%q,"identificacion":"100"}}`, strings.Repeat("ñ", 200), email)
	e.produce(msg("big", big), msg("small", cmdJSON("cmd-small", "Chica SAS", "200")))
	start(t, c)
	eventually(t, "both committed", func() bool { return e.committed(0) == 2 })

	dl := e.deadLetters(1)[0]
	get := func(k string) string { v, _ := header(dl.Headers, k); return v }
	if string(dl.Value) != big || get(deadletter.HeaderReason) != deadletter.ReasonInvalid ||
		!strings.Contains(get(deadletter.HeaderError), "largest Kafka record") {
		t.Errorf("dead letter %q: reason %q, error %q; want the command, invalid, the record limit",
			dl.Key, get(deadletter.HeaderReason), get(deadletter.HeaderError))
	}
	if strings.Contains(get(deadletter.HeaderError), "ñññ") {
		t.Errorf("dead-letter error names a field value: %q", get(deadletter.HeaderError))
	}
	if n := e.companias(); n != 1 {
		t.Errorf("%d companias, want 1 (the small one)", n)
	}
	for _, table := range []string{"compania_eventos", "outbox", "idempotency_keys"} {
		if n := e.count(`SELECT count(*) FROM ` + table); n != 1 {
			t.Errorf("%d rows in %s, want 1 (the small command's)", n, table)
		}
	}
}

// panicking panics on the command with the given id and runs the others.
type panicking struct {
	Creator
	id string
}

func (p *panicking) Handle(ctx context.Context, cmd command.CrearCompania) (command.Result, error) {
	if cmd.Idempotency != nil && cmd.Idempotency.Key == p.id {
		panic("use case bug")
	}
	return p.Creator.Handle(ctx, cmd)
}

// A panic while processing a command is recovered: that command is
// dead-lettered with reason panic and committed, the next one is processed.
func TestIntegrationPanicDeadLettersAndGoesOn(t *testing.T) {
	t.Parallel()
	e := newIntakeEnv(t, 1)
	var reasons []string
	var mu sync.Mutex
	c, _ := e.consumer(&panicking{Creator: e.handler(), id: "cmd-boom"})
	c.cfg.OnDeadLetter = func(r string) { mu.Lock(); reasons = append(reasons, r); mu.Unlock() }
	boom := cmdJSON("cmd-boom", "Boom SAS", "500")
	e.produce(msg("k", boom), msg("k", cmdJSON("cmd-after", "Despues SAS", "501")))
	start(t, c)
	eventually(t, "both committed", func() bool { return e.committed(0) == 2 })
	if n := e.companias(); n != 1 {
		t.Errorf("%d companias, want 1 (the one after the panic)", n)
	}
	dl := e.deadLetters(1)
	reason, _ := header(dl[0].Headers, deadletter.HeaderReason)
	errText, _ := header(dl[0].Headers, deadletter.HeaderError)
	if string(dl[0].Value) != boom || reason != deadletter.ReasonPanic || !strings.Contains(errText, "use case bug") {
		t.Errorf("dead letter %q reason %q error %q; want the panicking command, panic", dl[0].Value, reason, errText)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(reasons, []string{deadletter.ReasonPanic}) {
		t.Errorf("OnDeadLetter reasons %v, want [panic]", reasons)
	}
}
