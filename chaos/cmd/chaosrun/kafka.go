package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
)

// localTransport returns a new plaintext Transport for the run's embedded
// broker, built by kafkakit like every Kafka client of the workspace; each
// producer has its own (kafka-go's DefaultTransport shares a metadata cache
// that may predate a topic).
func localTransport() *kafka.Transport {
	tr, err := (kafkakit.Config{ClientID: "companias-chaosrun"}).Transport()
	if err != nil {
		panic("plaintext kafka transport: " + err.Error()) // no TLS or SASL to fail
	}
	return tr
}

// localDialer returns a new plaintext Dialer for the run's embedded broker,
// built by kafkakit.
func localDialer() *kafka.Dialer {
	d, err := (kafkakit.Config{ClientID: "companias-chaosrun"}).Dialer()
	if err != nil {
		panic("plaintext kafka dialer: " + err.Error()) // no TLS or SASL to fail
	}
	return d
}

// groupLag reports how many records of topic the consumer group has not
// committed yet (end offset minus committed offset, summed over the
// partitions; a partition with no commit counts from its first offset),
// and the partitions that lag, as "p:committed/end".
func groupLag(ctx context.Context, addr, group, topic string) (int64, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(addr), Transport: localTransport()}
	parts := make([]int, partitions)
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		parts[p] = p
		reqs[p] = kafka.FirstOffsetOf(p)
	}
	first, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, nil, fmt.Errorf("list first offsets of %s: %w", topic, err)
	}
	for p := range partitions {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	last, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	committed, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, nil, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	if committed.Error != nil {
		return 0, nil, fmt.Errorf("fetch offsets of group %s: %w", group, committed.Error)
	}
	start, end, done := map[int]int64{}, map[int]int64{}, map[int]int64{}
	for _, po := range first.Topics[topic] {
		if po.Error != nil {
			return 0, nil, fmt.Errorf("first offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		start[po.Partition] = po.FirstOffset
	}
	for _, po := range last.Topics[topic] {
		if po.Error != nil {
			return 0, nil, fmt.Errorf("end offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		end[po.Partition] = po.LastOffset
	}
	for _, po := range committed.Topics[topic] {
		if po.Error != nil {
			return 0, nil, fmt.Errorf("committed offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		done[po.Partition] = po.CommittedOffset
	}
	var lag int64
	var lagging []string
	for p := range partitions {
		c := done[p]
		if c < start[p] { // -1: nothing committed yet
			c = start[p]
		}
		if d := end[p] - c; d > 0 {
			lag += d
			lagging = append(lagging, fmt.Sprintf("%d:%d/%d", p, c, end[p]))
		}
	}
	return lag, lagging, nil
}

// describeGroups tells, for a not-quiescent run, each group's state and
// which member (client id, host) owns which partitions, so a stall names
// the member that holds it.
func describeGroups(ctx context.Context, addr string, groups ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(addr), Transport: localTransport()}
	resp, err := cl.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: groups})
	if err != nil {
		return fmt.Sprintf("describe groups: %v", err)
	}
	var b strings.Builder
	for _, g := range resp.Groups {
		fmt.Fprintf(&b, "\n    group %s state %s err %v", g.GroupID, g.GroupState, g.Error)
		for _, m := range g.Members {
			fmt.Fprintf(&b, "\n      member %s (client %s, %s):", m.MemberID, m.ClientID, m.ClientHost)
			for _, t := range m.MemberAssignments.Topics {
				fmt.Fprintf(&b, " %s%v", t.Topic, t.Partitions)
			}
		}
	}
	return b.String()
}
