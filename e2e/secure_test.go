package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
)

// The consumer groups the secured stack's principals may use.
const (
	secureCommandGroup  = "e2e-command" // startWriter's KAFKA_COMMANDS_GROUP_ID
	secureQueryGroup    = "e2e-query"   // startReader's KAFKA_GROUP_ID
	secureExternalGroup = "e2e-external"
)

// TestEndToEndSecuredKafka runs the system on a broker secured as a
// hardened cluster — TLS with a throwaway CA, SASL/SCRAM-SHA-512 and ACLs,
// one least-privilege principal per service and an external one — all
// subtests sharing the one stack. First the broker alone: clients without
// credentials or with a wrong password are refused, and neither the
// reader's nor the external principal may produce to the event topic (only
// the writer can put an event there). Then the services, configured only
// through KAFKA_* variables (password from a 0600 file, no topic creation):
// a company created over HTTP reaches PostgreSQL, the relay, the event
// topic, the reader and its view; and kcat, with the external principal's
// librdkafka client file, reads the event.
func TestEndToEndSecuredKafka(t *testing.T) {
	in := startInfraWith(t, &kafkabroker.Security{
		Dir: t.TempDir(),
		Principals: kafkabroker.ServicePrincipals(kafkabroker.ServiceTopics{
			Events:        eventsTopic,
			EventsDLQ:     eventsTopic + ".dlq",
			EventsGroup:   secureQueryGroup,
			Commands:      commandsTopic,
			CommandsDLQ:   commandsDLQ,
			CommandsGroup: secureCommandGroup,
			ExternalGroup: secureExternalGroup,
		}),
	})
	clientConfig := func(t *testing.T, principal string) kafkakit.Config {
		t.Helper()
		c, err := in.broker.ClientConfig(principal)
		if err != nil {
			t.Fatalf("ClientConfig(%s): %v", principal, err)
		}
		c.ClientID = "e2e-" + principal
		return c
	}

	t.Run("refuses clients without the right credentials", func(t *testing.T) {
		good := clientConfig(t, kafkabroker.ExternalPrincipal)
		noCreds := good
		noCreds.SASL = kafkakit.SASL{}
		wrongPass := good
		wrongPass.SASL.Password = "not-the-password"
		if err := metadata(t, good); err != nil {
			t.Fatalf("the external principal cannot read metadata: %v (the refusals below would prove nothing)", err)
		}
		if err := metadata(t, noCreds); err == nil {
			t.Error("a TLS client without SASL credentials read metadata")
		}
		if err := metadata(t, wrongPass); err == nil {
			t.Error("a client with a wrong password read metadata")
		}
	})

	t.Run("only the writer may produce events", func(t *testing.T) {
		for _, p := range []string{kafkabroker.ReaderPrincipal, kafkabroker.ExternalPrincipal} {
			err := produceOne(t, clientConfig(t, p), eventsTopic)
			if !errors.Is(err, kafka.TopicAuthorizationFailed) {
				t.Errorf("%s produced to %s: error %v, want TopicAuthorizationFailed", p, eventsTopic, err)
			}
		}
		// The refusals come from the ACLs, not from a broken connection: the
		// reader may write its own dead-letter topic.
		if err := produceOne(t, clientConfig(t, kafkabroker.ReaderPrincipal), eventsTopic+".dlq"); err != nil {
			t.Errorf("the reader cannot write its dead-letter topic: %v", err)
		}
	})

	var created compania
	t.Run("pipeline over TLS and SCRAM", func(t *testing.T) {
		writer := in.startWriter(t, secureEnv(t, in.broker, kafkabroker.WriterPrincipal)...)
		reader := in.startReader(t, secureEnv(t, in.broker, kafkabroker.ReaderPrincipal)...)
		ctx := t.Context()
		body := map[string]string{"nombre": "Cifrada SA", "email": "tls@e2e.example.com", "identificacion": "TLS-1"}
		status, _, err := doInto(ctx, http.MethodPost, writer.base+"/v1/companias", body, nil, &created)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("POST /v1/companias: status %d, error %v", status, err)
		}
		if rows := in.pgCompanias(t); rows[created.ID].Version != 1 {
			t.Fatalf("company %s not in PostgreSQL at version 1: %+v", created.ID, rows[created.ID])
		}
		v, err := readView(ctx, reader, created.ID, 1, time.Now().Add(60*time.Second))
		if err != nil {
			t.Fatalf("the reader's view of %s: %v", created.ID, err)
		}
		if d := created.diff(v); d != "" {
			t.Errorf("view differs from the writer's answer: %s", d)
		}
	})

	t.Run("kcat reads the event with the external client file", func(t *testing.T) {
		if created.ID == "" {
			t.Fatal("no company was created (see the pipeline subtest)")
		}
		kcat, err := exec.LookPath("kcat")
		if err != nil {
			t.Fatalf("kcat is not on PATH (install it, e.g. apt-get install kcat): %v", err)
		}
		props := filepath.Join(t.TempDir(), "kafka-client.properties")
		if err := in.broker.WriteClientProperties(props, kafkabroker.ExternalPrincipal); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, "-F", props, "-C", "-t", eventsTopic, "-e", "-q", "-f", "%k %s\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, stderr.String())
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, created.ID+" ") && strings.Contains(line, created.Nombre) {
				return
			}
		}
		t.Fatalf("kcat did not read the event of %s; it printed:\n%s\n%s", created.ID, out, stderr.String())
	})
}

// secureEnv returns the KAFKA_* settings with which a service connects to
// the secured broker as principal: TLS trusting the broker's CA, SCRAM-SHA-512
// with the password in a 0600 file, and no topic creation (the admin made
// them). They come after startWriter's and startReader's KAFKA_BROKERS.
func secureEnv(t *testing.T, b *kafkabroker.Broker, principal string) []string {
	t.Helper()
	user, pass, err := b.Credentials(principal)
	if err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(t.TempDir(), principal+".password")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{
		kafkakit.TLSEnabledVar + "=true",
		kafkakit.TLSCAFileVar + "=" + b.CAFile(),
		kafkakit.SASLMechanismVar + "=" + string(kafkabroker.Mechanism),
		kafkakit.SASLUsernameVar + "=" + user,
		kafkakit.SASLPasswordFileVar + "=" + passFile,
		"KAFKA_CREATE_TOPICS=false",
	}
}

// metadata asks the broker for the event topic's metadata with cfg.
func metadata(t *testing.T, cfg kafkakit.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	tr, err := cfg.Transport(kafkakit.WithDialTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("Transport: %v", err)
	}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr}
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{eventsTopic}})
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 || resp.Topics[0].Error != nil {
		return fmt.Errorf("metadata of %s: %+v", eventsTopic, resp.Topics)
	}
	return nil
}

// produceOne writes one record to topic with cfg, returning the record's
// own error when the broker refuses it.
func produceOne(t *testing.T, cfg kafkakit.Config, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	tr, err := cfg.Transport()
	if err != nil {
		t.Fatalf("Transport: %v", err)
	}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(cfg.Brokers...), Topic: topic, Transport: tr,
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: 1}
	defer w.Close()
	err = w.WriteMessages(ctx, kafka.Message{Key: []byte("forged"), Value: []byte(`{"forged": true}`)})
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == 1 {
		return we[0]
	}
	return err
}
