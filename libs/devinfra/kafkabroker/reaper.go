package kafkabroker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// reapInterval is how often the reaper looks for members whose session
// expired; a lost member is evicted within its session timeout plus
// reapGrace plus reapInterval.
const (
	reapInterval = time.Second
	reapGrace    = time.Second
)

// reaper evicts the classic consumer-group members whose session has
// expired but that kfake keeps for good.
//
// kfake arms a member's session timer when a response reaches the member.
// A member whose connection closed while it waited in JoinGroup (its
// process was killed or stopped during a rebalance) never receives its
// JoinGroup response, so it never gets a timer: the group's leader assigns
// it partitions, the leader's SyncGroup makes the group Stable, and no
// rebalance follows, ever. Those partitions are consumed by no one. A real
// Kafka broker arms every member's timer when the join completes.
//
// The reaper restores that contract from outside kfake: a control function
// notes when each member last sent a group request (JoinGroup, SyncGroup,
// Heartbeat, OffsetCommit) and each group's session timeout (from its
// JoinGroup requests); every reapInterval it describes the groups, and a
// member of a Stable or CompletingRebalance group not heard from for its
// group's session timeout plus reapGrace is removed with a LeaveGroup on
// its behalf, which rebalances the group as Kafka's session expiry does.
// Members of a group preparing a rebalance are left to kfake's rebalance
// timeout. The reaper only ever removes members that sent nothing for a
// whole session, which a live member (it heartbeats several times per
// session) never does.
type reaper struct {
	log *slog.Logger // may be nil

	mu       sync.Mutex
	lastSeen map[groupMember]time.Time
	session  map[string]time.Duration // by group
}

type groupMember struct{ group, member string }

func newReaper(log *slog.Logger) *reaper {
	return &reaper{log: log, lastSeen: map[groupMember]time.Time{}, session: map[string]time.Duration{}}
}

// install makes cluster report its group requests to r.
func (r *reaper) install(cluster *kfake.Cluster) {
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup} {
		cluster.ControlKey(key.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			r.observe(kreq, time.Now())
			return nil, nil, false // kfake handles the request as usual
		})
	}
}

// observe records that kreq was received at now.
func (r *reaper) observe(kreq kmsg.Request, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req := kreq.(type) {
	case *kmsg.JoinGroupRequest:
		if d := time.Duration(req.SessionTimeoutMillis) * time.Millisecond; d > r.session[req.Group] {
			r.session[req.Group] = d
		}
		if req.MemberID != "" {
			r.lastSeen[groupMember{req.Group, req.MemberID}] = now
		}
	case *kmsg.SyncGroupRequest:
		r.lastSeen[groupMember{req.Group, req.MemberID}] = now
	case *kmsg.HeartbeatRequest:
		r.lastSeen[groupMember{req.Group, req.MemberID}] = now
	case *kmsg.OffsetCommitRequest:
		if req.MemberID != "" {
			r.lastSeen[groupMember{req.Group, req.MemberID}] = now
		}
	case *kmsg.LeaveGroupRequest:
		delete(r.lastSeen, groupMember{req.Group, req.MemberID})
		for _, m := range req.Members {
			delete(r.lastSeen, groupMember{req.Group, m.MemberID})
		}
	}
}

// expired returns the members of described whose session expired at now.
// A member never heard from is first seen now. Members no longer in any
// described group are forgotten.
func (r *reaper) expired(described []kmsg.DescribeGroupsResponseGroup, now time.Time) []groupMember {
	r.mu.Lock()
	defer r.mu.Unlock()
	listed := map[groupMember]bool{}
	var out []groupMember
	for _, g := range described {
		if g.ErrorCode != 0 {
			continue
		}
		session, known := r.session[g.Group]
		for _, m := range g.Members {
			k := groupMember{g.Group, m.MemberID}
			listed[k] = true
			last, seen := r.lastSeen[k]
			if !seen {
				r.lastSeen[k] = now
				continue
			}
			if !known || (g.State != "Stable" && g.State != "CompletingRebalance") {
				continue
			}
			if now.Sub(last) > session+reapGrace {
				out = append(out, k)
			}
		}
	}
	for k := range r.lastSeen {
		if !listed[k] {
			delete(r.lastSeen, k)
		}
	}
	return out
}

// run reaps until ctx is done, talking to the broker at addr with opts.
func (r *reaper) run(ctx context.Context, addr string, opts []kgo.Opt) {
	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		r.logf(slog.LevelError, "group session reaper not started", "err", err)
		return
	}
	defer client.Close()
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.reapOnce(ctx, client)
	}
}

func (r *reaper) reapOnce(ctx context.Context, client *kgo.Client) {
	ctx, cancel := context.WithTimeout(ctx, reapInterval)
	defer cancel()
	list, err := kmsg.NewPtrListGroupsRequest().RequestWith(ctx, client)
	if err != nil || list.ErrorCode != 0 || len(list.Groups) == 0 {
		return
	}
	desc := kmsg.NewPtrDescribeGroupsRequest()
	for _, g := range list.Groups {
		if g.ProtocolType == "consumer" || g.ProtocolType == "" {
			desc.Groups = append(desc.Groups, g.Group)
		}
	}
	described, err := desc.RequestWith(ctx, client)
	if err != nil {
		return
	}
	for _, m := range r.expired(described.Groups, time.Now()) {
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group = m.group
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.member
		reason := "session expired while kfake kept the member"
		lm.Reason = &reason
		leave.Members = append(leave.Members, lm)
		resp, err := leave.RequestWith(ctx, client)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
			if err == nil && len(resp.Members) > 0 {
				err = kerr.ErrorForCode(resp.Members[0].ErrorCode)
			}
		}
		r.logf(slog.LevelWarn, "evicted a consumer-group member whose session expired", "group", m.group, "member", m.member, "err", err)
	}
}

func (r *reaper) logf(level slog.Level, msg string, args ...any) {
	if r.log != nil {
		r.log.Log(context.Background(), level, msg, args...)
	}
}
