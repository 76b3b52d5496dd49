package consumer

import "sync"

// idSignals wakes those who wait for the view of one company: a channel
// per subscribed id, shared by its subscribers, closed when a batch writes
// that id. The zero value is ready; it is safe for concurrent use. Ids
// nobody waits for cost nothing, and a subscription released before its
// channel closed leaves nothing behind.
type idSignals struct {
	mu   sync.Mutex
	byID map[string]*idSignal
}

type idSignal struct {
	ch   chan struct{}
	subs int
}

// subscribe returns the channel closed the next time fire names id, and
// the function that releases the subscription (idempotent).
func (s *idSignals) subscribe(id string) (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string]*idSignal{}
	}
	sig := s.byID[id]
	if sig == nil {
		sig = &idSignal{ch: make(chan struct{})}
		s.byID[id] = sig
	}
	sig.subs++
	var once sync.Once
	return sig.ch, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if sig.subs--; sig.subs == 0 && s.byID[id] == sig {
				delete(s.byID, id)
			}
		})
	}
}

// fire closes the channels of ids; their subscribers subscribe again for
// the next write.
func (s *idSignals) fire(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if sig := s.byID[id]; sig != nil {
			close(sig.ch)
			delete(s.byID, id)
		}
	}
}

// ChangedID returns a channel closed the next time the consumer finishes a
// batch that wrote the view of company id, and the function that releases
// the subscription; call it once the channel is no longer watched, closed
// or not.
func (c *Consumer) ChangedID(id string) (<-chan struct{}, func()) {
	return c.signals.subscribe(id)
}
