package outbox

import "context"

// SetBeforeMark installs a hook that runs after a batch was published and
// before it is stamped published (crash-between-publish-and-mark tests).
func SetBeforeMark(r *Relay, f func(ctx context.Context, ids []int64)) { r.beforeMark = f }
