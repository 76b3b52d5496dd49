package kafkabroker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
)

const lostGroup = "lost-in-join"

func joinGroup(ctx context.Context, cl *kgo.Client, member string) (*kmsg.JoinGroupResponse, error) {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = lostGroup
	req.MemberID = member
	req.ProtocolType = "consumer"
	req.SessionTimeoutMillis = 6000 // kfake's minimum
	req.RebalanceTimeoutMillis = 10000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req.RequestWith(ctx, cl)
}

// joinAs joins with a broker-given member id (the MemberIDRequired round
// trip first) and returns it.
func memberID(ctx context.Context, t *testing.T, cl *kgo.Client) string {
	t.Helper()
	r, err := joinGroup(ctx, cl, "")
	if err != nil || r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: %v, error code %d; want MemberIDRequired", err, r.ErrorCode)
	}
	return r.MemberID
}

func syncAsLeader(ctx context.Context, t *testing.T, cl *kgo.Client, gen int32, leader string, members []string) {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = lostGroup, gen, leader
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for i, m := range members {
		a := kmsg.NewConsumerMemberAssignment()
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = "t", []int32{int32(i)}
		a.Topics = append(a.Topics, at)
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = m, a.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	r, err := req.RequestWith(ctx, cl)
	if err != nil || r.ErrorCode != 0 {
		t.Fatalf("leader sync: %v, error code %d", err, r.ErrorCode)
	}
}

func describe(ctx context.Context, cl *kgo.Client) (state string, members []string) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{lostGroup}
	r, err := req.RequestWith(ctx, cl)
	if err != nil || len(r.Groups) != 1 {
		return "", nil
	}
	for _, m := range r.Groups[0].Members {
		members = append(members, m.MemberID)
	}
	return r.Groups[0].State, members
}

// TestBrokerEvictsMemberLostInJoin: a member whose connection closes while
// it waits in JoinGroup still takes part in the generation (the leader
// gives it partitions) but never receives its response. Like a real
// broker, the broker must still expire its session and rebalance, or its
// partitions are consumed by no one for good.
func TestBrokerEvictsMemberLostInJoin(t *testing.T) {
	b := kafkabroker.StartT(t, kafkabroker.Options{}, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	a := newClient(t, b.Addr())

	idA := memberID(ctx, t, a)
	r, err := joinGroup(ctx, a, idA)
	if err != nil || r.ErrorCode != 0 {
		t.Fatalf("A joins: %v, error code %d", err, r.ErrorCode)
	}
	syncAsLeader(ctx, t, a, r.Generation, idA, []string{idA})

	// B joins and waits in JoinGroup for A to rejoin; then B's process dies.
	bcl := newClient(t, b.Addr())
	idB := memberID(ctx, t, bcl)
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		_, _ = joinGroup(ctx, bcl, idB) // fails once bcl is closed
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, ms := describe(ctx, a); st == "PreparingRebalance" && slices.Contains(ms, idB) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("B never waited in JoinGroup")
		case <-tick.C:
		}
	}
	bcl.Close()
	<-joined

	// A rejoins: the generation holds A and the lost B, and A's sync gives B a partition.
	r, err = joinGroup(ctx, a, idA)
	if err != nil || r.ErrorCode != 0 {
		t.Fatalf("A rejoins: %v, error code %d", err, r.ErrorCode)
	}
	var ids []string
	for _, m := range r.Members {
		ids = append(ids, m.MemberID)
	}
	if !slices.Contains(ids, idB) {
		t.Fatalf("generation %d members %v: B not among them, nothing to test", r.Generation, ids)
	}
	syncAsLeader(ctx, t, a, r.Generation, idA, ids)

	// A heartbeats; within B's session timeout (6s) and the reaper's slack,
	// the broker must remove B and ask A to rejoin.
	hb := time.NewTicker(500 * time.Millisecond)
	defer hb.Stop()
	for {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.Generation, req.MemberID = lostGroup, r.Generation, idA
		resp, err := req.RequestWith(ctx, a)
		if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		if resp.ErrorCode == kerr.RebalanceInProgress.Code {
			break
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("heartbeat: error code %d", resp.ErrorCode)
		}
		select {
		case <-ctx.Done():
			_, ms := describe(context.Background(), a)
			t.Fatalf("B (%s) was never evicted: members %v", idB, ms)
		case <-hb.C:
		}
	}
	if _, ms := describe(ctx, a); slices.Contains(ms, idB) {
		t.Fatalf("rebalance asked, but B still a member: %v", ms)
	}
}
