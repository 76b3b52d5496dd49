package kafkabroker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
)

var topics = kafkabroker.ServiceTopics{
	Events:        "eventos",
	EventsDLQ:     "eventos.dlq",
	EventsGroup:   "proyeccion",
	Commands:      "comandos",
	CommandsDLQ:   "comandos.dlq",
	CommandsGroup: "intake",
	ExternalGroup: "external",
}

// startSecure starts a secured broker with the service principals and the
// topics of the issue.
func startSecure(t *testing.T) *kafkabroker.Broker {
	t.Helper()
	b := kafkabroker.StartT(t, kafkabroker.Options{Security: &kafkabroker.Security{
		Dir:        t.TempDir(),
		Principals: kafkabroker.ServicePrincipals(topics),
	}}, 0)
	if err := b.CreateTopics(testContext(t), 3, topics.Events, topics.EventsDLQ, topics.Commands, topics.CommandsDLQ); err != nil {
		t.Fatalf("CreateTopics as admin: %v", err)
	}
	return b
}

// clientConfig returns the kafkakit configuration of principal.
func clientConfig(t *testing.T, b *kafkabroker.Broker, principal string) kafkakit.Config {
	t.Helper()
	c, err := b.ClientConfig(principal)
	if err != nil {
		t.Fatalf("ClientConfig(%q): %v", principal, err)
	}
	c.ClientID = "kafkabroker-test-" + principal
	return c
}

// write produces values to topic through a kafka.Writer on cfg's Transport.
func write(ctx context.Context, t *testing.T, cfg kafkakit.Config, topic string, values ...string) error {
	t.Helper()
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatalf("Transport: %v", err)
	}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        topic,
		Transport:    tr,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  1,
	}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: []byte(v), Value: []byte(v)}
	}
	return w.WriteMessages(ctx, msgs...)
}

// read consumes n values from topic in group through a kafka.Reader on
// cfg's Dialer, committing each one.
func read(ctx context.Context, t *testing.T, cfg kafkakit.Config, topic, group string, n int) []string {
	t.Helper()
	d, err := cfg.Dialer()
	if err != nil {
		t.Fatalf("Dialer: %v", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           group,
		Topic:             topic,
		Dialer:            d,
		StartOffset:       kafka.FirstOffset,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: time.Second,
		JoinGroupBackoff:  100 * time.Millisecond,
	})
	defer r.Close()
	var got []string
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage from %s as %s after %d of %d: %v", topic, cfg.SASL.Username, len(got), n, err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("CommitMessages: %v", err)
		}
		got = append(got, string(m.Value))
	}
	slices.Sort(got)
	return got
}

// isAuthorizationFailure reports whether err is, or holds, a Kafka topic
// authorization failure (kafka-go wraps per-message errors in WriteErrors).
func isAuthorizationFailure(err error) bool {
	if errors.Is(err, kafka.TopicAuthorizationFailed) {
		return true
	}
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && errors.Is(e, kafka.TopicAuthorizationFailed) {
				return true
			}
		}
	}
	return false
}

// TestSecureWriterProducesAndConsumes checks, over TLS and SCRAM-SHA-512,
// that the writer principal consumes its command topic in its group and
// produces the event topic and the command DLQ, and that the external
// principal reads what the writer produced.
func TestSecureWriterProducesAndConsumes(t *testing.T) {
	t.Parallel()
	b := startSecure(t)
	ctx := testContext(t)
	admin, writer, external := clientConfig(t, b, kafkabroker.AdminPrincipal), clientConfig(t, b, kafkabroker.WriterPrincipal), clientConfig(t, b, kafkabroker.ExternalPrincipal)

	if err := write(ctx, t, admin, topics.Commands, "c1", "c2"); err != nil {
		t.Fatalf("admin writes commands: %v", err)
	}
	if got, want := read(ctx, t, writer, topics.Commands, topics.CommandsGroup, 2), []string{"c1", "c2"}; !slices.Equal(got, want) {
		t.Errorf("writer read commands %q, want %q", got, want)
	}
	if err := write(ctx, t, writer, topics.Events, "e1", "e2", "e3"); err != nil {
		t.Fatalf("writer writes events: %v", err)
	}
	if err := write(ctx, t, writer, topics.CommandsDLQ, "bad"); err != nil {
		t.Fatalf("writer writes the command DLQ: %v", err)
	}
	if got, want := read(ctx, t, external, topics.Events, topics.ExternalGroup, 3), []string{"e1", "e2", "e3"}; !slices.Equal(got, want) {
		t.Errorf("external read events %q, want %q", got, want)
	}
}

// TestSecureRefusesUnauthenticatedClients checks that a client without
// credentials, one with a wrong password and one without TLS cannot even
// read metadata, while the same client with the right settings can. (The
// broker closes the connection on a failed SCRAM exchange, which kafka-go's
// Transport reports as an unexpected EOF, not as SASLAuthenticationFailed.)
func TestSecureRefusesUnauthenticatedClients(t *testing.T) {
	t.Parallel()
	b := startSecure(t)
	good := clientConfig(t, b, kafkabroker.ExternalPrincipal)

	noCreds := good
	noCreds.SASL = kafkakit.SASL{}
	wrongPass := good
	wrongPass.SASL.Password = "not-the-password"
	noTLS := good
	noTLS.TLS = kafkakit.TLS{}
	for _, tt := range []struct {
		name string
		cfg  kafkakit.Config
		ok   bool
	}{{"right credentials", good, true}, {"no credentials", noCreds, false}, {"wrong password", wrongPass, false}, {"no TLS", noTLS, false}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			tr, err := tt.cfg.Transport(kafkakit.WithDialTimeout(5 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			client := &kafka.Client{Addr: kafka.TCP(tt.cfg.Brokers...), Transport: tr}
			resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topics.Events}})
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Metadata: %v, want the topic", err)
			case tt.ok && (len(resp.Topics) != 1 || resp.Topics[0].Error != nil):
				t.Fatalf("Metadata: %+v, want the topic without error", resp.Topics)
			case !tt.ok && err == nil:
				t.Fatalf("Metadata succeeded (%d topics), want a refusal", len(resp.Topics))
			}
		})
	}
}

// TestSecureOnlyTheWriterProducesEvents checks that the reader and the
// external principal are refused, with an authorization failure, when they
// produce to the event topic, so no one but the writer can forge an event.
func TestSecureOnlyTheWriterProducesEvents(t *testing.T) {
	t.Parallel()
	b := startSecure(t)
	for _, principal := range []string{kafkabroker.ReaderPrincipal, kafkabroker.ExternalPrincipal} {
		t.Run(principal, func(t *testing.T) {
			t.Parallel()
			err := write(testContext(t), t, clientConfig(t, b, principal), topics.Events, "forged")
			if !isAuthorizationFailure(err) {
				t.Errorf("%s writes the event topic: %v, want TopicAuthorizationFailed", principal, err)
			}
		})
	}
	// The reader may write its own DLQ, and nothing else it was not granted:
	// a topic it may not even describe is hidden from its metadata, so
	// kafka-go reports it as unknown rather than as an authorization failure.
	ctx := testContext(t)
	if err := write(ctx, t, clientConfig(t, b, kafkabroker.ReaderPrincipal), topics.EventsDLQ, "dead"); err != nil {
		t.Errorf("reader writes its DLQ: %v", err)
	}
	if err := write(ctx, t, clientConfig(t, b, kafkabroker.ReaderPrincipal), topics.Commands, "cmd"); !isAuthorizationFailure(err) && !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("reader writes the command topic: %v, want TopicAuthorizationFailed or UnknownTopicOrPartition", err)
	}
}

// TestSecureKcatReadsEventsWithTheClientFile checks that the librdkafka
// client file of the external principal lets kcat read the writer's events.
func TestSecureKcatReadsEventsWithTheClientFile(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed")
	}
	b := startSecure(t)
	ctx := testContext(t)
	if err := write(ctx, t, clientConfig(t, b, kafkabroker.WriterPrincipal), topics.Events, "e1", "e2"); err != nil {
		t.Fatalf("writer writes events: %v", err)
	}
	file := filepath.Join(t.TempDir(), "kafka-client.properties")
	if err := b.WriteClientProperties(file, kafkabroker.ExternalPrincipal); err != nil {
		t.Fatalf("WriteClientProperties: %v", err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("client file mode: %v, %v; want 0600", fi, err)
	}
	out, err := exec.CommandContext(ctx, kcat, "-F", file, "-C", "-t", topics.Events, "-e", "-f", "%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	for _, want := range []string{"e1\n", "e2\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kcat output lacks %q:\n%s", want, out)
		}
	}
}

func TestSecureRejectsBadPrincipals(t *testing.T) {
	t.Parallel()
	for _, ps := range [][]kafkabroker.Principal{
		{{Name: kafkabroker.AdminPrincipal}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "User:x"}},
		{{Name: ""}},
	} {
		b, err := kafkabroker.Start(kafkabroker.Options{Security: &kafkabroker.Security{Principals: ps}})
		if err == nil {
			b.Close()
			t.Errorf("Start with principals %v: got no error", ps)
		}
	}
}

func TestPlainClientConfig(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	c, err := b.ClientConfig("")
	if err != nil || fmt.Sprint(c.Brokers) != fmt.Sprint([]string{b.Addr()}) || c.TLS.Enabled || c.SASL.Mechanism != "" {
		t.Errorf("ClientConfig(\"\") = %+v, %v; want plaintext to %s", c, err, b.Addr())
	}
	if _, err := b.ClientConfig(kafkabroker.WriterPrincipal); err == nil {
		t.Error("ClientConfig(writer) on a plaintext broker: got no error")
	}
	if b.CAFile() != "" || b.Secured() {
		t.Errorf("plaintext broker: CAFile %q, Secured %v", b.CAFile(), b.Secured())
	}
}

// TestSecureCreateTopicsWithConfigs checks that the admin creates a topic
// with its configs on a secured broker (the dev stack's DLQ retention), and
// that the configs read back through the admin's TLS + SCRAM connection.
func TestSecureCreateTopicsWithConfigs(t *testing.T) {
	t.Parallel()
	b := kafkabroker.StartT(t, kafkabroker.Options{Security: &kafkabroker.Security{Dir: t.TempDir()}}, 0)
	ctx := testContext(t)
	const week = "604800000"
	if err := b.CreateTopicsWithConfigs(ctx, 2, map[string]string{"retention.ms": week}, "dead.letters"); err != nil {
		t.Fatalf("CreateTopicsWithConfigs: %v", err)
	}
	admin := clientConfig(t, b, kafkabroker.AdminPrincipal)
	tr, err := admin.Transport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(admin.Brokers...), Transport: tr}
	resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: "dead.letters", ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		t.Fatalf("DescribeConfigs: %v", err)
	}
	var got []string
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			got = append(got, e.ConfigName+"="+e.ConfigValue)
		}
	}
	if want := []string{"retention.ms=" + week}; !slices.Equal(got, want) {
		t.Fatalf("configs of dead.letters: %q, want %q", got, want)
	}
}
