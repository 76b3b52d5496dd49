package main

import (
	"strings"
	"testing"
	"time"
)

// TestRelayLeadership checks the leader tracking: today's lines and the
// lease's, over restarts of the scan (instances).
func TestRelayLeadership(t *testing.T) {
	s := &service{name: "writer1"}
	steps := []struct {
		line string
		want bool
	}{
		{`{"time":"2026-11-27T09:00:00Z","level":"INFO","msg":"outbox relay is leading","lock_key":1}`, true},
		{`{"time":"2026-11-27T09:00:01Z","level":"INFO","msg":"http request"}`, true},
		{`{"time":"2026-11-27T09:00:02Z","level":"WARN","msg":"outbox relay lost its lease; standing by","epoch":3}`, false},
		{`{"time":"2026-11-27T09:00:03Z","level":"INFO","msg":"outbox relay is leading","epoch":4}`, true},
		{`{"time":"2026-11-27T09:00:04Z","level":"WARN","msg":"outbox relay lost its database session; reconnecting"}`, false},
		{`outbox relay is leading (not JSON)`, true},
	}
	for i, st := range steps {
		s.scan(strings.NewReader(st.line+"\n"), 1)
		if got := s.isLeading(); got != st.want {
			t.Fatalf("after line %d %q: leading %v, want %v", i, st.line, got, st.want)
		}
	}
	leads, lost := s.logMarks(logRelayLeading), s.logMarks(logRelayLostLease)
	if len(leads) != 3 || len(lost) != 1 {
		t.Fatalf("%d leading and %d lost-lease marks, want 3 and 1", len(leads), len(lost))
	}
	if want := time.Date(2026, 11, 27, 9, 0, 3, 0, time.UTC); !leads[1].at.Equal(want) || !lost[0].at.Equal(want.Add(-time.Second)) {
		t.Errorf("mark times %v %v: not the lines' times", leads[1].at, lost[0].at)
	}
}
