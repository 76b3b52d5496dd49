package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// TestEndToEndKafkaIntake produces CrearCompania commands to the commands
// topic (one of them twice, one malformed, one with invalid data) and checks
// that each valid command creates exactly one company, visible on the
// reader, and that the bad ones are dead-lettered with their reason.
func TestEndToEndKafkaIntake(t *testing.T) {
	in := startInfra(t)
	in.startWriter(t)
	reader := in.startReader(t)
	ctx := t.Context()

	cmd := func(n int) []byte {
		b, err := json.Marshal(companiacmd.CrearCompania{
			ID: fmt.Sprintf("e2e-intake-cmd-%d", n),
			Data: companiacmd.CrearCompaniaData{
				Nombre:         fmt.Sprintf("Intake %d", n),
				Email:          fmt.Sprintf("intake%d@e2e.example.com", n),
				Identificacion: fmt.Sprintf("KIN-%d", n),
			},
		})
		if err != nil {
			t.Fatalf("marshal command: %v", err)
		}
		return b
	}
	malformed := []byte(`{"id": "e2e-intake-bad", "data": {"nombre": `)
	invalid := []byte(`{"id": "e2e-intake-invalid", "data": {"nombre": "Sin Correo", "email": "no-es-un-correo", "identificacion": "KIN-X"}}`)
	// One key: one partition, so the commands are consumed in this order
	// and, once the last one is visible, every earlier one was handled.
	key := []byte("e2e-intake")
	msgs := []kafka.Message{
		{Key: key, Value: cmd(1)},
		{Key: key, Value: cmd(2)},
		{Key: key, Value: cmd(1)}, // sent twice: creates nothing the second time
		{Key: key, Value: malformed},
		{Key: key, Value: invalid},
		{Key: key, Value: cmd(3)},
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(in.broker.Addr()),
		Topic:        commandsTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    &kafka.Transport{},
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce commands: %v", err)
	}

	// The last command reaches the reader: every command was handled.
	for _, n := range []int{3, 1, 2} {
		ident := fmt.Sprintf("KIN-%d", n)
		pollUntil(t, 60*time.Second, func() (bool, string) {
			items, err := listByIdentificacion(ctx, reader, ident)
			return err == nil && len(items) == 1, fmt.Sprintf("reader list identificacion=%s: %d items, error %v", ident, len(items), err)
		})
	}
	var total int
	if err := in.db.QueryRow(ctx, `SELECT count(*) FROM companias`).Scan(&total); err != nil {
		t.Fatalf("count companias: %v", err)
	}
	if total != 3 {
		t.Errorf("PostgreSQL holds %d companies, want 3 (the duplicate command must create nothing)", total)
	}
	pollUntil(t, 30*time.Second, func() (bool, string) {
		var s estadisticas
		status, _, err := doInto(ctx, http.MethodGet, reader.base+"/v1/estadisticas", nil, nil, &s)
		return err == nil && status == http.StatusOK && s.Total == 3, fmt.Sprintf("estadisticas %+v, status %d, error %v", s, status, err)
	})
	for n := 1; n <= 3; n++ {
		items, err := listByIdentificacion(ctx, reader, fmt.Sprintf("KIN-%d", n))
		if err != nil || len(items) != 1 {
			t.Errorf("reader list identificacion=KIN-%d: %d items, error %v; want exactly 1", n, len(items), err)
		}
	}

	// The malformed and the invalid commands are on the dead-letter topic.
	reasons := readDeadLetters(t, in.broker.Addr(), 2)
	if got := reasons[string(malformed)]; got != deadletter.ReasonMalformed {
		t.Errorf("dead-letter reason of the malformed command = %q, want %q", got, deadletter.ReasonMalformed)
	}
	if got := reasons[string(invalid)]; got != deadletter.ReasonInvalid {
		t.Errorf("dead-letter reason of the invalid command = %q, want %q", got, deadletter.ReasonInvalid)
	}
}

// listByIdentificacion returns the reader's companies with identificacion.
func listByIdentificacion(ctx context.Context, reader *proc, ident string) ([]compania, error) {
	var page struct {
		Items []compania `json:"items"`
	}
	u := reader.base + "/v1/companias?identificacion=" + url.QueryEscape(ident)
	status, _, err := doInto(ctx, http.MethodGet, u, nil, nil, &page)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u, status)
	}
	return page.Items, nil
}

// readDeadLetters reads the commands dead-letter topic from the start until
// it holds want records (failing t after 30 s) and returns each record's
// dlq_reason by value. It checks the original-topic header too.
func readDeadLetters(t *testing.T, broker string, want int) map[string]string {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(broker),
		kgo.ConsumeTopics(commandsDLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out := make(map[string]string)
	for len(out) < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("dead-letter topic holds %d records after 30s, want %d: %v", len(out), want, out)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s/%d: %v", topic, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			h := make(map[string]string, len(r.Headers))
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if h[deadletter.HeaderTopic] != commandsTopic {
				t.Errorf("dead letter %q: %s = %q, want %q", r.Value, deadletter.HeaderTopic, h[deadletter.HeaderTopic], commandsTopic)
			}
			out[string(r.Value)] = h[deadletter.HeaderReason]
		})
	}
	if len(out) != want {
		t.Errorf("dead-letter topic holds %d records, want %d: %v", len(out), want, out)
	}
	return out
}
