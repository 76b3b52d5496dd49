package kafkabroker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func describedGroup(name, state string, members ...string) kmsg.DescribeGroupsResponseGroup {
	g := kmsg.NewDescribeGroupsResponseGroup()
	g.Group, g.State = name, state
	for _, m := range members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m
		g.Members = append(g.Members, dm)
	}
	return g
}

func joinReq(group, member string, session time.Duration) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Group, r.MemberID, r.SessionTimeoutMillis = group, member, int32(session.Milliseconds())
	return r
}

func TestReaperExpired(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	r := newReaper(nil)
	r.observe(joinReq("g", "", 6*time.Second), t0) // session known, member id not yet
	r.observe(joinReq("g", "live", 6*time.Second), t0)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "g", "live"

	// First listing: "lost" is first seen now, nothing expires.
	if got := r.expired([]kmsg.DescribeGroupsResponseGroup{describedGroup("g", "Stable", "live", "lost")}, t0); len(got) != 0 {
		t.Fatalf("at t0: expired %v, want none", got)
	}
	// Within the session and grace: nothing expires; "live" heartbeats.
	r.observe(hb, t0.Add(5*time.Second))
	if got := r.expired([]kmsg.DescribeGroupsResponseGroup{describedGroup("g", "Stable", "live", "lost")}, t0.Add(7*time.Second)); len(got) != 0 {
		t.Fatalf("at t0+7s: expired %v, want none", got)
	}
	// Past session + grace: only the silent member, and only when the group is settled.
	later := t0.Add(6*time.Second + reapGrace + time.Millisecond)
	r.observe(hb, later)
	if got := r.expired([]kmsg.DescribeGroupsResponseGroup{describedGroup("g", "PreparingRebalance", "live", "lost")}, later); len(got) != 0 {
		t.Fatalf("preparing a rebalance: expired %v, want none (kfake's rebalance timeout owns it)", got)
	}
	got := r.expired([]kmsg.DescribeGroupsResponseGroup{describedGroup("g", "CompletingRebalance", "live", "lost")}, later)
	if len(got) != 1 || got[0] != (groupMember{"g", "lost"}) {
		t.Fatalf("completing a rebalance: expired %v, want [g/lost]", got)
	}
	// A member that left is forgotten; a group whose session is unknown never expires anyone.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = "lost"
	leave.Members = append(leave.Members, lm)
	r.observe(leave, later)
	if _, ok := r.lastSeen[groupMember{"g", "lost"}]; ok {
		t.Fatal("a member that left is still tracked")
	}
	r.expired([]kmsg.DescribeGroupsResponseGroup{describedGroup("other", "Stable", "x")}, t0)
	if got := r.expired([]kmsg.DescribeGroupsResponseGroup{describedGroup("other", "Stable", "x")}, t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("group with no known session: expired %v, want none", got)
	}
	// Members no longer listed anywhere are forgotten.
	if _, ok := r.lastSeen[groupMember{"g", "live"}]; ok {
		t.Fatal("a member no longer described is still tracked")
	}
	// A group answered with an error is skipped.
	bad := describedGroup("g", "Stable", "ghost")
	bad.ErrorCode = 16
	if got := r.expired([]kmsg.DescribeGroupsResponseGroup{bad}, t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("errored group: expired %v, want none", got)
	}
}
