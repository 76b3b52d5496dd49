package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/kafkakit"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logValue returns attribute key of the first JSON log record with message msg.
func (s *syncBuffer) logValue(msg, key string) (string, bool) {
	for _, line := range strings.Split(s.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != msg {
			continue
		}
		v, ok := m[key].(string)
		return v, ok
	}
	return "", false
}

// eventually polls cond every 25ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// stack is the embedded infrastructure of one test: a Kafka broker and a
// FerretDB server on a fresh PostgreSQL database.
type stack struct {
	kafka *kafkabroker.Broker
	mongo *mongowire.Server
}

func startStack(t *testing.T) stack {
	t.Helper()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	m, err := mongowire.Start(runtest.Context(t, time.Minute), mongowire.Options{Handler: mongowire.HandlerPostgreSQL, PostgreSQLURL: pgtest.NewDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return stack{kafka: b, mongo: m}
}

func (s stack) env(topic string) map[string]string {
	return map[string]string{
		"HTTP_ADDR":              "127.0.0.1:0",
		"KAFKA_BROKERS":          s.kafka.Addr(),
		"KAFKA_EVENTS_TOPIC":     topic,
		"KAFKA_TOPIC_PARTITIONS": "3",
		"MONGO_URI":              s.mongo.URI(),
		"MONGO_DATABASE":         "query_test",
		"SHUTDOWN_TIMEOUT":       "5s",
		"LOG_LEVEL":              "debug",
	}
}

func publish(t *testing.T, addr, topic string, events ...companiaevent.Event) {
	t.Helper()
	publishAs(t, kafkakit.Config{Brokers: []string{addr}}, topic, events...)
}

// publishAs is publish through the connections cfg describes (TLS, SASL).
func publishAs(t *testing.T, cfg kafkakit.Config, topic string, events ...companiaevent.Event) {
	t.Helper()
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, Transport: tr}
	defer w.Close()
	var msgs []kafka.Message
	for _, e := range events {
		m, err := companiaevent.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		km := kafka.Message{Key: m.Key, Value: m.Value}
		for _, h := range m.Headers {
			km.Headers = append(km.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		msgs = append(msgs, km)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func creada(id string, n int, at time.Time) companiaevent.Event {
	return companiaevent.Event{
		ID:   fmt.Sprintf("evt-%s-1", id),
		Name: companiaevent.CompaniaCreada,
		Time: at,
		Data: companiaevent.Data{Compania: companiaevent.Compania{
			ID: id, Nombre: fmt.Sprintf("Compania %d", n), Email: fmt.Sprintf("c%d@example.co", n),
			Identificacion: fmt.Sprintf("900-%d", n), Estado: companiaevent.EstadoPendiente,
			FechaCreacion: at, FechaActualizacion: at, Version: 1,
		}},
	}
}

// getText GETs url and returns its body; any status but 200 fails the test.
func getText(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d\n%s", url, res.StatusCode, body)
	}
	return string(body)
}

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: body %q: %v", url, b, err)
		}
	}
	return res.StatusCode
}

// TestIntegrationServe runs the real program on :0 against the embedded
// Kafka and FerretDB: topics are created, the consumer joins, events become
// readable with read-your-writes, and a cancellation shuts it down cleanly.
func TestIntegrationServe(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	const topic = "eventos-serve"
	var stderr syncBuffer
	base, stop := startServe(t, s.env(topic), &stderr)
	if code := getJSON(t, base+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	eventually(t, time.Minute, "readiness", func() bool { return getJSON(t, base+"/readyz", nil) == http.StatusOK })
	// Served by the API now (the first one may have come before it was
	// built, from the start-up handler): counted in /metrics below.
	if code := getJSON(t, base+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("/healthz once ready = %d", code)
	}

	at := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	const id = "0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b"
	publish(t, s.kafka.Addr(), topic, creada(id, 1, at), creada("0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5c", 2, at.Add(time.Minute)))

	var got map[string]any
	if code := getJSON(t, base+"/v1/companias/"+id+"?min_version=1&wait=10s", &got); code != http.StatusOK {
		t.Fatalf("read-your-writes GET = %d %v\n%s", code, got, stderr.String())
	}
	if got["id"] != id || got["version"] != float64(1) || got["estado"] != "PENDIENTE" {
		t.Errorf("view = %v", got)
	}
	var legacy map[string]any
	if code := getJSON(t, base+"/ingestion/compania-query/"+id, &legacy); code != 200 || legacy["fecha_creacion"] != "2025-05-01T12:00:00Z" || len(legacy) != 6 {
		t.Errorf("legacy GET = %d %v", code, legacy)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	eventually(t, 30*time.Second, "both companias listed", func() bool {
		return getJSON(t, base+"/v1/companias?limit=5", &page) == 200 && len(page.Items) == 2
	})
	var stats struct {
		Total int64 `json:"total"`
	}
	if code := getJSON(t, base+"/v1/estadisticas", &stats); code != 200 || stats.Total != 2 {
		t.Errorf("estadisticas = %d %+v", code, stats)
	}
	var proj struct {
		Joined     bool             `json:"joined"`
		Partitions []map[string]any `json:"partitions"`
	}
	eventually(t, 30*time.Second, "projection status with 3 partitions", func() bool {
		return getJSON(t, base+"/v1/proyecciones", &proj) == 200 && proj.Joined && len(proj.Partitions) == 3
	})

	// A rebuild started over HTTP replays the topic into a new generation
	// and switches to it; the views stay readable.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/admin/rebuild", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/admin/rebuild = %d, want 202", res.StatusCode)
	}
	var rb struct {
		State      string `json:"state"`
		Generation string `json:"generation"`
		Processed  int64  `json:"processed"`
		Error      string `json:"error"`
	}
	eventually(t, 2*time.Minute, "the rebuild to finish", func() bool {
		getJSON(t, base+"/v1/admin/rebuild", &rb)
		if rb.State == "failed" {
			t.Fatalf("rebuild failed: %+v", rb)
		}
		return rb.State == "done"
	})
	if rb.Generation != "2" || rb.Processed != 2 {
		t.Errorf("rebuild = %+v, want generation 2 with 2 events", rb)
	}
	if code := getJSON(t, base+"/v1/companias/"+id, &got); code != http.StatusOK || got["id"] != id {
		t.Errorf("GET after rebuild = %d %v", code, got)
	}

	// GET /metrics on the admin listener (METRICS_ADDR) exposes the
	// service's metrics from its own registry; the API port does not.
	metricsAddr, ok := stderr.logValue("metrics listening", "addr")
	if !ok {
		t.Fatal("no \"metrics listening\" log line")
	}
	if code := getJSON(t, base+"/metrics", nil); code != http.StatusNotFound {
		t.Errorf("GET /metrics on HTTP_ADDR = %d, want 404", code)
	}
	var scrape string
	// The only replica owns the 3 partitions, so it reports the lag of each,
	// labelled with the topic and group of its configuration.
	eventually(t, 30*time.Second, "zero lag on the 3 partitions in /metrics", func() bool {
		scrape = getText(t, "http://"+metricsAddr+"/metrics")
		return strings.Contains(scrape, `companias_consumer_lag{group="companias-query",partition="0",topic="`+topic+`"} 0`) &&
			strings.Contains(scrape, `companias_consumer_lag{group="companias-query",partition="1",topic="`+topic+`"} 0`) &&
			strings.Contains(scrape, `companias_consumer_lag{group="companias-query",partition="2",topic="`+topic+`"} 0`)
	})
	for _, line := range []string{
		`companias_http_requests_total{code="2xx",method="GET",route="/v1/companias/:id"} `,
		`companias_http_requests_total{code="2xx",method="GET",route="/healthz"} `,
		`companias_http_request_duration_seconds_count{method="GET",route="/v1/companias/:id"} `,
		"companias_projection_freshness_seconds_count 2",
		"companias_events_applied_total 2",
		"companias_events_skipped_unknown_total 0",
		"companias_rebuild_progress_ratio 1",
		`companias_rebuild_state{state="done"} 1`,
		`companias_consumer_high_watermark{group="companias-query",partition="0",topic="` + topic + `"} `,
		`companias_consumer_owned_partitions{group="companias-query",topic="` + topic + `"} 3`,
		"companias_query_build_info{goversion=",
		"go_goroutines ",
	} {
		if !strings.Contains(scrape, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(scrape, id) {
		t.Error("a raw path (a company id) leaked into a metric label")
	}

	if err := stop(); err != nil {
		t.Fatalf("run after cancel = %v, want nil\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"http server stopped"`) {
		t.Errorf("no graceful http stop in the log")
	}
}

// TestIntegrationRebuildCommand runs `companias-query rebuild` against a
// topic with events: it reports progress on stderr and exits 0 once the new
// generation is active.
func TestIntegrationRebuildCommand(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	const topic = "eventos-rebuild"
	env := s.env(topic)
	env["LOG_LEVEL"] = "warn"
	// A first run creates the topics (and the store), as serve would.
	var stderr syncBuffer
	if err := run(t.Context(), []string{"rebuild"}, envFrom(env), io.Discard, &stderr); err != nil {
		t.Fatalf("rebuild of an empty topic = %v\n%s", err, stderr.String())
	}
	at := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	publish(t, s.kafka.Addr(), topic,
		creada("0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a01", 1, at),
		creada("0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a02", 2, at),
		creada("0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a03", 3, at))

	stderr = syncBuffer{}
	if err := run(t.Context(), []string{"rebuild"}, envFrom(env), io.Discard, &stderr); err != nil {
		t.Fatalf("rebuild = %v\n%s", err, stderr.String())
	}
	out := stderr.String()
	if strings.Contains(out, "\r") {
		t.Errorf("non-terminal progress uses \\r: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "100.0%") || !strings.Contains(last, "3/3") || !strings.Contains(last, "done gen 3") {
		t.Errorf("last progress line = %q, want a full bar, 3/3 events, done gen 3\n%s", last, out)
	}
}

// TestIntegrationStartFailsFast: the rebuild command fails at once on an
// unreachable MongoDB, and both commands on a malformed MONGO_URI, which no
// wait would fix (serve waits for an unreachable one, see
// TestIntegrationServeWaitsForKafkaAndMongo).
func TestIntegrationStartFailsFast(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	for _, tt := range []struct{ cmd, uri, want string }{
		{"rebuild", "mongodb://" + closedAddr(t) + "/?serverSelectionTimeoutMS=200", "open view store"},
		{"rebuild", "mongodb://%zz", "connect to mongodb"},
		{"serve", "mongodb://%zz", "connect to mongodb"},
	} {
		env := map[string]string{"KAFKA_BROKERS": b.Addr(), "MONGO_URI": tt.uri, "HTTP_ADDR": "127.0.0.1:0"}
		err := run(t.Context(), []string{tt.cmd}, envFrom(env), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s with MONGO_URI %s = %v, want an error containing %q", tt.cmd, tt.uri, err, tt.want)
		}
	}
}
