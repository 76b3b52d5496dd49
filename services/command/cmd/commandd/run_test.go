package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/libs/devinfra/runtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// getStatus polls url until it answers or the deadline passes, and returns
// the status and body of the first answer.
func getStatus(t *testing.T, url string, within time.Duration) (int, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res.StatusCode, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no answer within %v: %v", url, within, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// METRICS_ADDR serves /metrics and PPROF_ADDR the profiler, each on a
// listener of its own: the API port serves neither.
func TestIntegrationRunServesAdminListeners(t *testing.T) {
	t.Parallel()
	broker := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	httpAddr, pprofAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env := map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "KAFKA_BROKERS": broker.Addr(), "KAFKA_COMMANDS_ENABLED": "false",
		"HTTP_ADDR": httpAddr, "PPROF_ADDR": pprofAddr, "METRICS_ADDR": metricsAddr, "LOG_LEVEL": "error",
	}
	runtest.Start(t, func(ctx context.Context) error {
		return run(ctx, nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	})

	code, body := getStatus(t, "http://"+pprofAddr+"/debug/pprof/", 30*time.Second)
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("GET /debug/pprof/ on PPROF_ADDR = %d %.80q, want the profile index", code, body)
	}
	if code, _ := getStatus(t, "http://"+httpAddr+"/debug/pprof/", 30*time.Second); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on HTTP_ADDR = %d, want 404", code)
	}
	code, body = getStatus(t, "http://"+metricsAddr+"/metrics", 30*time.Second)
	if code != http.StatusOK || !strings.Contains(body, "companias_outbox_backlog_up") {
		t.Errorf("GET /metrics on METRICS_ADDR = %d %.80q, want the exposition", code, body)
	}
	if code, _ := getStatus(t, "http://"+httpAddr+"/metrics", 30*time.Second); code != http.StatusNotFound {
		t.Errorf("GET /metrics on HTTP_ADDR = %d, want 404", code)
	}
}

// With the Kafka intake on, /metrics reports the command group's lag for
// the partitions this replica owns (all of them: it is alone), labelled
// with the topic and group of the configuration, like the query service.
func TestIntegrationRunExposesIntakeLag(t *testing.T) {
	t.Parallel()
	broker := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	metricsAddr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "KAFKA_BROKERS": broker.Addr(), "KAFKA_TOPIC_PARTITIONS": "2",
		"KAFKA_COMMANDS_TOPIC": "cmds-lag", "KAFKA_COMMANDS_GROUP_ID": "cmds-lag-group",
		"HTTP_ADDR": freeAddr(t), "METRICS_ADDR": metricsAddr, "LOG_LEVEL": "error",
	}
	runtest.Start(t, func(ctx context.Context) error {
		return run(ctx, nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	})

	want := []string{
		`companias_consumer_owned_partitions{group="cmds-lag-group",topic="cmds-lag"} 2`,
		`companias_consumer_lag{group="cmds-lag-group",partition="0",topic="cmds-lag"} 0`,
		`companias_consumer_lag{group="cmds-lag-group",partition="1",topic="cmds-lag"} 0`,
		`companias_consumer_committed_offset{group="cmds-lag-group",partition="1",topic="cmds-lag"} -1`,
		`companias_consumer_high_watermark{group="cmds-lag-group",partition="1",topic="cmds-lag"} 0`,
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body := getStatus(t, "http://"+metricsAddr+"/metrics", 30*time.Second)
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", missing, body)
		}
		<-time.After(50 * time.Millisecond)
	}
}
