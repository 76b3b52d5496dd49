package aggregate_test

import (
	"testing"

	"github.com/propalpes/companias/libs/seedwork/aggregate"
)

func TestRecorder(t *testing.T) {
	t.Parallel()
	var r aggregate.Recorder[string]
	r.Record("a")
	r.Record("b")
	got := r.Events()
	got[0] = "mutated"
	if e := r.Events(); len(e) != 2 || e[0] != "a" || e[1] != "b" {
		t.Errorf("Events = %v (copy not independent?)", e)
	}
	r.Clear()
	if len(r.Events()) != 0 {
		t.Errorf("Clear left events")
	}
}
