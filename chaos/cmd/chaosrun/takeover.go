package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"time"
)

// The freeze-relay fault stops the writer that leads the outbox relay
// while rows wait to be published — so most likely in the middle of a
// claim or a publish — for freezeFor, longer than the relay's lease
// (leaseTTL), then resumes it. The relay's leadership is a fenced lease:
// the other writer takes it over while the leader is frozen, and the
// frozen one, once resumed, can no longer publish (it logs that it lost its
// lease). The per-company order checks of checkTopic must hold across it
// (duplicates allowed); checkTakeover checks the takeover itself.

// freezeRelay injects fault n of kind freeze-relay and returns a
// description. It holds the op locks of the leader and of the standby
// writer until the leader runs again, so that no other fault or restart
// touches either meanwhile; the SIGCONT runs in the background (restarts).
func (s *stack) freezeRelay(ctx context.Context, res *result, restarts *sync.WaitGroup, n int) string {
	var leader *service
	for deadline := time.Now().Add(15 * time.Second); leader == nil && time.Now().Before(deadline) && ctx.Err() == nil; {
		for _, w := range s.writers {
			if w.isLeading() && w.op.TryLock() {
				if w.isLeading() && w.running() {
					leader = w
					break
				}
				w.op.Unlock()
			}
		}
		if leader == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if leader == nil {
		s.findings.add("fault %d: no running writer logged %q within 15s: nothing frozen", n, logRelayLeading)
		return "no relay leader to freeze"
	}
	// The standby, once whatever runs on it (a restart) is over.
	var standby *service
	for _, w := range s.writers {
		if w == leader {
			continue
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
			if w.op.TryLock() {
				standby = w
				break
			}
		}
		if standby != nil && !standby.running() {
			standby.op.Unlock()
			standby = nil
		}
		break
	}
	standbyName := ""
	if standby != nil {
		standbyName = standby.name
	} else {
		s.note("fault %d: no standby writer up: the takeover is not checked", n)
	}
	// A moment when rows wait for the relay: it is claiming or publishing
	// them (or about to).
	waiting := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(5 * time.Millisecond) {
		if err := s.db.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&waiting); err != nil || waiting > 0 {
			break
		}
	}
	rec := res.addFault(faultRecord{n: n, kind: faultFreezeRelay, victim: leader.name, at: time.Now(), standby: standbyName})
	leader.signal(syscall.SIGSTOP, false)
	restarts.Go(func() {
		defer leader.op.Unlock()
		if standby != nil {
			defer standby.op.Unlock()
		}
		time.Sleep(freezeFor) // the length of the fault, not a synchronisation
		leader.signal(syscall.SIGCONT, false)
		res.faultBack(rec, time.Now())
		fmt.Printf("         fault %2d: %s resumed after %s\n", n, leader.name, freezeFor)
	})
	return fmt.Sprintf("relay leader %s SIGSTOP for %s with %d rows waiting (lease %s; standby %q)", leader.name, freezeFor, waiting, leaseTTL, standbyName)
}

// takeoverOf describes how one freeze-relay fault went: whether the
// standby logged that it leads the relay while the leader was frozen (in
// (f.at, f.back]; back zero: not resumed, up to now), and whether the
// frozen leader logged that it lost its lease after it resumed.
func takeoverOf(f faultRecord, standbyLeads, leaderLost []time.Time, now time.Time) (took, lost bool) {
	back := f.back
	if back.IsZero() {
		back = now
	}
	return anyIn(standbyLeads, f.at, back), !f.back.IsZero() && anyIn(leaderLost, f.back.Add(-time.Nanosecond), now)
}

// checkTakeover checks that during each freeze-relay fault the other writer
// took the relay over (it logged logRelayLeading while the leader was
// stopped); a fault whose standby was not up throughout is not checked.
// Whether the resumed leader logged that it lost its lease is reported,
// not checked.
func (s *stack) checkTakeover(res *result, report func(string, bool, string, ...any)) {
	byName := map[string]*service{}
	for _, w := range s.writers {
		byName[w.name] = w
	}
	times := func(sv *service, msg string) []time.Time {
		var out []time.Time
		for _, m := range sv.logMarks(msg) {
			out = append(out, m.at)
		}
		return out
	}
	freezes := res.faultsOf(faultFreezeRelay)
	var missed []string
	checked, lost := 0, 0
	now := time.Now()
	for _, f := range freezes {
		sb, lv := byName[f.standby], byName[f.victim]
		if sb == nil || lv == nil {
			continue
		}
		checked++
		took, l := takeoverOf(f, times(sb, logRelayLeading), times(lv, logRelayLostLease), now)
		if l {
			lost++
		}
		if !took {
			missed = append(missed, fmt.Sprintf("fault %d: %s frozen %s..%s, %s did not log %q meanwhile",
				f.n, f.victim, f.at.Format("15:04:05.000"), f.back.Format("15:04:05.000"), f.standby, logRelayLeading))
		}
	}
	sort.Strings(missed)
	report("relay taken over in a freeze", len(missed) == 0,
		"%d freeze-relay faults (leader stopped %s, lease %s), %d with a standby up throughout: %d taken over, %d not%s; "+
			"%d resumed leaders logged %q",
		len(freezes), freezeFor, leaseTTL, checked, checked-len(missed), len(missed), first(missed, 5), lost, logRelayLostLease)
}
