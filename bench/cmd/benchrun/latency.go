package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
)

// watcher consumes every partition of a topic from its end (kafka-go
// Readers without a group, one per partition) and records when each record
// key was first seen.
type watcher struct {
	readers []*kafka.Reader
	mu      sync.Mutex
	seen    map[string]time.Time
	wake    chan struct{}
	wg      sync.WaitGroup
}

func newWatcher(ctx context.Context, k kafkaSide, topic string, partitions int) (*watcher, error) {
	w := &watcher{seen: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	dialer, err := k.dialer()
	if err != nil {
		return nil, err
	}
	brokers := k.addr
	for p := range partitions {
		// Position each reader explicitly at the current end, so that no
		// record produced after newWatcher returns can be skipped.
		conn, err := dialer.DialLeader(ctx, "tcp", brokers, topic, p)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("dial %s/%d: %w", topic, p, err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			w.close()
			return nil, fmt.Errorf("last offset of %s/%d: %w", topic, p, err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{brokers}, Dialer: dialer, Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond,
		})
		if err := r.SetOffset(last); err != nil {
			w.close()
			return nil, err
		}
		w.readers = append(w.readers, r)
		w.wg.Go(func() {
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return // ctx cancelled or reader closed
				}
				t := time.Now()
				w.mu.Lock()
				if _, ok := w.seen[string(m.Key)]; !ok {
					w.seen[string(m.Key)] = t
				}
				w.mu.Unlock()
				select {
				case w.wake <- struct{}{}:
				default:
				}
			}
		})
	}
	return w, nil
}

// waitSeen waits until every key was seen or the deadline passes, and
// returns the times seen (missing keys are absent).
func (w *watcher) waitSeen(ctx context.Context, keys []string, within time.Duration) map[string]time.Time {
	deadline := time.After(within)
	for {
		w.mu.Lock()
		out := make(map[string]time.Time, len(keys))
		for _, k := range keys {
			if t, ok := w.seen[k]; ok {
				out[k] = t
			}
		}
		w.mu.Unlock()
		if len(out) == len(keys) {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-deadline:
			return out
		case <-w.wake:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (w *watcher) close() {
	for _, r := range w.readers {
		_ = r.Close()
	}
	w.wg.Wait()
}

// latencyRun is one fixed-rate run of figures 2 and 5.
type latencyRun struct {
	kafka       run // 201 (commit) → record seen by a kafka-go consumer
	fresh       run // POST sent → GET ?min_version=1 answers 200 on the reader
	fresh201    run // 201 → visible on the reader
	post        run // POST latency itself
	missing     int // events not seen within the deadline
	early       int // events seen on Kafka before the client got its 201
	invisible   int // companies not visible on the reader within the wait
	attempted   int
	achievedRPS float64
	points      []freshPoint // one per command, in the order sent (for the plot over time)
}

// freshPoint is one command of a fixed-rate run: when it was sent, from
// the start of the run, and its latencies (negative: not seen).
type freshPoint struct {
	at             time.Duration // POST sent, since the first POST of the run
	kafka, visible time.Duration // commit → Kafka, POST → visible on the reader
}

// openLoop calls fn at rate per second for d, each call in its own
// goroutine, and waits for all of them.
func openLoop(ctx context.Context, rate int, d time.Duration, fn func(ctx context.Context)) time.Duration {
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	n := int(d.Seconds() * float64(rate))
	for i := range n {
		next := start.Add(time.Duration(i) * interval)
		if err := sleepCtx(ctx, time.Until(next)); err != nil {
			break
		}
		wg.Go(func() { fn(ctx) })
	}
	elapsed := time.Since(start)
	wg.Wait()
	return elapsed
}

// benchFreshness measures figures 2 and 5 together at a fixed command rate:
// each POST is followed by a long-polling GET ?min_version=1 on the reader,
// and a kafka-go consumer stamps the event's arrival on the events topic.
func benchFreshness(ctx context.Context, b *bench, writerURL, readerURL string, w *watcher) (latencyRun, error) {
	hc := httpClient()
	type rec struct {
		id                   string
		sent, created, shown time.Time
		err                  error
	}
	var (
		mu   sync.Mutex
		recs []rec
	)
	elapsed := openLoop(ctx, b.rate, b.rateDur, func(ctx context.Context) {
		r := rec{sent: time.Now()}
		r.id, r.err = postCompania(ctx, hc, writerURL, b.names)
		r.created = time.Now()
		if r.err == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, readerURL+"/v1/companias/"+r.id+"?min_version=1&wait=10s", nil)
			res, err := hc.Do(req)
			switch {
			case err != nil:
				r.err = err
			case res.StatusCode == http.StatusOK:
				r.shown = time.Now()
			}
			if res != nil {
				res.Body.Close()
			}
		}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	})
	var keys []string
	for _, r := range recs {
		if r.err != nil {
			return latencyRun{}, r.err
		}
		keys = append(keys, r.id)
	}
	seen := w.waitSeen(ctx, keys, 10*time.Second)
	out := latencyRun{attempted: len(recs), achievedRPS: float64(len(recs)) / elapsed.Seconds()}
	slices.SortFunc(recs, func(a, b rec) int { return a.sent.Compare(b.sent) })
	var kl, fl, f201, pl []time.Duration
	for _, r := range recs {
		pt := freshPoint{at: r.sent.Sub(recs[0].sent), kafka: -1, visible: -1}
		pl = append(pl, r.created.Sub(r.sent))
		if t, ok := seen[r.id]; ok {
			d := t.Sub(r.created)
			if d < 0 {
				out.early++
				d = 0
			}
			kl = append(kl, d)
			pt.kafka = d
		} else {
			out.missing++
		}
		if r.shown.IsZero() {
			out.invisible++
			out.points = append(out.points, pt)
			continue
		}
		fl = append(fl, r.shown.Sub(r.sent))
		f201 = append(f201, r.shown.Sub(r.created))
		pt.visible = r.shown.Sub(r.sent)
		out.points = append(out.points, pt)
	}
	out.kafka, out.fresh, out.fresh201, out.post = newRun(kl, elapsed), newRun(fl, elapsed), newRun(f201, elapsed), newRun(pl, elapsed)
	return out, nil
}

// benchRawKafka measures kafka-go produce → consume at the same rate: a
// Writer configured like the outbox relay's (Murmur2, RequireAll, 1 ms
// batch timeout), one message per WriteMessages call, each call in its own
// goroutine; latency from the call to a consumer seeing the record.
func benchRawKafka(ctx context.Context, b *bench, kw *kafka.Writer, w *watcher, value []byte) (run, int, error) {
	var (
		mu   sync.Mutex
		sent = map[string]time.Time{}
		ferr error
	)
	elapsed := openLoop(ctx, b.rate, b.rateDur, func(ctx context.Context) {
		k := uuid.NewString()
		t := time.Now()
		err := kw.WriteMessages(ctx, kafka.Message{Key: []byte(k), Value: value})
		mu.Lock()
		defer mu.Unlock()
		if err != nil && ferr == nil {
			ferr = fmt.Errorf("raw produce: %w", err)
		}
		sent[k] = t
	})
	if ferr != nil {
		return run{}, 0, ferr
	}
	keys := make([]string, 0, len(sent))
	for k := range sent {
		keys = append(keys, k)
	}
	seen := w.waitSeen(ctx, keys, 10*time.Second)
	var lat []time.Duration
	for k, t := range sent {
		if s, ok := seen[k]; ok {
			lat = append(lat, s.Sub(t))
		}
	}
	return newRun(lat, elapsed), len(sent) - len(lat), nil
}
