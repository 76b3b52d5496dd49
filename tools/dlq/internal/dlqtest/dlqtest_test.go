package dlqtest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/propalpes/companias/tools/dlq/internal/dlqtest"
	"github.com/segmentio/kafka-go"
)

// TestIntegrationGroupsSeesACommittingGroup is the positive control of the
// "no consumer group" assertions: a group that commits is listed.
func TestIntegrationGroupsSeesACommittingGroup(t *testing.T) {
	t.Parallel()
	addr := dlqtest.StartBroker(t, "p")
	dlqtest.Produce(t, addr, "p", kafka.Message{Key: []byte("k"), Value: []byte("v")})
	if n := dlqtest.EndOffsets(t, addr, "p"); n != 1 {
		t.Fatalf("EndOffsets = %d", n)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "p", GroupID: "g1", MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.FetchMessage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CommitMessages(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got := dlqtest.Groups(t, addr); !slices.Contains(got, "g1") {
		t.Fatalf("Groups = %v, want g1", got)
	}
}
