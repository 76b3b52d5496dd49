package outbox

import (
	"context"
	"time"
)

// SetBeforeDelete installs a hook that runs after a batch was published and
// before its rows are deleted (crash-between-publish-and-delete tests).
func SetBeforeDelete(r *Relay, f func(ctx context.Context, ids []int64)) { r.beforeDelete = f }

// WrapDial wraps the Dial of w's Transport (the fenced dialer) with wrap,
// before w first connects: a test gate sits outside the fence.
func WrapDial(w *Writer, wrap func(DialFunc) DialFunc) { w.t.Dial = wrap(w.t.Dial) }

// OpenFence opens f until t, as the relay does when it holds its lease.
func OpenFence(f *Fence, t time.Time) { f.open(t) }

// CloseFence closes f, as the relay does when it stops leading.
func CloseFence(f *Fence) { f.close() }

// DecodeRecordHeaders is decodeHeaders, the relay's reading of outbox.headers.
var DecodeRecordHeaders = decodeHeaders
