package consumer

import "testing"

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A write wakes the subscribers of its ids only, and released
// subscriptions leave nothing behind.
func TestIDSignals(t *testing.T) {
	t.Parallel()
	var s idSignals
	a1, releaseA1 := s.subscribe("a")
	a2, releaseA2 := s.subscribe("a")
	b, releaseB := s.subscribe("b")
	s.fire([]string{"c", "b", "b"}) // a duplicate id in a batch is harmless
	if closed(a1) || closed(a2) || !closed(b) {
		t.Fatalf("after a write of b: a closed %v/%v, b closed %v; want only b", closed(a1), closed(a2), closed(b))
	}
	releaseB()
	releaseA1()
	releaseA1() // idempotent
	s.fire([]string{"a"})
	if !closed(a2) {
		t.Error("a write of a did not wake its remaining subscriber")
	}
	releaseA2()
	if n := len(s.byID); n != 0 {
		t.Errorf("%d ids left subscribed after every release, want 0", n)
	}
	_, release := s.subscribe("ghost") // never written
	release()
	if n := len(s.byID); n != 0 {
		t.Errorf("a released subscription to an id never written left %d entries", n)
	}
}
