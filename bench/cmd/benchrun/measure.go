package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

const partitions = 6

// Topics of the run; each phase has its own so that no reader catches up
// on another phase's events.
const (
	topicCreate = "bench-create-events" // figure 1's writer
	topicLive   = "bench-live-events"   // figures 2, 4, 5
	topicRaw    = "bench-raw-kafka"     // figure 2's raw kafka-go ceiling
	topicProj   = "bench-proj-events"   // figure 3's pre-loaded topic
	topicDrain  = "bench-drain-events"  // the relay drain figure's backlog
	topicRawDr  = "bench-raw-drain"     // the relay drain figure's raw kafka-go ceiling
)

// results is everything measured.
type results struct {
	machine    machine
	elapsed    time.Duration
	create     []createFigure
	sec        *secResults // the TLS + SCRAM line (nil with -secure=false)
	fresh      []latencyRun
	rawKafka   []run
	rawMissing int
	drain      []drainRun
	reads      []readFigure
	proj       []projRun
	peer       *peerResults      // the Watermill peer baseline (nil: not run)
	goBench    *goBenchResult    // the Go benchmarks of the services (nil: not run)
	plots      map[string]string // plot image name → path relative to the report
}

func writerEnv(dbURL, topic string) []string {
	return []string{"DATABASE_URL=" + dbURL, "KAFKA_EVENTS_TOPIC=" + topic, "KAFKA_COMMANDS_ENABLED=false",
		"KAFKA_TOPIC_PARTITIONS=6"}
}

func newKafkaWriter(k kafkaSide) (*kafka.Writer, error) {
	tr, err := k.transport()
	if err != nil {
		return nil, err
	}
	// Like the outbox relay's writer (services/command/internal/adapters/outbox).
	return &kafka.Writer{
		Addr: kafka.TCP(k.addr), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, BatchSize: 500, Transport: tr,
	}, nil
}

func measure(ctx context.Context, b *bench, s *stack) (*results, error) {
	res := &results{}
	if err := s.broker.CreateTopics(ctx, partitions, topicCreate, topicLive, topicRaw, topicProj, topicDrain, topicRawDr); err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	cmdURL, err := s.newDatabase(ctx, "cmd")
	if err != nil {
		return nil, err
	}
	if b.peerOnly {
		b.logf("peer figure: the writer vs the Watermill peer, create rate and commit → Kafka")
		if res.peer, err = measurePeer(ctx, b, s, cmdURL); err != nil {
			return nil, err
		}
		return res, nil
	}
	rawURL, err := s.newDatabase(ctx, "raw")
	if err != nil {
		return nil, err
	}

	// The raw ceiling writes into a database of its own with the writer's
	// schema: run the writer once on it so that its migrations apply.
	b.logf("migrating the raw database with the writer")
	mig, err := s.startService(ctx, "command-migrate", s.cmdBin, writerEnv(rawURL, topicCreate)...)
	if err != nil {
		return nil, err
	}
	mig.stop()

	cmdPool, err := pgxpool.New(ctx, cmdURL)
	if err != nil {
		return nil, err
	}
	defer cmdPool.Close()
	rawPool, err := openRawPool(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	defer rawPool.Close()

	// Figure 1.
	w1, err := s.startService(ctx, "command-create", s.cmdBin, writerEnv(cmdURL, topicCreate)...)
	if err != nil {
		return nil, err
	}
	defer w1.stop()
	if _, err := postCompania(ctx, httpClient(), w1.url(""), b.names); err != nil {
		w1.stop()
		return nil, err
	}
	sample, err := loadSample(ctx, cmdPool, s.plain(), topicCreate)
	if err != nil {
		return nil, err
	}
	b.logf("figure 1: create throughput, writer vs raw pgx")
	if res.create, err = benchCreate(ctx, b, "", w1.url(""), w1.cmd.Process.Pid, rawPool, sample); err != nil {
		return nil, err
	}
	w1.stop()
	if b.peer {
		b.logf("peer figure: the writer vs the Watermill peer, create rate and commit → Kafka")
		if res.peer, err = measurePeer(ctx, b, s, cmdURL); err != nil {
			return nil, err
		}
	}
	var secCmdURL string
	if s.secured != nil {
		res.sec = &secResults{}
		if secCmdURL, err = secureCreate(ctx, b, s, res.sec, rawPool, sample); err != nil {
			if err := res.sec.fail(ctx, b, "create", err); err != nil {
				return nil, err
			}
		}
	}

	// Figures 2 and 5, then 4, on a live writer + reader pair.
	w2, err := s.startService(ctx, "command-live", s.cmdBin, writerEnv(cmdURL, topicLive)...)
	if err != nil {
		return nil, err
	}
	defer w2.stop()
	liveDB := s.prefix + "_live"
	rd, err := s.startService(ctx, "query-live", s.queryBin,
		"KAFKA_EVENTS_TOPIC="+topicLive, "KAFKA_GROUP_ID="+liveDB, "MONGO_URI="+s.mongo.URI(), "MONGO_DATABASE="+liveDB)
	if err != nil {
		return nil, err
	}
	defer rd.stop()
	if err := waitJoined(ctx, rd.url("")); err != nil {
		return nil, err
	}
	watch, err := newWatcher(ctx, s.plain(), topicLive, partitions)
	if err != nil {
		return nil, err
	}
	defer watch.close()
	rawWatch, err := newWatcher(ctx, s.plain(), topicRaw, partitions)
	if err != nil {
		return nil, err
	}
	defer rawWatch.close()
	kw, err := newKafkaWriter(s.plain())
	if err != nil {
		return nil, err
	}
	kw.Topic = topicRaw
	defer kw.Close()

	b.logf("figures 2 and 5: commit → Kafka and POST → visible at %d/s; raw kafka-go at the same rate", b.rate)
	warm := *b
	warm.rateDur = 2 * time.Second
	if _, err := benchFreshness(ctx, &warm, w2.url(""), rd.url(""), watch); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if _, _, err := benchRawKafka(ctx, &warm, kw, rawWatch, sample.value); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	for i := range b.runs {
		f, err := benchFreshness(ctx, b, w2.url(""), rd.url(""), watch)
		if err != nil {
			return nil, err
		}
		r, missing, err := benchRawKafka(ctx, b, kw, rawWatch, sample.value)
		if err != nil {
			return nil, err
		}
		res.fresh, res.rawKafka, res.rawMissing = append(res.fresh, f), append(res.rawKafka, r), res.rawMissing+missing
		b.logf("latency run %d: %.1f/s, commit→kafka p50 %.1fms p99 %.1fms (missing %d); POST→visible p50 %.1fms p99 %.1fms (invisible %d); raw kafka p50 %.1fms p99 %.1fms; load %s",
			i+1, f.achievedRPS, ms(f.kafka.p50), ms(f.kafka.p99), f.missing, ms(f.fresh.p50), ms(f.fresh.p99), f.invisible, ms(r.p50), ms(r.p99), loadavg())
	}

	b.logf("relay drain: a backlog of %d outbox rows vs raw kafka-go", b.projEvents)
	dw, err := newKafkaWriter(s.plain())
	if err != nil {
		return nil, err
	}
	defer dw.Close()
	if err := dw.WriteMessages(ctx, kafka.Message{Topic: topicRawDr, Key: []byte("warm-up"), Value: sample.value}); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	for i := range b.runs {
		d, err := benchDrain(ctx, b, cmdPool, w2.cmd.Process.Pid, s.plain(), dw, topicCreate, topicDrain, topicRawDr, b.projEvents)
		if err != nil {
			return nil, err
		}
		res.drain = append(res.drain, d)
		b.logf("drain run %d: relay %d rows in %s = %.0f rows/s | raw kafka-go %s = %.0f msgs/s", i+1, d.rows,
			d.relay.Round(time.Millisecond), d.relayRate, d.raw.Round(time.Millisecond), d.rawRate)
	}
	w2.stop()

	mc, err := mongo.Connect(options.Client().ApplyURI(s.mongo.URI()))
	if err != nil {
		return nil, err
	}
	defer func() { _ = mc.Disconnect(context.WithoutCancel(ctx)) }()
	coll, err := activeCollection(ctx, mc.Database(liveDB))
	if err != nil {
		return nil, err
	}
	ids, err := allIDs(ctx, coll)
	if err != nil {
		return nil, err
	}
	b.logf("figure 4: GET by id on the reader vs raw FindOne (%d ids)", len(ids))
	if res.reads, err = benchReads(ctx, b, rd.url(""), rd.cmd.Process.Pid, coll, ids); err != nil {
		return nil, err
	}
	rd.stop()
	// Figures 2 and 5 on the secured broker, once the plaintext pair is gone.
	if s.secured != nil && secCmdURL != "" {
		if err := secureFreshness(ctx, b, s, res.sec, secCmdURL, sample); err != nil {
			if err := res.sec.fail(ctx, b, "commit → Kafka and POST → visible", err); err != nil {
				return nil, err
			}
		}
	}

	// Figure 3.
	pw, err := newKafkaWriter(s.plain())
	if err != nil {
		return nil, err
	}
	n, err := preload(ctx, s.plain(), topicCreate, pw, topicProj, b.projEvents)
	_ = pw.Close()
	if err != nil {
		return nil, err
	}
	b.logf("figure 3: projection catch-up of %d events vs raw bulk upserts", n)
	for i := range b.runs {
		p, err := catchUp(ctx, b, s, catchUpRun{topic: topicProj, proc: fmt.Sprintf("query-proj%d", i+1), dbName: fmt.Sprintf("%s_proj%d", s.prefix, i+1)}, n, mc)
		if err != nil {
			return nil, err
		}
		res.proj = append(res.proj, p)
		b.logf("projection run %d: start-up %s, catch-up %s = %.0f events/s | raw %d docs in %s = %.0f docs/s",
			i+1, p.startup.Round(time.Millisecond), p.catchup.Round(time.Millisecond), p.readerRate,
			p.rawDocs, p.raw.Round(time.Millisecond), p.rawRate)
	}
	if s.secured != nil {
		if err := secureCatchUp(ctx, b, s, res.sec, cmdPool, mc); err != nil {
			if err := res.sec.fail(ctx, b, "projection catch-up", err); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

func waitJoined(ctx context.Context, base string) error {
	hc := httpClient()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p, err := getProyecciones(ctx, hc, base); err == nil && p.Joined {
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("reader at %s did not join its group", base)
}

func allIDs(ctx context.Context, coll *mongo.Collection) ([]string, error) {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list ids: %w", err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list ids: %w", err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}
