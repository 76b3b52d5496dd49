package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// loadKafka reads env (KEY=value lines) as a service does, through
// kafkakit.Load, and fails t on any problem it reports.
func loadKafka(t *testing.T, env []string) kafkakit.Config {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	p := envconfig.New(func(k string) string { return vars[k] }, os.ReadFile, kafkakit.Variables())
	c := kafkakit.Load(p)
	if err := p.Err(); err != nil {
		t.Fatalf("kafkakit.Load of %q: %v", env, err)
	}
	return c
}

// TestSecureKafka starts the -secure broker and checks what the services
// get: 0600 password files, settings that kafkakit loads and that connect
// over TLS + SCRAM, the writer allowed and the reader refused on the event
// topic, dead-letter topics with the finite retention, and the external
// principal's client file.
func TestSecureKafka(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	o, err := parse([]string{"-secure", "-kafka-addr", "127.0.0.1:0", "-data", t.TempDir(), "-partitions", "2", "-dlq-retention", "72h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := startSecureKafka(ctx, o)
	if err != nil {
		t.Fatalf("startSecureKafka: %v", err)
	}
	t.Cleanup(s.broker.Close)

	for _, f := range []string{s.clientProps, filepath.Join(o.dataDir, secureDirName, kafkabroker.WriterPrincipal+".password"),
		filepath.Join(o.dataDir, secureDirName, kafkabroker.ReaderPrincipal+".password")} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (it holds a password)", f, fi.Mode().Perm())
		}
	}
	props, err := os.ReadFile(s.clientProps)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(props), "sasl.username="+kafkabroker.ExternalPrincipal+"\n") {
		t.Errorf("client file is not the external principal's:\n%s", props)
	}

	writer, reader := loadKafka(t, s.env[commandService]), loadKafka(t, s.env[queryService])
	for svc, env := range s.env {
		if !slices.Contains(env, "KAFKA_CREATE_TOPICS=false") {
			t.Errorf("%s: settings %q do not turn topic creation off", svc, env)
		}
	}
	if writer.SASL.Username != kafkabroker.WriterPrincipal || !writer.TLS.Enabled || writer.SASL.Mechanism != kafkakit.MechanismSCRAMSHA512 {
		t.Errorf("writer settings %+v, want TLS and SCRAM-SHA-512 as %s", writer, kafkabroker.WriterPrincipal)
	}
	if err := produce(ctx, t, writer, eventsTopic); err != nil {
		t.Errorf("the writer's settings do not produce to %s: %v", eventsTopic, err)
	}
	if err := produce(ctx, t, reader, eventsTopic); !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Errorf("the reader produced to %s: %v, want TopicAuthorizationFailed", eventsTopic, err)
	}
	if err := produce(ctx, t, reader, eventsTopic+dlqSuffix); err != nil {
		t.Errorf("the reader's settings do not produce to its DLQ: %v", err)
	}

	admin, err := s.broker.ClientConfig(kafkabroker.AdminPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := admin.Transport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(admin.Brokers...), Transport: tr}
	for topic, want := range map[string]string{eventsTopic: "-1", eventsTopic + dlqSuffix: "259200000", commandsTopic + dlqSuffix: "259200000"} {
		resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
		}}})
		if err != nil {
			t.Fatalf("DescribeConfigs %s: %v", topic, err)
		}
		if len(resp.Resources) != 1 || len(resp.Resources[0].ConfigEntries) != 1 || resp.Resources[0].ConfigEntries[0].ConfigValue != want {
			t.Errorf("%s: retention.ms %+v, want %s", topic, resp.Resources, want)
		}
	}
}

// produce writes one record to topic with cfg's settings, unwrapping a
// per-message error.
func produce(ctx context.Context, t *testing.T, cfg kafkakit.Config, topic string) error {
	t.Helper()
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatalf("Transport: %v", err)
	}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: topic, Transport: tr, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: 1}
	defer w.Close()
	err = w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")})
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == 1 {
		return we[0]
	}
	return err
}

func TestParseRejectsInfiniteDLQRetention(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"0s", "-1h"} {
		if _, err := parse([]string{"-secure", "-dlq-retention", r}); err == nil {
			t.Errorf("-dlq-retention %s accepted", r)
		}
	}
}

// make run serves both APIs without authentication: on loopback only.
func TestParseKeepsTheAPIsOnLoopback(t *testing.T) {
	t.Parallel()
	o, err := parse(nil)
	if err != nil || o.commandAddr != "127.0.0.1:8080" || o.queryAddr != "127.0.0.1:8081" {
		t.Fatalf("parse(nil) = %+v, %v; want the APIs on 127.0.0.1", o, err)
	}
	for _, args := range [][]string{{"-command-addr", ":8080"}, {"-query-addr", "0.0.0.0:8081"}, {"-query-addr", "192.168.1.5:8081"}} {
		if _, err := parse(args); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("parse(%q) = %v, want a loopback problem", args, err)
		}
	}
	if _, err := parse([]string{"-command-addr", "localhost:18080", "-query-addr", "[::1]:18081"}); err != nil {
		t.Errorf("loopback addresses refused: %v", err)
	}
}
