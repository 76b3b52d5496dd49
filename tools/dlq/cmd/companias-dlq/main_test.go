package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/tools/dlq/internal/dlqtest"
	"github.com/propalpes/companias/tools/dlq/internal/replay"
	"github.com/segmentio/kafka-go"
)

var (
	cmdTopic = companiacmd.DefaultTopic
	cmdDLQ   = deadletter.Topic(companiacmd.DefaultTopic)
	evtDLQ   = deadletter.Topic(companiaevent.DefaultTopic)
)

// seed starts a broker with the real topic names and dead-letters three
// commands: two malformed (keys a, b) and one conflict (key c, an hour old).
func seed(t *testing.T) string {
	t.Helper()
	addr := dlqtest.StartBroker(t, cmdTopic, cmdDLQ, evtDLQ, "elsewhere")
	now := time.Now()
	dlqtest.ProduceDead(t, addr, cmdDLQ,
		dlqtest.Dead{Key: "a", Value: `{"id":"a"`, Reason: deadletter.ReasonMalformed, Error: "unexpected end of JSON input", OriginalTopic: cmdTopic, Time: now,
			Headers: []kafka.Header{{Key: "traceparent", Value: []byte("00-aa-bb-01")}}},
		dlqtest.Dead{Key: "b", Value: strings.Repeat("x", 300), Reason: deadletter.ReasonMalformed, Error: "not json", OriginalTopic: cmdTopic, Time: now},
		dlqtest.Dead{Key: "c", Value: `{"id":"c","nit":"900"}`, Reason: deadletter.ReasonConflict, Error: "duplicate nit", OriginalTopic: cmdTopic, Time: now.Add(-2 * time.Hour)},
	)
	return addr
}

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), args, env(nil), &out, &errb)
	return out.String(), errb.String(), err
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestIntegrationCLIList(t *testing.T) {
	t.Parallel()
	addr := seed(t)
	out, errOut, err := runCLI(t, "list", "-brokers", addr, "-topic", cmdDLQ)
	if err != nil {
		t.Fatalf("list: %v\n%s", err, errOut)
	}
	ls := lines(out)
	if len(ls) != 3 {
		t.Fatalf("list printed %d lines:\n%s", len(ls), out)
	}
	joined := strings.Join(ls, "\n")
	for _, want := range []string{
		"reason=malformed from=" + cmdTopic + "/1/", `key="a"`, `error="unexpected end of JSON input"`,
		`value="{\"id\":\"a\""`, "(300 bytes)", "reason=conflict",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("list output lacks %q:\n%s", want, joined)
		}
	}
	if !strings.Contains(errOut, "3 scanned, 3 matched") || !strings.Contains(errOut, "3/3 scanned") {
		t.Errorf("stderr lacks progress/summary:\n%s", errOut)
	}

	for _, tc := range []struct {
		args []string
		keys string
	}{
		{[]string{"-reason", "malformed"}, "ab"},
		{[]string{"-since", "1h"}, "ab"},
		{[]string{"-until", "1h"}, "c"},
		{[]string{"-key", "b"}, "b"},
		{[]string{"-grep", "nit"}, "c"},
		{[]string{"-reason", "invalid"}, ""},
	} {
		out, errOut, err := runCLI(t, append([]string{"list", "-brokers", addr, "-topic", cmdDLQ, "-json"}, tc.args...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, errOut)
		}
		var keys string
		for _, l := range lines(out) {
			var r jsonRecord
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%v: bad JSON line %q: %v", tc.args, l, err)
			}
			keys += r.Key
		}
		if keys != tc.keys {
			t.Errorf("%v: keys %q, want %q", tc.args, keys, tc.keys)
		}
	}

	out, _, err = runCLI(t, "list", "-brokers", addr, "-topic", cmdDLQ, "-json", "-key", "a")
	if err != nil {
		t.Fatal(err)
	}
	var r jsonRecord
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Topic != cmdDLQ || r.Reason != "malformed" || r.OriginalTopic != cmdTopic || r.OriginalPartition != 1 ||
		r.ConsumerGroup != "test-group" || r.DLQTime == "" || r.ValuePreview != `{"id":"a"` || r.ValueBytes != 9 ||
		len(r.Headers) != 1 || r.Headers[0].Key != "traceparent" {
		t.Fatalf("json record = %+v", r)
	}

	// Listing is read-only: no consumer group, no offsets, the DLQ unchanged.
	if groups := dlqtest.Groups(t, addr); len(groups) != 0 {
		t.Fatalf("listing created consumer groups %v", groups)
	}
	// An empty DLQ lists nothing.
	out, errOut, err = runCLI(t, "list", "-brokers", addr, "-topic", evtDLQ)
	if err != nil || out != "" || !strings.Contains(errOut, "0 scanned, 0 matched") {
		t.Fatalf("empty topic: %v %q %q", err, out, errOut)
	}
	// An unknown topic is an error, not a usage error.
	_, _, err = runCLI(t, "list", "-brokers", addr, "-topic", "nope.dlq")
	if err == nil || errors.As(err, new(usageError)) {
		t.Fatalf("unknown topic: %v", err)
	}
}

func TestIntegrationCLIReplay(t *testing.T) {
	t.Parallel()
	addr := seed(t)
	base := []string{"replay", "-brokers", addr, "-topic", cmdDLQ, "-reason", "malformed"}

	// Dry run: prints the two matches and writes nothing.
	out, errOut, err := runCLI(t, append(base, "-dry-run")...)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	if ls := lines(out); len(ls) != 2 || !strings.Contains(out, "-> "+cmdTopic) {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if !strings.Contains(errOut, "dry run: would replay to "+cmdTopic+" (2)") {
		t.Fatalf("dry run summary:\n%s", errOut)
	}
	if n := dlqtest.EndOffsets(t, addr, cmdTopic); n != 0 {
		t.Fatalf("dry run wrote %d messages", n)
	}

	// Without -yes nothing is written either.
	_, _, err = runCLI(t, base...)
	if err == nil || !strings.Contains(err.Error(), "-yes") {
		t.Fatalf("without -yes: %v", err)
	}
	if n := dlqtest.EndOffsets(t, addr, cmdTopic); n != 0 {
		t.Fatalf("replay without -yes wrote %d messages", n)
	}

	// With -yes: both go back to the command topic without dlq_* headers.
	_, errOut, err = runCLI(t, append(base, "-yes")...)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "2 replayed to "+cmdTopic) {
		t.Fatalf("replay summary:\n%s", errOut)
	}
	if n := dlqtest.EndOffsets(t, addr, cmdTopic); n != 2 {
		t.Fatalf("%s has %d messages, want 2", cmdTopic, n)
	}
	// Listing the command topic shows no DLQ metadata but the replay marker.
	out, _, err = runCLI(t, "list", "-brokers", addr, "-topic", cmdTopic, "-json", "-key", "a")
	if err != nil {
		t.Fatal(err)
	}
	var r jsonRecord
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Reason != "" || r.OriginalTopic != "" || r.ValuePreview != `{"id":"a"` || len(r.Headers) != 1 || r.Headers[0].Key != "traceparent" {
		t.Fatalf("replayed record = %+v", r)
	}

	// -to overrides the destination.
	_, errOut, err = runCLI(t, "replay", "-brokers", addr, "-topic", cmdDLQ, "-key", "c", "-to", "elsewhere", "-yes")
	if err != nil {
		t.Fatalf("replay -to: %v\n%s", err, errOut)
	}
	if n := dlqtest.EndOffsets(t, addr, "elsewhere"); n != 1 {
		t.Fatalf("elsewhere has %d messages", n)
	}
	if n := dlqtest.EndOffsets(t, addr, cmdTopic); n != 2 {
		t.Fatalf("-to also wrote to %s", cmdTopic)
	}

	// Nothing matching is not an error.
	_, errOut, err = runCLI(t, "replay", "-brokers", addr, "-topic", cmdDLQ, "-key", "zzz", "-yes")
	if err != nil || !strings.Contains(errOut, "nothing to replay") {
		t.Fatalf("no match: %v %q", err, errOut)
	}
	if groups := dlqtest.Groups(t, addr); len(groups) != 0 {
		t.Fatalf("replay created consumer groups %v", groups)
	}
}

// A dead letter's dlq_original_topic is data anyone able to write to the DLQ
// can set: replay writes only to the topic the DLQ's name implies and the
// ones the operator allows; the others are refused, counted, reported and
// never written.
func TestIntegrationCLIReplayRefusesTopicsNotAllowed(t *testing.T) {
	t.Parallel()
	evtTopic := companiaevent.DefaultTopic
	addr := dlqtest.StartBroker(t, cmdTopic, cmdDLQ, evtTopic, "victim")
	now := time.Now()
	dlqtest.ProduceDead(t, addr, cmdDLQ,
		dlqtest.Dead{Key: "a", Value: `{"id":"a"}`, Reason: deadletter.ReasonInvalid, OriginalTopic: cmdTopic, Time: now},
		dlqtest.Dead{Key: "b", Value: `{"id":"b"}`, Reason: deadletter.ReasonInvalid, OriginalTopic: evtTopic, Time: now}, // the event topic, from the command DLQ
		dlqtest.Dead{Key: "c", Value: `{"id":"c"}`, Reason: deadletter.ReasonInvalid, OriginalTopic: "victim", Time: now}, // an arbitrary topic
	)
	base := []string{"replay", "-brokers", addr, "-topic", cmdDLQ}
	written := func() map[string]int64 {
		m := map[string]int64{}
		for _, topic := range []string{cmdTopic, evtTopic, "victim"} {
			m[topic] = dlqtest.EndOffsets(t, addr, topic)
		}
		return m
	}

	// The dry run shows each refusal.
	out, errOut, err := runCLI(t, append(base, "-dry-run")...)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	byKey := map[string]string{}
	for _, l := range lines(out) {
		for _, k := range []string{"a", "b", "c"} {
			if strings.Contains(l, `key="`+k+`"`) {
				byKey[k] = l
			}
		}
	}
	if len(lines(out)) != 3 || !strings.HasSuffix(byKey["a"], "-> "+cmdTopic) ||
		!strings.Contains(byKey["b"], "-> "+evtTopic+" REFUSED") || !strings.Contains(byKey["c"], "-> victim REFUSED") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if want := "would replay to " + cmdTopic + " (1), would refuse " + evtTopic + " (1), victim (1) (allowed: " + cmdTopic + ")"; !strings.Contains(errOut, want) {
		t.Fatalf("dry run summary lacks %q:\n%s", want, errOut)
	}
	out, _, err = runCLI(t, append(base, "-dry-run", "-json")...)
	if err != nil {
		t.Fatal(err)
	}
	var refused string
	for _, l := range lines(out) {
		var r jsonRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Refused {
			refused += r.Key
		}
	}
	if refused != "bc" && refused != "cb" {
		t.Fatalf("-json marks %q refused, want bc:\n%s", refused, out)
	}

	// Replay writes the allowed one, refuses the others, and fails.
	_, errOut, err = runCLI(t, append(base, "-yes")...)
	if err == nil || !strings.Contains(err.Error(), "2 message(s) refused") || !strings.Contains(errOut, "2 refused, 1 replayed to "+cmdTopic) {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	if got, want := written(), map[string]int64{cmdTopic: 1, evtTopic: 0, "victim": 0}; !maps.Equal(got, want) {
		t.Fatalf("messages per topic %v, want %v", got, want)
	}

	// When every match is refused, nothing is written.
	_, _, err = runCLI(t, append(base, "-key", "b", "-yes")...)
	if err == nil || !strings.Contains(err.Error(), "nothing written") {
		t.Fatalf("only a refused match: %v", err)
	}

	// -allow-topic lets the operator allow a topic.
	_, errOut, err = runCLI(t, append(base, "-key", "c", "-allow-topic", "elsewhere,victim", "-yes")...)
	if err != nil {
		t.Fatalf("replay -allow-topic victim: %v\n%s", err, errOut)
	}
	if got, want := written(), map[string]int64{cmdTopic: 1, evtTopic: 0, "victim": 1}; !maps.Equal(got, want) {
		t.Fatalf("messages per topic %v, want %v", got, want)
	}
}

func TestIntegrationCLIReplayWithoutOriginalTopic(t *testing.T) {
	t.Parallel()
	addr := dlqtest.StartBroker(t, evtDLQ)
	dlqtest.ProduceDead(t, addr, evtDLQ, dlqtest.Dead{Key: "k", Reason: deadletter.ReasonInvalid, Time: time.Now()})
	_, _, err := runCLI(t, "replay", "-brokers", addr, "-topic", evtDLQ, "-yes")
	if !errors.Is(err, replay.ErrNoTarget) {
		t.Fatalf("replay without dlq_original_topic: %v", err)
	}
}

func TestRunUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		nil,
		{"purge"},
		{"list"},
		{"list", "-topic", "t", "-nope"},
		{"list", "-topic", "t", "-reason", "bogus"},
		{"list", "-topic", "t", "-since", "yesterday"},
		{"list", "-topic", "t", "-until", "tomorrow"},
		{"list", "-topic", "t", "-since", "1h", "-until", "2h"},
		{"list", "-topic", "t", "-brokers", " , "},
		{"list", "-topic", "t", "extra"},
		{"list", "-topic", "t", "-to", "x"}, // -to is replay-only
		{"replay", "-topic", "t", "-to", "t"},
		{"replay", "-topic", "t.dlq", "-allow-topic", ""},
		{"replay", "-topic", "t.dlq", "-allow-topic", "a,,b"},
		{"replay", "-topic", "t.dlq", "-allow-topic", "a,t.dlq"},
		{"list", "-topic", "t", "-allow-topic", "x"}, // replay-only
	} {
		_, _, err := runCLI(t, args...)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	out, _, err := runCLI(t, "help")
	if err != nil || !strings.Contains(out, "companias-dlq list") {
		t.Fatalf("help: %v %q", err, out)
	}
	_, errOut, err := runCLI(t, "replay", "-help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "idempotent") || !strings.Contains(errOut, "-dry-run") {
		t.Fatalf("replay -help: %v\n%s", err, errOut)
	}
}

func TestRunUnreachableBroker(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for _, cmd := range []string{"list", "replay"} {
		var out, errb bytes.Buffer
		err := run(ctx, []string{cmd, "-brokers", "127.0.0.1:1", "-topic", cmdDLQ}, env(nil), &out, &errb)
		if err == nil || errors.As(err, new(usageError)) || !strings.HasPrefix(err.Error(), cmd+":") {
			t.Fatalf("%s on an unreachable broker: %v", cmd, err)
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestParseKafkaSettings checks that the tool reads the services' Kafka
// variables: KAFKA_BROKERS (overridden by -brokers, defaulting to the local
// broker) and the TLS and SASL settings, and that a bad combination is a
// usage error naming the variable (kafkakit's rules are tested there).
func TestParseKafkaSettings(t *testing.T) {
	t.Parallel()
	now := time.Now()
	parseEnv := func(e map[string]string, args ...string) (options, error) {
		return parse("list", append([]string{"-topic", cmdDLQ}, args...), env(e), io.Discard, now)
	}
	o, err := parseEnv(nil)
	if err != nil || !slices.Equal(o.kafka.Brokers, []string{"127.0.0.1:9092"}) || o.kafka.ClientID != "companias-dlq" {
		t.Fatalf("no environment: brokers %v, client id %q, %v", o.kafka.Brokers, o.kafka.ClientID, err)
	}
	secured := map[string]string{
		"KAFKA_BROKERS": "k1:9093,k2:9093", "KAFKA_TLS_ENABLED": "true", "KAFKA_TLS_CA_FILE": "/ca.pem",
		"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "ops", "KAFKA_SASL_PASSWORD": "pw",
	}
	o, err = parseEnv(secured)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.kafka.Brokers, []string{"k1:9093", "k2:9093"}) || !o.kafka.TLS.Enabled || o.kafka.TLS.CAFile != "/ca.pem" ||
		o.kafka.SASL.Mechanism != kafkakit.MechanismSCRAMSHA512 || o.kafka.SASL.Username != "ops" || o.kafka.SASL.Password != "pw" {
		t.Errorf("secured environment: %+v", o.kafka)
	}
	o, err = parseEnv(secured, "-brokers", "k3:9093")
	if err != nil || !slices.Equal(o.kafka.Brokers, []string{"k3:9093"}) {
		t.Errorf("-brokers over KAFKA_BROKERS: %v, %v", o.kafka.Brokers, err)
	}
	_, err = parseEnv(map[string]string{"KAFKA_BROKERS": "nohost", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_TLS_KEY_FILE": "/k.pem"})
	if !errors.As(err, new(usageError)) {
		t.Fatalf("bad Kafka settings: %v, want a usage error", err)
	}
	for _, name := range []string{"KAFKA_BROKERS", "KAFKA_SASL_USERNAME", "KAFKA_TLS_KEY_FILE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
