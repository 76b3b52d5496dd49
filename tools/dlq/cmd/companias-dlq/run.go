package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/propalpes/companias/libs/contracts/deadletter"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/seedwork/progress"
	"github.com/propalpes/companias/tools/dlq/internal/replay"
	"github.com/propalpes/companias/tools/dlq/internal/scan"
)

// usageError is a bad command line; main exits 2 on it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// previewLen bounds the value preview.
const previewLen = 120

const topUsage = `companias-dlq lists and replays the dead-letter topics of the companias services.

Usage:
  companias-dlq list   -topic <dlq topic> [filters] [-json]
  companias-dlq replay -topic <dlq topic> [filters] [-to <topic>] [-allow-topic <topic>,...] [-dry-run] [-yes]

Dead-letter topics: topic-comando-crear-compania.dlq (commands),
                    topic-eventos-compania.dlq (events).
Run "companias-dlq <command> -help" for the flags of a command.
`

const listUsage = `Usage: companias-dlq list -topic <dlq topic> [flags]

Prints one line (or, with -json, one JSON object) per dead-lettered message
that matches every filter: partition/offset, dlq_time, reason, original
topic/partition/offset, key, error and a value preview. The topic is read
from its first offset to the high watermarks captured at start, with plain
partition fetches: no consumer group is joined and no offset is committed.

Flags:
`

const replayUsage = `Usage: companias-dlq replay -topic <dlq topic> [flags]

Re-produces every matching dead-lettered message to its original topic (the
dlq_original_topic header, or -to), with its original key, value and headers
minus the dlq_* ones, plus dlq_replayed_from=<dlq topic>/<partition>/<offset>,
so the consumer processes it afresh. Writes use acks=all and the Murmur2
partitioner, like the services' producers. The DLQ itself is left untouched.

Replay is safe to repeat: the consumers are idempotent (the command intake
keys on the command id, the projector on the event version), so a message
replayed twice, or one that had in fact been processed, changes nothing.
A message that still fails is dead-lettered again.

Replay writes only to allowed topics: the one the DLQ's name implies (-topic
minus its .dlq suffix), the -to topic, and the -allow-topic ones. The
dlq_original_topic header is data, which anyone able to write to the DLQ can
set: a message whose destination is not allowed is refused, never written,
and counted and reported (-dry-run shows it); refusals make the command fail
after the allowed messages are replayed.

Without -yes nothing is written: the matching messages are counted and the
command fails asking for -yes; -dry-run prints them instead.

Flags:
`

// options are the parsed flags of either command, and the Kafka settings.
type options struct {
	kafka  kafkakit.Config
	topic  string
	filter scan.Filter
	json   bool
	to     string
	allow  topicList // -allow-topic
	dryRun bool
	yes    bool
}

// run executes the command line args (without the program name), writing
// results to stdout and progress and summaries to stderr. getenv (os.Getenv
// in main) gives the Kafka settings the services use (KAFKA_BROKERS,
// KAFKA_TLS_*, KAFKA_SASL_*); -brokers overrides KAFKA_BROKERS.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usagef("missing command (list or replay)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return nil
	case "list", "replay":
	default:
		fmt.Fprint(stderr, topUsage)
		return usagef("unknown command %q (want list or replay)", args[0])
	}
	cmd := args[0]
	opts, err := parse(cmd, args[1:], getenv, stderr, time.Now())
	if err != nil {
		return err
	}
	bar := newScanBar(stderr, progress.IsTerminal(stderr), nil)
	if cmd == "list" {
		return list(ctx, opts, stdout, stderr, bar)
	}
	return replayCmd(ctx, opts, stdout, stderr, bar)
}

func parse(cmd string, args []string, getenv func(string) string, stderr io.Writer, now time.Time) (options, error) {
	fs := flag.NewFlagSet("companias-dlq "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	help := listUsage
	if cmd == "replay" {
		help = replayUsage
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		fs.PrintDefaults()
	}
	var o options
	brokers := fs.String("brokers", "", "comma-separated bootstrap brokers (host:port); default $KAFKA_BROKERS, else "+defaultBrokers)
	fs.StringVar(&o.topic, "topic", "", "dead-letter topic to read (required), e.g. topic-eventos-compania.dlq")
	reason := fs.String("reason", "", "only this dlq_reason: "+strings.Join(knownReasons(), ", "))
	since := fs.String("since", "", "only messages dead-lettered at or after this time: a duration ago (1h, 30m) or RFC 3339")
	until := fs.String("until", "", "only messages dead-lettered before this time: a duration ago or RFC 3339")
	fs.StringVar(&o.filter.Key, "key", "", "only messages with exactly this key")
	fs.StringVar(&o.filter.Grep, "grep", "", "only messages whose key, value or dlq_error contains this text")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per message")
	if cmd == "replay" {
		fs.StringVar(&o.to, "to", "", "write to this topic instead of each message's dlq_original_topic")
		fs.Var(&o.allow, "allow-topic", "also allow replaying to these topics (comma-separated, repeatable); by default only the -topic minus .dlq and -to are allowed")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be replayed; write nothing")
		fs.BoolVar(&o.yes, "yes", false, "really replay (without it, replay only counts the matches)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return o, usagef("unexpected argument %q", fs.Arg(0))
	}
	brokersSet := false
	fs.Visit(func(f *flag.Flag) { brokersSet = brokersSet || f.Name == "brokers" })
	if brokersSet && strings.Trim(*brokers, " ,") == "" {
		return o, usagef("-brokers is empty")
	}
	var err error
	if o.kafka, err = loadKafka(getenv, os.ReadFile, *brokers); err != nil {
		return o, usageError{err.Error()}
	}
	if o.topic == "" {
		return o, usagef("-topic is required (e.g. topic-comando-crear-compania.dlq)")
	}
	if *reason != "" && !slices.Contains(knownReasons(), *reason) {
		return o, usagef("-reason %q is not one of %s", *reason, strings.Join(knownReasons(), ", "))
	}
	o.filter.Reason = *reason
	if o.filter.Since, err = scan.ParseTime(*since, now); err != nil {
		return o, usagef("-since: %v", err)
	}
	if o.filter.Until, err = scan.ParseTime(*until, now); err != nil {
		return o, usagef("-until: %v", err)
	}
	if !o.filter.Since.IsZero() && !o.filter.Until.IsZero() && !o.filter.Since.Before(o.filter.Until) {
		return o, usagef("-since must be before -until")
	}
	if o.to != "" && o.to == o.topic {
		return o, usagef("-to must differ from -topic")
	}
	if slices.Contains(o.allow, o.topic) {
		return o, usagef("-allow-topic must not name the dead-letter topic %s", o.topic)
	}
	return o, nil
}

// allowed is the Allow list of a replay with o: the topic the DLQ's name
// implies, -to and -allow-topic.
func (o options) allowed() replay.Allow {
	return replay.DefaultAllow(o.topic, append([]string{o.to}, o.allow...)...)
}

// topicList is a flag.Value of topic names: comma-separated, repeatable.
type topicList []string

func (l *topicList) String() string { return strings.Join(*l, ",") }

func (l *topicList) Set(v string) error {
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			return errors.New("empty topic name")
		}
		*l = append(*l, t)
	}
	return nil
}

// knownReasons are the valid -reason values.
func knownReasons() []string {
	return []string{
		deadletter.ReasonMalformed, deadletter.ReasonInvalid,
		deadletter.ReasonConflict, deadletter.ReasonUnsupportedVersion, deadletter.ReasonPanic,
	}
}

// collect plans and scans o.topic, calling each for every matching record.
func collect(ctx context.Context, o options, bar *scanBar, each func(scan.Record) error) (scanned, matched int64, err error) {
	tr, err := o.kafka.Transport()
	if err != nil {
		return 0, 0, err
	}
	defer tr.CloseIdleConnections()
	s, err := scan.New(scan.Config{Brokers: o.kafka.Brokers, Topic: o.topic, Transport: tr})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	plan, err := s.Plan(ctx)
	if err != nil {
		return 0, 0, err
	}
	total := plan.Total()
	bar.Scanned(0, total, 0)
	scanned, err = s.Scan(ctx, plan, o.filter, func(r scan.Record, ok bool, n int64) error {
		if ok {
			matched++
			if err := each(r); err != nil {
				return err
			}
		}
		bar.Scanned(n, total, matched)
		return nil
	})
	// Compaction gaps make the real count lower than the offset span.
	bar.Scanned(scanned, max(scanned, total), matched)
	return scanned, matched, err
}

func list(ctx context.Context, o options, stdout, stderr io.Writer, bar *scanBar) error {
	start := time.Now()
	enc := json.NewEncoder(stdout)
	scanned, matched, err := collect(ctx, o, bar, func(r scan.Record) error {
		bar.Clear()
		return printRecord(stdout, enc, o.json, r, "", false)
	})
	bar.Done()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	fmt.Fprintf(stderr, "%s: %d scanned, %d matched (%s)\n", o.topic, scanned, matched, time.Since(start).Round(time.Millisecond))
	return nil
}

func replayCmd(ctx context.Context, o options, stdout, stderr io.Writer, bar *scanBar) error {
	start := time.Now()
	var recs []scan.Record
	scanned, matched, err := collect(ctx, o, bar, func(r scan.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		bar.Done()
		return fmt.Errorf("replay: %w", err)
	}
	// Every destination is checked before anything is written; a record
	// whose destination is not allowed is refused, never written.
	allow := o.allowed()
	targets, refusedTo := map[string]int{}, map[string]int{}
	var ok []scan.Record
	dests := make([]string, len(recs))
	for i, r := range recs {
		d, err := replay.Destination(r, o.to, allow)
		switch {
		case errors.Is(err, replay.ErrNotAllowed):
			refusedTo[d]++
		case err != nil:
			bar.Done()
			return fmt.Errorf("replay: %w (use -to, or narrow the filters)", err)
		default:
			targets[d]++
			ok = append(ok, r)
		}
		dests[i] = d
	}
	dest := describeTargets(targets)
	refused := len(recs) - len(ok)
	var refusedErr error
	if refused > 0 {
		refusedErr = fmt.Errorf("%d message(s) refused: their dlq_original_topic is not allowed (%s); allowed: %s; add -allow-topic to replay to a topic",
			refused, describeTargets(refusedTo), allow)
	}
	if o.dryRun || len(ok) == 0 || !o.yes {
		bar.Done()
		if o.dryRun {
			enc := json.NewEncoder(stdout)
			for i, r := range recs {
				if err := printRecord(stdout, enc, o.json, r, dests[i], !allow.Contains(dests[i])); err != nil {
					return err
				}
			}
		}
		switch {
		case len(recs) == 0:
			fmt.Fprintf(stderr, "%s: %d scanned, 0 matched: nothing to replay\n", o.topic, scanned)
			return nil
		case o.dryRun:
			fmt.Fprintf(stderr, "%s: %d scanned, %d matched; dry run: would replay to %s, would refuse %s (allowed: %s), wrote nothing\n",
				o.topic, scanned, matched, dest, describeTargets(refusedTo), allow)
			return nil
		case len(ok) == 0:
			return fmt.Errorf("replay: nothing written: %w", refusedErr)
		default:
			return fmt.Errorf("replay: %d message(s) match (to %s, %d refused); re-run with -yes to replay them, or -dry-run to see them", matched, dest, refused)
		}
	}
	tr, err := o.kafka.Transport()
	if err != nil {
		bar.Done()
		return err
	}
	defer tr.CloseIdleConnections()
	w, err := replay.New(replay.Config{Brokers: o.kafka.Brokers, Allow: allow, Transport: tr})
	if err != nil {
		bar.Done()
		return err
	}
	bar.StartReplay(int64(len(ok)))
	n, werr := w.Write(ctx, ok, o.to, func(written int) { bar.Replayed(int64(written)) })
	cerr := w.Close()
	bar.Done()
	fmt.Fprintf(stderr, "%s: %d scanned, %d matched, %d refused, %d replayed to %s (%s)\n",
		o.topic, scanned, matched, refused, n, dest, time.Since(start).Round(time.Millisecond))
	if err := errors.Join(werr, cerr, refusedErr); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

func describeTargets(t map[string]int) string {
	if len(t) == 0 {
		return "-"
	}
	names := make([]string, 0, len(t))
	for k := range t {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s (%d)", k, t[k])
	}
	return strings.Join(parts, ", ")
}

// jsonRecord is the -json shape of a record.
type jsonRecord struct {
	Topic             string       `json:"topic"`
	Partition         int          `json:"partition"`
	Offset            int64        `json:"offset"`
	DLQTime           string       `json:"dlq_time,omitempty"`
	Reason            string       `json:"reason"`
	Error             string       `json:"error"`
	OriginalTopic     string       `json:"original_topic"`
	OriginalPartition int          `json:"original_partition"`
	OriginalOffset    int64        `json:"original_offset"`
	ConsumerGroup     string       `json:"consumer_group,omitempty"`
	Key               string       `json:"key"`
	ValuePreview      string       `json:"value_preview"`
	ValueBytes        int          `json:"value_bytes"`
	Headers           []jsonHeader `json:"headers"`
	ReplayTo          string       `json:"replay_to,omitempty"`
	// Refused is true when ReplayTo is not allowed: the message is not
	// replayed.
	Refused bool `json:"refused,omitempty"`
}

type jsonHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func preview(v []byte) string {
	if len(v) <= previewLen {
		return string(v)
	}
	return string(v[:previewLen]) + "…"
}

// printRecord prints r; replayTo, if set, is where a replay would write
// it, and refused says that topic is not allowed.
func printRecord(w io.Writer, enc *json.Encoder, asJSON bool, r scan.Record, replayTo string, refused bool) error {
	var dlqTime string
	if !r.DLQTime.IsZero() {
		dlqTime = r.DLQTime.UTC().Format(time.RFC3339Nano)
	}
	if asJSON {
		hs := make([]jsonHeader, 0, len(r.Headers))
		for _, h := range r.OriginalHeaders() {
			hs = append(hs, jsonHeader{h.Key, string(h.Value)})
		}
		return enc.Encode(jsonRecord{
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, DLQTime: dlqTime,
			Reason: r.Reason, Error: r.Error, OriginalTopic: r.OriginalTopic,
			OriginalPartition: r.OriginalPartition, OriginalOffset: r.OriginalOffset,
			ConsumerGroup: r.ConsumerGroup, Key: string(r.Key),
			ValuePreview: preview(r.Value), ValueBytes: len(r.Value), Headers: hs, ReplayTo: replayTo, Refused: refused,
		})
	}
	if dlqTime == "" {
		dlqTime = "-"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d dlq_time=%s reason=%s from=%s/%d/%d key=%q error=%q value=%q",
		r.Partition, r.Offset, dlqTime, orDash(r.Reason), orDash(r.OriginalTopic),
		r.OriginalPartition, r.OriginalOffset, r.Key, r.Error, preview(r.Value))
	if len(r.Value) > previewLen {
		fmt.Fprintf(&b, " (%d bytes)", len(r.Value))
	}
	if replayTo != "" {
		fmt.Fprintf(&b, " -> %s", replayTo)
	}
	if refused {
		b.WriteString(" REFUSED (topic not allowed)")
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
