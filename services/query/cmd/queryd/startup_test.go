package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/mongowire"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
	"github.com/propalpes/companias/libs/kafkakit"
)

// readiness is the body of GET /readyz.
type readiness struct {
	Status any               `json:"status"`
	Detail string            `json:"detail"`
	Checks map[string]string `json:"checks"`
}

// startServe runs serve with env in the background and returns its base
// URL once it listens, and stop: it cancels serve (as SIGTERM does) and
// returns run's result, or an error if run did not return within
// runtest.StopTimeout (see runtest.StartErr; it also runs at cleanup).
func startServe(t *testing.T, env map[string]string, stderr *syncBuffer) (base string, stop func() error) {
	t.Helper()
	exited := make(chan struct{})
	stop = runtest.StartErr(t, func(ctx context.Context) error {
		defer close(exited)
		return run(ctx, []string{"serve"}, envFrom(env), io.Discard, stderr)
	})
	eventually(t, time.Minute, "the http server to listen", func() bool {
		select {
		case <-exited:
			t.Fatalf("run ended early: %v\n%s", stop(), stderr.String())
		default:
		}
		addr, ok := stderr.logValue("http api listening", "addr")
		base = "http://" + addr
		return ok
	})
	return base, stop
}

// TestIntegrationServeWaitsForKafkaAndMongo starts serve while neither
// Kafka nor MongoDB answers: it stays up, alive but not ready, says in its
// log and in /readyz what it waits for, and starts serving once each
// dependency appears on its address.
func TestIntegrationServeWaitsForKafkaAndMongo(t *testing.T) {
	t.Parallel()
	kafkaAddr, mongoAddr := closedAddr(t), closedAddr(t)
	const topic = "eventos-wait"
	env := map[string]string{
		"HTTP_ADDR":              "127.0.0.1:0",
		"KAFKA_BROKERS":          kafkaAddr,
		"KAFKA_EVENTS_TOPIC":     topic,
		"KAFKA_TOPIC_PARTITIONS": "2",
		"MONGO_URI":              "mongodb://" + mongoAddr + "/?serverSelectionTimeoutMS=300",
		"MONGO_DATABASE":         "query_wait",
		"SHUTDOWN_TIMEOUT":       "5s",
	}
	var stderr syncBuffer
	base, stop := startServe(t, env, &stderr)

	if code := getJSON(t, base+"/healthz", nil); code != http.StatusOK {
		t.Errorf("/healthz while waiting = %d, want 200", code)
	}
	var rd readiness
	if code := getJSON(t, base+"/readyz", &rd); code != http.StatusServiceUnavailable || rd.Checks["kafka"] != "waiting" ||
		rd.Checks["mongo"] != "pending" || !strings.Contains(rd.Detail, "waiting for kafka") {
		t.Errorf("/readyz while waiting for kafka = %d %+v", code, rd)
	}
	if code := getJSON(t, base+"/v1/companias", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/v1/companias while starting = %d, want 503", code)
	}
	eventually(t, time.Minute, "a log line saying it waits for kafka", func() bool {
		return strings.Contains(stderr.String(), `"msg":"waiting for kafka"`)
	})

	b := kafkabroker.StartT(t, kafkabroker.Options{Addr: kafkaAddr}, 0)
	eventually(t, time.Minute, "readiness to wait for mongo only", func() bool {
		var rd readiness
		return getJSON(t, base+"/readyz", &rd) == http.StatusServiceUnavailable &&
			rd.Checks["kafka"] == "ok" && rd.Checks["mongo"] == "waiting"
	})
	eventually(t, time.Minute, "a log line saying it waits for mongodb", func() bool {
		return strings.Contains(stderr.String(), `"msg":"waiting for mongodb"`)
	})

	ctx, cancelStart := context.WithTimeout(t.Context(), time.Minute)
	defer cancelStart()
	m, err := mongowire.Start(ctx, mongowire.Options{Addr: mongoAddr, Handler: mongowire.HandlerPostgreSQL, PostgreSQLURL: pgtest.NewDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	eventually(t, time.Minute, "readiness", func() bool { return getJSON(t, base+"/readyz", nil) == http.StatusOK })

	at := time.Date(2025, 7, 1, 9, 0, 0, 0, time.UTC)
	const id = "0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4b01"
	publish(t, b.Addr(), topic, creada(id, 1, at))
	var got map[string]any
	if code := getJSON(t, base+"/v1/companias/"+id+"?min_version=1&wait=10s", &got); code != http.StatusOK || got["id"] != id {
		t.Errorf("read-your-writes GET after the start = %d %v", code, got)
	}

	if err := stop(); err != nil {
		t.Fatalf("run after cancel = %v, want nil\n%s", err, stderr.String())
	}
}

// TestIntegrationServeStopsWhileWaiting cancels serve (as SIGTERM does)
// while it waits, for Kafka between attempts and for MongoDB in the middle
// of an attempt: it stops cleanly, without waiting out the attempt.
func TestIntegrationServeStopsWhileWaiting(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	for name, tt := range map[string]struct {
		brokers, mongoURI string
		waiting           func(log string, rd readiness) bool
	}{
		// Kafka refuses at once: the cancel comes between attempts.
		"kafka": {closedAddr(t), "mongodb://" + closedAddr(t), func(log string, _ readiness) bool {
			return strings.Contains(log, `"msg":"waiting for kafka"`)
		}},
		// An attempt on MongoDB lasts its 10 s server selection timeout:
		// the cancel comes during the first one.
		"mongodb": {b.Addr(), "mongodb://" + closedAddr(t), func(_ string, rd readiness) bool {
			return rd.Checks["mongo"] == "waiting"
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "KAFKA_BROKERS": tt.brokers, "MONGO_URI": tt.mongoURI,
				"KAFKA_EVENTS_TOPIC": "eventos-stop-" + name, "SHUTDOWN_TIMEOUT": "5s"}
			var stderr syncBuffer
			base, stop := startServe(t, env, &stderr)
			eventually(t, time.Minute, "the wait for "+name, func() bool {
				var rd readiness
				code := getJSON(t, base+"/readyz", &rd)
				if code != http.StatusServiceUnavailable {
					t.Fatalf("/readyz while waiting = %d, want 503", code)
				}
				return tt.waiting(stderr.String(), rd)
			})
			cancelled := time.Now()
			if err := stop(); err != nil {
				t.Fatalf("run after cancel while waiting = %v, want nil\n%s", err, stderr.String())
			}
			// Below the 10 s attempt: the cancel must cut it short.
			if took := time.Since(cancelled); took > 8*time.Second {
				t.Fatalf("run returned %v after cancellation while waiting, want within 8s\n%s", took, stderr.String())
			}
			out := stderr.String()
			if !strings.Contains(out, "stopped while waiting for its dependencies") || strings.Contains(out, `"msg":"query service started"`) {
				t.Errorf("log after a stop while waiting:\n%s", out)
			}
			if _, err := http.Get(base + "/healthz"); err == nil {
				t.Errorf("the http server still answers after run returned")
			}
		})
	}
}

// PPROF_ADDR turns on the profiler on a listener of its own, from the
// start (while the reader still waits for its dependencies); the API port
// does not serve it.
func TestServeServesProfilerWhenAsked(t *testing.T) {
	t.Parallel()
	pprofAddr := closedAddr(t)
	env := map[string]string{
		"HTTP_ADDR":     "127.0.0.1:0",
		"PPROF_ADDR":    pprofAddr,
		"KAFKA_BROKERS": closedAddr(t),
		"MONGO_URI":     "mongodb://" + closedAddr(t) + "/?serverSelectionTimeoutMS=300",
	}
	var stderr syncBuffer
	base, stop := startServe(t, env, &stderr)

	res, err := http.Get("http://" + pprofAddr + "/debug/pprof/")
	if err != nil {
		t.Fatalf("GET /debug/pprof/ on PPROF_ADDR: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("GET /debug/pprof/ on PPROF_ADDR = %d %.80q, want the profile index", res.StatusCode, body)
	}
	res, err = http.Get(base + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.Errorf("GET /debug/pprof/ on HTTP_ADDR = %d, want it not served", res.StatusCode)
	}

	if err := stop(); err != nil {
		t.Errorf("serve = %v after SIGTERM, want nil", err)
	}
	if _, err := http.Get("http://" + pprofAddr + "/debug/pprof/"); err == nil {
		t.Error("profiler still answers after serve returned")
	}
}

// TestIntegrationServeWithoutCreatingTopics runs serve as a secured
// deployment does: on a TLS + SCRAM broker with ACLs, as the reader
// principal (which may not create topics), with KAFKA_CREATE_TOPICS=false,
// after the admin created the event topic but not its dead-letter topic.
// The service does not wait for Kafka at start, becomes ready, projects an
// event the writer principal publishes, and has created no topic (an
// attempt would have been refused and retried forever).
func TestIntegrationServeWithoutCreatingTopics(t *testing.T) {
	t.Parallel()
	names := kafkabroker.ServiceTopics{Events: "eventos-nocreate", EventsDLQ: "eventos-nocreate.dlq", EventsGroup: "proyeccion-nocreate"}
	// The event topic only, created as admin.
	b := kafkabroker.StartT(t, kafkabroker.Options{Security: &kafkabroker.Security{
		Dir: t.TempDir(), Principals: kafkabroker.ServicePrincipals(names)}}, 2, names.Events)
	m, err := mongowire.Start(runtest.Context(t, time.Minute), mongowire.Options{Handler: mongowire.HandlerPostgreSQL, PostgreSQLURL: pgtest.NewDatabase(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	user, pass, err := b.Credentials(kafkabroker.ReaderPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HTTP_ADDR":              "127.0.0.1:0",
		"KAFKA_BROKERS":          b.Addr(),
		"KAFKA_TLS_ENABLED":      "true",
		"KAFKA_TLS_CA_FILE":      b.CAFile(),
		"KAFKA_SASL_MECHANISM":   string(kafkabroker.Mechanism),
		"KAFKA_SASL_USERNAME":    user,
		"KAFKA_SASL_PASSWORD":    pass,
		"KAFKA_CREATE_TOPICS":    "false",
		"KAFKA_EVENTS_TOPIC":     names.Events,
		"KAFKA_EVENTS_DLQ_TOPIC": names.EventsDLQ,
		"KAFKA_GROUP_ID":         names.EventsGroup,
		"MONGO_URI":              m.URI(),
		"MONGO_DATABASE":         "query_nocreate",
		"SHUTDOWN_TIMEOUT":       "5s",
	}
	var stderr syncBuffer
	base, stop := startServe(t, env, &stderr)
	eventually(t, time.Minute, "readiness", func() bool { return getJSON(t, base+"/readyz", nil) == http.StatusOK })
	if strings.Contains(stderr.String(), `"msg":"waiting for kafka"`) {
		t.Errorf("serve waited for Kafka to create topics with KAFKA_CREATE_TOPICS=false:\n%s", stderr.String())
	}

	writer, err := b.ClientConfig(kafkabroker.WriterPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	const id = "0196a1b2-c3d4-4e5f-8a9b-0c1d2e3f4c01"
	publishAs(t, writer, names.Events, creada(id, 1, time.Date(2025, 8, 1, 9, 0, 0, 0, time.UTC)))
	var got map[string]any
	if code := getJSON(t, base+"/v1/companias/"+id+"?min_version=1&wait=10s", &got); code != http.StatusOK || got["id"] != id {
		t.Fatalf("read-your-writes GET = %d %v\n%s", code, got, stderr.String())
	}

	admin, err := b.ClientConfig(kafkabroker.AdminPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	if got := topicNames(t, admin); !got[names.Events] || got[names.EventsDLQ] {
		t.Errorf("topics after serve = %v, want %s and not %s", got, names.Events, names.EventsDLQ)
	}

	if err := stop(); err != nil {
		t.Fatalf("run after cancel = %v\n%s", err, stderr.String())
	}
}

// topicNames lists the topics of the cluster cfg reaches, reading all
// metadata (naming no topic, so that nothing is auto-created).
func topicNames(t *testing.T, cfg kafkakit.Config) map[string]bool {
	t.Helper()
	d, err := cfg.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.DialContext(t.Context(), "tcp", cfg.Brokers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range parts {
		out[p.Topic] = true
	}
	return out
}
