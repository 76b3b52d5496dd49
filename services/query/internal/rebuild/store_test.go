package rebuild_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/rebuild"
	"github.com/propalpes/companias/services/query/internal/view"
)

// The view store is what queryd hands to rebuild.New.
var _ rebuild.Store = (*mongoview.Store)(nil)

// lockedStore is a Store whose rebuild lock another replica holds. Only
// what taking the lock calls is implemented; the rest panics (nil
// embedded interface).
type lockedStore struct {
	rebuild.Store
	ttl      time.Duration
	acquired int
}

func (s *lockedStore) PointerTTL() time.Duration                              { return s.ttl }
func (s *lockedStore) ActiveGeneration(context.Context) (string, error)       { return "1", nil }
func (s *lockedStore) NextGeneration(context.Context) (string, error)         { return "2", nil }
func (s *lockedStore) ReleaseRebuildLock(context.Context, string) error       { return nil }
func (s *lockedStore) DropGeneration(context.Context, string) error           { return nil }
func (s *lockedStore) PrepareGeneration(context.Context, string) error        { return nil }
func (s *lockedStore) SwitchGeneration(context.Context, string, string) error { return nil }

func (s *lockedStore) AcquireRebuildLock(context.Context, string, string, time.Duration) error {
	s.acquired++
	// As mongoview reports it: a copy of its sentinel with the holder as cause.
	return fmt.Errorf("mongoview: %w", &apperr.Error{Kind: mongoview.ErrRebuildLocked.Kind,
		Code: mongoview.ErrRebuildLocked.Code, Message: mongoview.ErrRebuildLocked.Message, Err: errors.New("held by b")})
}

// cfgFor is a Config that New accepts; nothing here connects to it.
func cfgFor() rebuild.Config {
	var c rebuild.Config
	c.Consumer.Brokers = []string{"127.0.0.1:1"}
	return c
}

func TestRebuildLockedElsewhere(t *testing.T) {
	t.Parallel()
	s := &lockedStore{ttl: 100 * time.Millisecond}
	r, err := rebuild.New(cfgFor(), s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Rebuild(context.Background(), func(view.RebuildProgress) { t.Error("progress reported without the lock") })
	if !errors.Is(err, rebuild.ErrLocked) || apperr.KindOf(err) != apperr.Conflict {
		t.Fatalf("Rebuild: got %v, want ErrLocked (Conflict)", err)
	}
	if s.acquired != 1 || p != (view.RebuildProgress{}) || r.Progress().State != rebuild.StateIdle {
		t.Errorf("acquired %d times, progress %+v, state %q; want once, zero, idle", s.acquired, p, r.Progress().State)
	}
	// The failure left this replica free: the next attempt asks the store again.
	if _, err := r.Rebuild(context.Background(), nil); !errors.Is(err, rebuild.ErrLocked) || s.acquired != 2 {
		t.Errorf("second Rebuild: %v after %d acquisitions; want ErrLocked after 2", err, s.acquired)
	}
}

func TestNewRejectsSwitchGraceWithinPointerTTL(t *testing.T) {
	t.Parallel()
	s := &lockedStore{ttl: time.Second}
	cfg := cfgFor()
	cfg.SwitchGrace = time.Second
	if _, err := rebuild.New(cfg, s); err == nil {
		t.Fatal("New accepted a SwitchGrace equal to the store's PointerTTL")
	}
	cfg.SwitchGrace = 0 // default: 2 × PointerTTL
	if _, err := rebuild.New(cfg, s); err != nil {
		t.Fatalf("New with the default SwitchGrace: %v", err)
	}
}

// The errors of the view store match the rebuild's sentinels (apperr
// matches kind and code), so rebuild needs no import of the store.
func TestStoreErrorsMatchSentinels(t *testing.T) {
	t.Parallel()
	if !errors.Is(mongoview.ErrRebuildLocked, rebuild.ErrLocked) {
		t.Error("mongoview.ErrRebuildLocked does not match rebuild.ErrLocked")
	}
	if !errors.Is(fmt.Errorf("renew: %w", mongoview.ErrLockLost), rebuild.ErrLockLost) {
		t.Error("mongoview.ErrLockLost does not match rebuild.ErrLockLost")
	}
	if errors.Is(mongoview.ErrRebuildLocked, rebuild.ErrLockLost) || errors.Is(mongoview.ErrLockLost, rebuild.ErrLocked) {
		t.Error("a locked store matches a lost lock, or the reverse")
	}
}
