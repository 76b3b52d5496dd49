package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
)

// Topics of the secured line (-secure), on the secured broker; each phase
// has its own, like the plaintext ones.
const (
	topicSecCreate = "bench-sec-create-events" // figure 1's writer, secured
	topicSecLive   = "bench-sec-live-events"   // figures 2 and 5, secured
	topicSecRaw    = "bench-sec-raw-kafka"     // figure 2's raw kafka-go ceiling, secured
	topicSecProj   = "bench-sec-proj-events"   // figure 3's pre-loaded topic, secured
)

// dlqTopic is the dead-letter topic the reader derives from its event
// topic (libs/contracts/deadletter.Topic).
func dlqTopic(topic string) string { return topic + ".dlq" }

// benchPrincipal is the principal of the bench's own clients on the
// secured broker: the raw kafka-go ceiling, the watchers and the preload.
const benchPrincipal = "benchrun"

// securedKafka is the second broker of the run: TLS with a throwaway CA,
// SASL/SCRAM-SHA-512 and ACLs, as in `make run-secure` and the secured
// end-to-end test. The admin principal creates the topics; each service
// connects as its own least-privilege principal and creates none.
type securedKafka struct {
	broker *kafkabroker.Broker
	dir    string // CA and password files
	side   kafkaSide
}

// Consumer groups and view databases of the secured reader runs: ACLs name
// groups literally, so all of them are granted up front.
func (s *stack) secLiveGroup() string      { return s.prefix + "_livesec" }
func (s *stack) secProjGroup(i int) string { return fmt.Sprintf("%s_projsec%d", s.prefix, i) }

// startSecured starts the secured broker with one principal per service
// (the writer produces the secured event topics; the reader consumes them
// in the bench's groups and produces their DLQs; benchrun produces and
// consumes the raw and pre-load topics and watches the live one), and
// creates the topics as the admin.
func (s *stack) startSecured(ctx context.Context, runs int) error {
	dir := filepath.Join(s.workDir, "kafka-secure")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	groups := []string{s.secLiveGroup()}
	for i := range runs {
		groups = append(groups, s.secProjGroup(i+1))
	}
	broker, err := kafkabroker.Start(kafkabroker.Options{Security: &kafkabroker.Security{Dir: dir, Principals: []kafkabroker.Principal{
		{Name: kafkabroker.WriterPrincipal, Produce: []string{topicSecCreate, topicSecLive}},
		{Name: kafkabroker.ReaderPrincipal, Consume: []string{topicSecLive, topicSecProj}, Groups: groups,
			Produce: []string{dlqTopic(topicSecLive), dlqTopic(topicSecProj)}},
		{Name: benchPrincipal, Consume: []string{topicSecLive, topicSecRaw}, Produce: []string{topicSecRaw, topicSecProj}},
	}}})
	if err != nil {
		return fmt.Errorf("start kfake (secured): %w", err)
	}
	s.secured = &securedKafka{broker: broker, dir: dir}
	if err := broker.CreateTopics(ctx, partitions, topicSecCreate, topicSecLive, topicSecRaw, topicSecProj,
		dlqTopic(topicSecLive), dlqTopic(topicSecProj)); err != nil {
		return fmt.Errorf("create secured topics: %w", err)
	}
	cfg, err := broker.ClientConfig(benchPrincipal)
	if err != nil {
		return err
	}
	cfg.ClientID = benchClientID
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("benchrun's secured kafka config: %w", err)
	}
	s.secured.side = kafkaSide{addr: broker.Addr(), cfg: cfg}
	return nil
}

// env returns the KAFKA_* settings with which a service connects to the
// secured broker as principal: TLS trusting the broker's CA, SCRAM-SHA-512
// with the password in a 0600 file, and no topic creation.
func (k *securedKafka) env(principal string) ([]string, error) {
	user, pass, err := k.broker.Credentials(principal)
	if err != nil {
		return nil, err
	}
	passFile := filepath.Join(k.dir, principal+".password")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write password file: %w", err)
	}
	return []string{
		kafkakit.BrokersVar + "=" + k.broker.Addr(),
		kafkakit.TLSEnabledVar + "=true",
		kafkakit.TLSCAFileVar + "=" + k.broker.CAFile(),
		kafkakit.SASLMechanismVar + "=" + string(kafkabroker.Mechanism),
		kafkakit.SASLUsernameVar + "=" + user,
		kafkakit.SASLPasswordFileVar + "=" + passFile,
		"KAFKA_CREATE_TOPICS=false",
	}, nil
}

// secResults is the TLS + SCRAM line: figures 1, 2, 5 and 3 with the
// services on the secured broker. The raw ceilings of figures 1 and 3 do
// not touch Kafka (pgx, mongo-driver) and are re-measured next to each
// secured run; figure 2's raw kafka-go ceiling runs over the same TLS +
// SCRAM-SHA-512 as the services (benchrun's principal, through kafkakit).
type secResults struct {
	create     []createFigure
	fresh      []latencyRun
	rawKafka   []run
	rawMissing int
	proj       []projRun
	failed     []string // phases that failed ("phase: error"); the line is incomplete
}

// fail records that a phase of the secured line failed and lets the run go
// on: the plaintext line does not depend on it. It returns err only when ctx
// is done (the run is being cancelled, not the secured phase failing).
func (r *secResults) fail(ctx context.Context, b *bench, phase string, err error) error {
	if ctx.Err() != nil {
		return err
	}
	r.failed = append(r.failed, fmt.Sprintf("%s: %v", phase, err))
	b.logf("%s line INCOMPLETE: %s failed, skipped: %v", secLine, phase, err)
	return nil
}

// secureCreate measures figure 1 with a writer on the secured broker, into
// a fresh database of its own (so that its relay never meets the
// plaintext line's outbox rows), and returns that database's URL.
func secureCreate(ctx context.Context, b *bench, s *stack, res *secResults, rawPool *pgxpool.Pool, sample outboxSample) (string, error) {
	dbURL, err := s.newDatabase(ctx, "cmdsec")
	if err != nil {
		return "", err
	}
	env, err := s.secured.env(kafkabroker.WriterPrincipal)
	if err != nil {
		return "", err
	}
	w, err := s.startService(ctx, "command-create-sec", s.cmdBin, append(writerEnv(dbURL, topicSecCreate), env...)...)
	if err != nil {
		return "", err
	}
	defer w.stop()
	b.logf("figure 1, TLS+SCRAM: create throughput, writer on the secured broker vs raw pgx")
	if res.create, err = benchCreate(ctx, b, " TLS+SCRAM", w.url(""), w.cmd.Process.Pid, rawPool, sample); err != nil {
		return "", err
	}
	return dbURL, nil
}

// secureFreshness measures figures 2 and 5 with a writer and a reader on
// the secured broker, and the raw kafka-go ceiling over TLS + SCRAM.
func secureFreshness(ctx context.Context, b *bench, s *stack, res *secResults, dbURL string, sample outboxSample) error {
	wenv, err := s.secured.env(kafkabroker.WriterPrincipal)
	if err != nil {
		return err
	}
	renv, err := s.secured.env(kafkabroker.ReaderPrincipal)
	if err != nil {
		return err
	}
	w, err := s.startService(ctx, "command-live-sec", s.cmdBin, append(writerEnv(dbURL, topicSecLive), wenv...)...)
	if err != nil {
		return err
	}
	defer w.stop()
	rd, err := s.startService(ctx, "query-live-sec", s.queryBin, append([]string{"KAFKA_EVENTS_TOPIC=" + topicSecLive,
		"KAFKA_GROUP_ID=" + s.secLiveGroup(), "MONGO_URI=" + s.mongo.URI(), "MONGO_DATABASE=" + s.secLiveGroup()}, renv...)...)
	if err != nil {
		return err
	}
	defer rd.stop()
	if err := waitJoined(ctx, rd.url("")); err != nil {
		return err
	}
	side := s.secured.side
	watch, err := newWatcher(ctx, side, topicSecLive, partitions)
	if err != nil {
		return err
	}
	defer watch.close()
	rawWatch, err := newWatcher(ctx, side, topicSecRaw, partitions)
	if err != nil {
		return err
	}
	defer rawWatch.close()
	kw, err := newKafkaWriter(side)
	if err != nil {
		return err
	}
	kw.Topic = topicSecRaw
	defer kw.Close()

	b.logf("figures 2 and 5, TLS+SCRAM: commit → Kafka and POST → visible at %d/s; raw kafka-go over TLS+SCRAM", b.rate)
	warm := *b
	warm.rateDur = 2 * time.Second
	if _, err := benchFreshness(ctx, &warm, w.url(""), rd.url(""), watch); err != nil {
		return fmt.Errorf("warm-up (secured): %w", err)
	}
	if _, _, err := benchRawKafka(ctx, &warm, kw, rawWatch, sample.value); err != nil {
		return fmt.Errorf("warm-up (secured): %w", err)
	}
	for i := range b.runs {
		f, err := benchFreshness(ctx, b, w.url(""), rd.url(""), watch)
		if err != nil {
			return err
		}
		r, missing, err := benchRawKafka(ctx, b, kw, rawWatch, sample.value)
		if err != nil {
			return err
		}
		res.fresh, res.rawKafka, res.rawMissing = append(res.fresh, f), append(res.rawKafka, r), res.rawMissing+missing
		b.logf("latency TLS+SCRAM run %d: %.1f/s, commit→kafka p50 %.1fms p99 %.1fms (missing %d); POST→visible p50 %.1fms p99 %.1fms (invisible %d); raw kafka p50 %.1fms p99 %.1fms; load %s",
			i+1, f.achievedRPS, ms(f.kafka.p50), ms(f.kafka.p99), f.missing, ms(f.fresh.p50), ms(f.fresh.p99), f.invisible, ms(r.p50), ms(r.p99), loadavg())
	}
	return nil
}

// secureCatchUp measures figure 3 with readers on the secured broker: the
// same records of the writer's event topic, pre-loaded over TLS + SCRAM on a topic of their
// own, each run a new reader in a new group.
func secureCatchUp(ctx context.Context, b *bench, s *stack, res *secResults, cmdPool *pgxpool.Pool, mc *mongo.Client) error {
	env, err := s.secured.env(kafkabroker.ReaderPrincipal)
	if err != nil {
		return err
	}
	pw, err := newKafkaWriter(s.secured.side)
	if err != nil {
		return err
	}
	n, err := preload(ctx, s.plain(), topicCreate, pw, topicSecProj, b.projEvents)
	_ = pw.Close()
	if err != nil {
		return err
	}
	b.logf("figure 3, TLS+SCRAM: projection catch-up of %d events vs raw bulk upserts", n)
	for i := range b.runs {
		p, err := catchUp(ctx, b, s, catchUpRun{topic: topicSecProj, proc: fmt.Sprintf("query-projsec%d", i+1), dbName: s.secProjGroup(i + 1), env: env}, n, mc)
		if err != nil {
			return err
		}
		res.proj = append(res.proj, p)
		b.logf("projection TLS+SCRAM run %d: start-up %s, catch-up %s = %.0f events/s | raw %d docs in %s = %.0f docs/s",
			i+1, p.startup.Round(time.Millisecond), p.catchup.Round(time.Millisecond), p.readerRate,
			p.rawDocs, p.raw.Round(time.Millisecond), p.rawRate)
	}
	return nil
}

// secLine names the secured line in the report and the plots.
const secLine = "TLS+SCRAM"

// secureMarkdown writes the section of the TLS + SCRAM line: how it is
// measured, and each figure next to its plaintext counterpart.
func (r *results) secureMarkdown(b *bench, p func(string, ...any)) {
	sec := r.sec
	if sec == nil {
		return
	}
	p("## 1, 2, 3 and 5 with Kafka secured (TLS + SCRAM-SHA-512 + ACLs)")
	p("")
	if len(sec.failed) > 0 {
		p("**The %s line is incomplete**: these phases failed and were skipped (the plaintext line is complete):", secLine)
		p("")
		for _, f := range sec.failed {
			p("* %s", f)
		}
		p("")
	}
	p("The same figures measured with the services on a second embedded broker in the same run, secured as in")
	p("`make run-secure`: a TLS listener with a certificate from a CA generated at start, SASL/SCRAM-SHA-512 and")
	p("ACLs. The admin principal creates the topics; the writer (`%s`) may only produce the event topics and the", kafkabroker.WriterPrincipal)
	p("reader (`%s`) may only consume them in its groups and produce their dead-letter topics; both connect", kafkabroker.ReaderPrincipal)
	p("with `KAFKA_TLS_*` and `KAFKA_SASL_*` (password from a 0600 file) and `KAFKA_CREATE_TOPICS=false`.")
	p("The secured create runs use a fresh writer database, like the plaintext ones; the secured catch-up")
	p("pre-loads the same %d events over TLS + SCRAM on a topic of its own.", b.projEvents)
	p("")
	p("Raw ceilings: the create (pgx) and catch-up (mongo-driver) ceilings do not touch Kafka, so they are the")
	p("same operations, re-measured next to each secured run. The commit → Kafka ceiling is kafka-go with the")
	p("same TLS + SCRAM-SHA-512 configuration, built by kafkakit (principal `%s`), producing and consuming", benchPrincipal)
	p("a topic of its own. Each secured phase runs after its plaintext counterpart, not interleaved with it.")
	p("")
	p("| figure | plaintext | %s | %s / plaintext |", secLine, secLine)
	p("|---|---|---|---|")
	cmpRow := func(name, format string, plain, secured agg) {
		if plain.med == 0 || secured.med == 0 {
			return
		}
		p("| %s | %s | %s | %.0f%% |", name, fmtAgg(plain, format), fmtAgg(secured, format), 100*secured.med/plain.med)
	}
	for i, f := range r.create {
		if i < len(sec.create) {
			cmpRow(fmt.Sprintf("create, concurrency %d (req/s)", f.conc), "%.0f", rates(f.writer), rates(sec.create[i].writer))
			cmpRow(fmt.Sprintf("create, concurrency %d, p50 (ms)", f.conc), "%.2f", p50s(f.writer), p50s(sec.create[i].writer))
		}
	}
	lat := func(ls []latencyRun, f func(latencyRun) run) agg { return p99s(mapLatency(ls, f)) }
	if len(r.fresh) > 0 && len(sec.fresh) > 0 {
		cmpRow(fmt.Sprintf("commit → Kafka p99 at %d/s (ms)", b.rate), "%.1f",
			lat(r.fresh, func(l latencyRun) run { return l.kafka }), lat(sec.fresh, func(l latencyRun) run { return l.kafka }))
		cmpRow(fmt.Sprintf("raw kafka-go produce → consume p99 at %d/s (ms)", b.rate), "%.1f", p99s(r.rawKafka), p99s(sec.rawKafka))
		cmpRow(fmt.Sprintf("POST → visible p99 at %d/s (ms)", b.rate), "%.1f",
			lat(r.fresh, func(l latencyRun) run { return l.fresh }), lat(sec.fresh, func(l latencyRun) run { return l.fresh }))
	}
	if len(r.proj) > 0 && len(sec.proj) > 0 {
		rate := func(ps []projRun) agg { return aggregate(mapProj(ps, func(x projRun) float64 { return x.readerRate })) }
		cmpRow("projection catch-up (events/s)", "%.0f", rate(r.proj), rate(sec.proj))
		cmpRow("projection start-up to joined (s)", "%.2f",
			aggregate(mapProj(r.proj, func(x projRun) float64 { return x.startup.Seconds() })),
			aggregate(mapProj(sec.proj, func(x projRun) float64 { return x.startup.Seconds() })))
	}
	missing := 0
	for _, f := range sec.fresh {
		missing += f.missing + f.invisible
	}
	if missing > 0 || sec.rawMissing > 0 {
		p("")
		p("Secured runs: %d events not seen on Kafka or not visible on the reader in time, %d raw kafka-go records not seen within 10 s.", missing, sec.rawMissing)
	}
	p("")
	p("Each cell is the median over %d runs with the spread (min–max); the last column compares the medians.", b.runs)
	p("")
}
