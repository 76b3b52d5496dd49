package mongoview_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/propalpes/companias/services/query/internal/adapters/mongoview"
	"github.com/propalpes/companias/services/query/internal/view"
)

// run is the run of company n's events first..last as a batch would
// collapse them (the historial entries of those versions only).
func run(n int, first, last int64) view.Run {
	c := compania(n, last)
	var h []view.CambioEstado
	for _, e := range c.Historial {
		if e.Version >= first {
			h = append(h, e)
		}
	}
	c.Historial = h
	return view.Run{View: c, First: first}
}

func mustApplyRuns(t *testing.T, s *mongoview.Store, runs ...view.Run) mongoview.WriteStats {
	t.Helper()
	st, err := s.Apply(ctxT(t), runs)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return st
}

func checkGaps(t *testing.T, what string, st mongoview.WriteStats, want ...view.VersionGap) {
	t.Helper()
	if len(st.Gaps) != len(want) || (len(want) > 0 && !reflect.DeepEqual(st.Gaps, want)) {
		t.Errorf("%s: gaps %+v, want %+v (stats %+v)", what, st.Gaps, want, st)
	}
}

func checkVersion(t *testing.T, s *mongoview.Store, n int, want int64) {
	t.Helper()
	if got := mustGet(t, s, uuid(n)); got.Version != want {
		t.Errorf("company %d at version %d, want %d", n, got.Version, want)
	}
}

// TestIntegrationStoreVersionGaps checks the gap detection of Apply on
// FerretDB: the normal path (no gap, nothing stale) still takes one round
// trip per chunk and reads nothing; gaps are reported with the stored
// version, and every run is still applied.
func TestIntegrationStoreVersionGaps(t *testing.T) {
	t.Parallel()
	s, _, _ := openStore(t, postgres, mongoview.Options{})

	t.Run("no gap", func(t *testing.T) {
		st := mustApplyRuns(t, s, run(1, 1, 2)) // creation
		checkGaps(t, "create", st)
		st = mustApplyRuns(t, s, run(1, 3, 4)) // stored 2, run 3..4
		checkGaps(t, "next run", st)
		if st.Calls != 1 || st.Reads != 0 || st.SafeViews != 0 {
			t.Errorf("next run: stats %+v, want one write call and no read", st)
		}
		if got, want := mustGet(t, s, uuid(1)), compania(1, 4); !reflect.DeepEqual(got, want) {
			t.Errorf("after 1..2 and 3..4:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("gap over a stored view", func(t *testing.T) {
		mustApplyRuns(t, s, run(2, 1, 1))
		st := mustApplyRuns(t, s, run(2, 3, 4)) // version 2 never seen
		checkGaps(t, "stored 1, run 3..4", st, view.VersionGap{CompaniaID: uuid(2), Previous: 1, Version: 3})
		checkVersion(t, s, 2, 4)
	})

	t.Run("gap for an absent view", func(t *testing.T) {
		st := mustApplyRuns(t, s, run(3, 2, 3))
		checkGaps(t, "absent, run 2..3", st, view.VersionGap{CompaniaID: uuid(3), Previous: 0, Version: 2})
		// The view is created from the snapshot, with the historial
		// entries of the run only (version 1's entry was never seen).
		if got, want := mustGet(t, s, uuid(3)), run(3, 2, 3).View; !reflect.DeepEqual(got, want) {
			t.Errorf("created past a gap:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("jump inside a run is not a store gap", func(t *testing.T) {
		// A run 2..5 over stored 1 may lack 3 or 4: that is
		// projection.CollapseRuns' to report; the store compares only the
		// first version with the stored one.
		mustApplyRuns(t, s, run(4, 1, 1))
		st := mustApplyRuns(t, s, run(4, 2, 5))
		checkGaps(t, "stored 1, run 2..5", st)
		if st.Calls != 1 || st.Reads != 0 {
			t.Errorf("stats %+v, want the normal path", st)
		}
		checkVersion(t, s, 4, 5)
	})

	t.Run("overlapping redelivery is not a gap", func(t *testing.T) {
		mustApplyRuns(t, s, run(5, 1, 5))
		for _, r := range []view.Run{run(5, 4, 7), run(5, 5, 8), run(5, 6, 9)} {
			st := mustApplyRuns(t, s, r)
			checkGaps(t, "redelivery", st)
			if st.Calls != 1 || st.Reads != 0 {
				t.Errorf("run %d..%d: stats %+v, want the normal path", r.First, r.View.Version, st)
			}
		}
		checkVersion(t, s, 5, 9)
	})

	t.Run("stale is not a gap", func(t *testing.T) {
		mustApplyRuns(t, s, run(6, 1, 5))
		for _, r := range []view.Run{run(6, 3, 5), run(6, 4, 4), run(6, 1, 3), run(6, 5, 5)} {
			st := mustApplyRuns(t, s, r)
			checkGaps(t, "stale", st)
			if st.SafeViews != 1 {
				t.Errorf("run %d..%d: stats %+v, want the collision-safe path", r.First, r.View.Version, st)
			}
		}
		if got, want := mustGet(t, s, uuid(6)), compania(6, 5); !reflect.DeepEqual(got, want) {
			t.Errorf("after stale runs:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("mixed chunk", func(t *testing.T) {
		// One chunk with, in order: a new company (upserted), a gap over a
		// stored view, a stale run from version 1 (a duplicate key), a
		// normal update, a stale later run, an absent view past a gap.
		// FerretDB stops at the duplicate key and reports index 0: every
		// run must still be applied, and exactly the two gaps reported.
		mustApplyRuns(t, s, run(11, 1, 1), run(12, 1, 2), run(13, 1, 2), run(14, 1, 3))
		st := mustApplyRuns(t, s, run(10, 1, 2), run(11, 4, 4), run(12, 1, 2), run(13, 3, 3), run(14, 2, 3), run(15, 3, 4))
		checkGaps(t, "mixed", st,
			view.VersionGap{CompaniaID: uuid(11), Previous: 1, Version: 4},
			view.VersionGap{CompaniaID: uuid(15), Previous: 0, Version: 3})
		if st.Reads != 1 {
			t.Errorf("mixed: stats %+v, want one read", st)
		}
		for n, v := range map[int]int64{10: 2, 11: 4, 12: 2, 13: 3, 14: 3, 15: 4} {
			checkVersion(t, s, n, v)
		}
		// Sent again, the same chunk has no gap: the views hold the runs.
		checkGaps(t, "mixed again", mustApplyRuns(t, s, run(10, 1, 2), run(11, 4, 4), run(12, 1, 2), run(13, 3, 3), run(14, 2, 3), run(15, 3, 4)))
	})

	t.Run("gap found by an update that matched nothing", func(t *testing.T) {
		// No duplicate key: the chunk's count falls short by one, and its
		// later runs (which one matched nothing is unknown) are sent again.
		const n0, k = 20, mongoview.DefaultChunkSize
		var stored, runs []view.Run
		for n := n0; n < n0+k; n++ {
			stored = append(stored, run(n, 1, 1))
			runs = append(runs, run(n, 2, 2))
		}
		mustApplyRuns(t, s, stored...)
		runs[k-1] = run(n0+k-1, 3, 3)
		st := mustApplyRuns(t, s, runs...)
		checkGaps(t, "last run of a chunk", st, view.VersionGap{CompaniaID: uuid(n0 + k - 1), Previous: 1, Version: 3})
		if st.SafeViews != k || st.Reads != 1 {
			t.Errorf("stats %+v: want the chunk sent again after one read", st)
		}
		checkVersion(t, s, n0, 2)
		checkVersion(t, s, n0+k-1, 3)
	})
}

// TestIntegrationStoreGapsWhileRebuilding checks that Apply does not report
// the gaps it meets in a generation a rebuild still fills (the live
// consumers write there from the switch on, ahead of the replay), while
// ApplyTo, the replay's write, does.
func TestIntegrationStoreGapsWhileRebuilding(t *testing.T) {
	t.Parallel()
	s, _, _ := openStore(t, postgres, mongoview.Options{PointerTTL: -1})
	ctx := ctxT(t)
	from, err := s.ActiveGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next, err := s.NextGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireRebuildLock(ctx, "test", next, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PrepareGeneration(ctx, next); err != nil {
		t.Fatal(err)
	}
	// Before the switch the live writes go to the old generation: reported.
	st := mustApplyRuns(t, s, run(1, 3, 3))
	checkGaps(t, "live, before the switch", st, view.VersionGap{CompaniaID: uuid(1), Version: 3})

	if err := s.SwitchGeneration(ctx, from, next); err != nil {
		t.Fatal(err)
	}
	st = mustApplyRuns(t, s, run(1, 3, 3))
	checkGaps(t, "live, into the generation being rebuilt", st)
	if st.GapsWhileRebuilding != 1 {
		t.Errorf("stats %+v, want 1 gap while rebuilding", st)
	}
	st, err = s.ApplyTo(ctx, next, []view.Run{run(2, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	checkGaps(t, "replay", st, view.VersionGap{CompaniaID: uuid(2), Version: 2})

	if err := s.ReleaseRebuildLock(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	st = mustApplyRuns(t, s, run(3, 2, 2))
	checkGaps(t, "live, after the rebuild", st, view.VersionGap{CompaniaID: uuid(3), Version: 2})
}
