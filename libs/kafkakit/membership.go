package kafkakit

import (
	"errors"
	"fmt"
	"time"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// Defaults of Membership.
//
// DefaultSessionTimeout is 10 s, below kafka-go's 30 s and Kafka 3.x's 45 s
// (KIP-735 raised the Java client's default to ride out long GC pauses and
// cloud network blips). Here the heartbeats come from a goroutine of their
// own, independent of how long a batch takes, so a member misses them only
// when its process or network is gone; a shorter session then takes its
// partitions over sooner (about the session timeout after a crash, see
// README "Scaling and autoscaling" for measured figures). The cost is a
// rebalance, and the redelivery of what was not committed, after a network
// stall longer than 10 s.
//
// DefaultHeartbeatInterval is 1 s: the members of a group notice a
// rebalance (a replica added or leaving) at their next heartbeat, so it
// bounds how long the others keep the group waiting; one small request a
// second per member costs the coordinator nothing measurable.
//
// DefaultRebalanceTimeout is kafka-go's 30 s: a member rejoins only once
// its current batch is handled (or cancelled), so it must exceed the time
// one batch may take to stop.
const (
	DefaultSessionTimeout    = 10 * time.Second
	DefaultHeartbeatInterval = time.Second
	DefaultRebalanceTimeout  = 30 * time.Second
)

// Bounds of Membership. MinSessionTimeout and MaxSessionTimeout are the
// brokers' defaults of group.min.session.timeout.ms and
// group.max.session.timeout.ms: a session outside them makes every
// JoinGroup fail with INVALID_SESSION_TIMEOUT, which is better reported at
// start-up.
const (
	MinSessionTimeout    = 6 * time.Second
	MaxSessionTimeout    = 30 * time.Minute
	MinHeartbeatInterval = 100 * time.Millisecond
	MinRebalanceTimeout  = time.Second
	MaxRebalanceTimeout  = 30 * time.Minute
)

// Membership tunes how a consumer-group member keeps its membership. Both
// services read it with LoadMembership and hand it to
// groupconsumer.Config (its HeartbeatInterval, SessionTimeout and
// RebalanceTimeout fields).
type Membership struct {
	// SessionTimeout is how long the coordinator waits without a heartbeat
	// before it declares the member dead (SessionTimeoutVar): the time a
	// crashed replica's partitions stay unread.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the member heartbeats
	// (HeartbeatIntervalVar), and so how soon it notices a rebalance; at
	// most a third of SessionTimeout, so that two lost heartbeats do not
	// end the session.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long the coordinator waits for the members to
	// rejoin in a rebalance (RebalanceTimeoutVar); a member still handling
	// a batch past it is dropped from the group.
	RebalanceTimeout time.Duration
}

// DefaultMembership returns the defaults: DefaultSessionTimeout,
// DefaultHeartbeatInterval and DefaultRebalanceTimeout.
func DefaultMembership() Membership {
	return Membership{
		SessionTimeout:    DefaultSessionTimeout,
		HeartbeatInterval: DefaultHeartbeatInterval,
		RebalanceTimeout:  DefaultRebalanceTimeout,
	}
}

// MembershipVariables returns the variables LoadMembership reads, each with
// its default. A program merges them into its envconfig defaults
// (LoadMembership needs them there) and its settings table.
func MembershipVariables() map[string]string {
	d := DefaultMembership()
	return map[string]string{
		SessionTimeoutVar:    d.SessionTimeout.String(),
		HeartbeatIntervalVar: d.HeartbeatInterval.String(),
		RebalanceTimeoutVar:  d.RebalanceTimeout.String(),
	}
}

// LoadMembership reads the membership variables through p, whose defaults
// must hold MembershipVariables(), and records in p every problem Validate
// reports (and a malformed duration), each naming its variable. When p has
// problems the returned Membership must not be used.
func LoadMembership(p *envconfig.Parser) Membership {
	m := Membership{
		SessionTimeout:    p.Duration(SessionTimeoutVar),
		HeartbeatInterval: p.Duration(HeartbeatIntervalVar),
		RebalanceTimeout:  p.Duration(RebalanceTimeoutVar),
	}
	p.Add(m.Validate())
	return m
}

// Validate reports every setting of m out of its bounds, each naming its
// variable, as one joined error, or nil: SessionTimeout in
// [MinSessionTimeout, MaxSessionTimeout], HeartbeatInterval at least
// MinHeartbeatInterval and at most SessionTimeout/3, RebalanceTimeout in
// [MinRebalanceTimeout, MaxRebalanceTimeout].
func (m Membership) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.SessionTimeout < MinSessionTimeout || m.SessionTimeout > MaxSessionTimeout {
		bad("%s must be in [%s, %s] (the brokers' default group.min/max.session.timeout.ms), got %s",
			SessionTimeoutVar, MinSessionTimeout, MaxSessionTimeout, m.SessionTimeout)
	}
	switch {
	case m.HeartbeatInterval < MinHeartbeatInterval:
		bad("%s must be at least %s, got %s", HeartbeatIntervalVar, MinHeartbeatInterval, m.HeartbeatInterval)
	case m.HeartbeatInterval*3 > m.SessionTimeout:
		bad("%s (%s) must be at most a third of %s (%s), so that a lost heartbeat or two does not end the session",
			HeartbeatIntervalVar, m.HeartbeatInterval, SessionTimeoutVar, m.SessionTimeout)
	}
	if m.RebalanceTimeout < MinRebalanceTimeout || m.RebalanceTimeout > MaxRebalanceTimeout {
		bad("%s must be in [%s, %s], got %s", RebalanceTimeoutVar, MinRebalanceTimeout, MaxRebalanceTimeout, m.RebalanceTimeout)
	}
	return errors.Join(errs...)
}
