package companiaevent_test

import (
	"os"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// TestAsyncAPIDocumentsEveryEvent keeps the AsyncAPI document in step with
// the Go contract: every event type, its schema file and every header.
func TestAsyncAPIDocumentsEveryEvent(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want := []string{"asyncapi: 3.0.0", "address: " + companiaevent.DefaultTopic}
	for _, n := range companiaevent.Names() {
		want = append(want, "name: "+n.Type(), "companiaevent/schema/"+string(n)+".v1.json")
		if _, err := os.Stat("schema/" + string(n) + ".v1.json"); err != nil {
			t.Errorf("schema file of %s: %v", n, err)
		}
	}
	for _, h := range []string{companiaevent.HeaderSpecVersion, companiaevent.HeaderID, companiaevent.HeaderSource,
		companiaevent.HeaderType, companiaevent.HeaderTime, companiaevent.HeaderSubject, companiaevent.HeaderContentType,
		companiaevent.HeaderTraceparent} {
		want = append(want, h+":")
	}
	// The secured server and its security scheme (issue 10): SASL/SCRAM
	// over TLS, declared and referenced.
	want = append(want, "protocol: kafka-secure", "securitySchemes:", "scramSha512:", "type: scramSha512",
		"$ref: '#/components/securitySchemes/scramSha512'")
	for _, w := range want {
		if !strings.Contains(doc, w) {
			t.Errorf("asyncapi.yaml lacks %q", w)
		}
	}
}
