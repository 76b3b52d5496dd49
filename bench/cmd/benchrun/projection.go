package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// preload copies n records the writer published on src (real
// CompaniaCreada events, one per company, read from k) onto topic, keys,
// values and headers unchanged, and returns how many it wrote.
func preload(ctx context.Context, k kafkaSide, src string, kw *kafka.Writer, topic string, n int) (int, error) {
	msgs, err := topicMessages(ctx, k, src, topic, n)
	if err != nil {
		return 0, err
	}
	if err := writeChunks(ctx, kw, msgs, 500); err != nil {
		return 0, fmt.Errorf("preload %s: %w", topic, err)
	}
	return len(msgs), nil
}

// writeChunks writes msgs in WriteMessages calls of at most size messages,
// one after the other.
func writeChunks(ctx context.Context, kw *kafka.Writer, msgs []kafka.Message, size int) error {
	for len(msgs) > 0 {
		chunk := msgs[:min(len(msgs), size)]
		msgs = msgs[len(chunk):]
		if err := kw.WriteMessages(ctx, chunk...); err != nil {
			return err
		}
	}
	return nil
}

// topicMessages reads up to n records of topic on k and returns them as
// Kafka messages for to (keys, values and headers unchanged): the records
// the writer's relay published, byte for byte (the relay deletes the outbox
// rows it published, so the topic is where they are). It reads up to n
// records of each partition and interleaves them, partition after
// partition, so that the first n span every partition as the writer's
// commits did: the same keys go to the same partitions of to.
func topicMessages(ctx context.Context, k kafkaSide, topic, to string, n int) ([]kafka.Message, error) {
	dialer, err := k.dialer()
	if err != nil {
		return nil, err
	}
	var parts [][]kafka.Message
	for p := range partitions {
		conn, err := dialer.DialLeader(ctx, "tcp", k.addr, topic, p)
		if err != nil {
			return nil, fmt.Errorf("dial %s/%d: %w", topic, p, err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p, err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{k.addr}, Dialer: dialer, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond,
		})
		if err := r.SetOffset(first); err != nil {
			_ = r.Close()
			return nil, err
		}
		var msgs []kafka.Message
		for len(msgs) < n {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				_ = r.Close()
				return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			msgs = append(msgs, kafka.Message{Topic: to, Key: m.Key, Value: m.Value, Headers: m.Headers, Time: time.Now()})
			if m.Offset >= last-1 {
				break
			}
		}
		_ = r.Close()
		parts = append(parts, msgs)
	}
	var out []kafka.Message
	for i := 0; len(out) < n; i++ {
		took := false
		for _, msgs := range parts {
			if i < len(msgs) && len(out) < n {
				out = append(out, msgs[i])
				took = true
			}
		}
		if !took {
			break
		}
	}
	return out, nil
}

type proyecciones struct {
	Joined     bool `json:"joined"`
	TotalLag   int  `json:"total_lag"`
	Partitions []struct {
		Committed     int64 `json:"committed"`
		HighWatermark int64 `json:"high_watermark"`
	} `json:"partitions"`
}

func getProyecciones(ctx context.Context, hc *http.Client, base string) (proyecciones, error) {
	var p proyecciones
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/proyecciones", nil)
	if err != nil {
		return p, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return p, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return p, fmt.Errorf("GET /v1/proyecciones: %w %d", errStatus, res.StatusCode)
	}
	return p, json.NewDecoder(res.Body).Decode(&p)
}

// projRun is one catch-up of figure 3.
type projRun struct {
	events      int
	startup     time.Duration // process start → joined
	catchup     time.Duration // joined → lag 0 with every event committed
	total       time.Duration // process start → lag 0
	raw         time.Duration // raw bulk upserts of the same documents
	rawDocs     int
	readerRate  float64
	rawRate     float64
	readerTotal float64 // events / total (start-up included)
}

// catchUpRun is one reader of figure 3: its topic, its process name, its
// consumer group and view database (one name, new for each run), and the
// settings that point it at the secured broker (none: plaintext).
type catchUpRun struct {
	topic, proc, dbName string
	env                 []string
}

// catchUp starts a reader on c.topic with a new group and database, waits
// until it has committed all n events, stops it, then writes the documents
// it produced into a fresh collection with raw versioned bulk upserts.
func catchUp(ctx context.Context, b *bench, s *stack, c catchUpRun, n int, mc *mongo.Client) (projRun, error) {
	dbName := c.dbName
	hc := httpClient()
	t0 := time.Now()
	// Spawn without the readiness wait, and poll the status from the start:
	// a ready reader has joined its group and may already be projecting.
	rd, err := s.spawn(c.proc, s.queryBin, append([]string{
		"KAFKA_EVENTS_TOPIC=" + c.topic, "KAFKA_GROUP_ID=" + dbName, "MONGO_URI=" + s.mongo.URI(), "MONGO_DATABASE=" + dbName}, c.env...)...)
	if err != nil {
		return projRun{}, err
	}
	defer rd.stop()
	var joined, done time.Time
	deadline := time.Now().Add(b.projTimeout)
	for {
		if time.Now().After(deadline) {
			return projRun{}, fmt.Errorf("reader did not catch up %d events within %s", n, b.projTimeout)
		}
		p, err := getProyecciones(ctx, hc, rd.url(""))
		now := time.Now()
		if err == nil {
			if p.Joined && joined.IsZero() {
				joined = now
			}
			var sum int64
			all := len(p.Partitions) > 0
			for _, q := range p.Partitions {
				sum += max(q.Committed, 0)
				all = all && q.Committed >= q.HighWatermark
			}
			if p.Joined && all && sum >= int64(n) && p.TotalLag == 0 {
				done = now
				break
			}
		}
		select {
		case <-rd.done:
			return projRun{}, fmt.Errorf("%s exited: %v (see its log)", rd.name, rd.err)
		default:
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return projRun{}, err
		}
	}
	rd.stop()
	out := projRun{events: n, startup: joined.Sub(t0), catchup: done.Sub(joined), total: done.Sub(t0)}
	out.readerRate = float64(n) / out.catchup.Seconds()
	out.readerTotal = float64(n) / out.total.Seconds()

	// Raw: the same documents, versioned upserts in ordered chunks of 40
	// (FerretDB hangs on update commands of 50+ statements), into a fresh
	// collection with the same _id index workaround.
	src, err := activeCollection(ctx, mc.Database(dbName))
	if err != nil {
		return out, err
	}
	cur, err := src.Find(ctx, bson.D{})
	if err != nil {
		return out, fmt.Errorf("read projected documents: %w", err)
	}
	var docs []bson.D
	if err := cur.All(ctx, &docs); err != nil {
		return out, fmt.Errorf("read projected documents: %w", err)
	}
	rawDB := mc.Database(dbName + "_raw")
	if err := rawDB.CreateCollection(ctx, "companias"); err != nil {
		return out, fmt.Errorf("create raw collection: %w", err)
	}
	if err := s.mongo.EnsureIDIndex(ctx, rawDB.Name(), "companias"); err != nil {
		return out, err
	}
	dst := rawDB.Collection("companias")
	models := make([]mongo.WriteModel, 0, len(docs))
	for _, d := range docs {
		var id, version any
		set := bson.D{}
		for _, e := range d {
			switch e.Key {
			case "_id":
				id = e.Value
				continue
			case "version":
				version = e.Value
			}
			set = append(set, e)
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: id}, {Key: "version", Value: bson.D{{Key: "$lt", Value: version}}}}).
			SetUpdate(bson.D{{Key: "$set", Value: set}}).
			SetUpsert(true))
	}
	rt := time.Now()
	for len(models) > 0 {
		chunk := models[:min(len(models), 40)]
		models = models[len(chunk):]
		if _, err := dst.BulkWrite(ctx, chunk, options.BulkWrite().SetOrdered(true)); err != nil {
			return out, fmt.Errorf("raw bulk upsert: %w", err)
		}
	}
	out.raw, out.rawDocs = time.Since(rt), len(docs)
	out.rawRate = float64(len(docs)) / out.raw.Seconds()
	return out, nil
}
