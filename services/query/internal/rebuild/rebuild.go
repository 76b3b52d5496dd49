// Package rebuild rebuilds the companias views from the events topic into a
// new generation of the view store while the active generation keeps
// serving, then switches the store's generation pointer.
//
// # Procedure
//
//  1. Take the rebuild lock (a document in the store's "vistas" collection,
//     with an expiry that the rebuild renews), so that one rebuild runs at a
//     time across every replica; prepare an empty generation G+1.
//  2. Replay the topic from the earliest offset with a fresh consumer group
//     (package consumer, writing to G+1, poison counted but not
//     dead-lettered again) up to the high watermarks taken at the start,
//     then catch up to fresh high watermarks until the remaining gap is
//     small (Config.SwitchGap).
//  3. Switch the pointer from G to G+1 with one update. From then on the
//     live consumers write to G+1 too: each of their writes resolves the
//     pointer through a cache of at most PointerTTL.
//  4. Wait Config.SwitchGrace (longer than every replica's PointerTTL), take
//     the high watermarks again and keep replaying up to them. A live write
//     to G can only have been decided before switch+PointerTTL, for messages
//     fetched before that moment; their offsets are below these watermarks,
//     so the replay puts every one of them into G+1 as well. Nothing the
//     live consumers wrote to G is missing from G+1.
//  5. Stop the replay, drop G (unless Config.KeepOld), release the lock.
//
// Between the switch and the end of step 4 a reader may see a company at an
// older version than G showed (at most the SwitchGap messages plus what
// arrived meanwhile); read-your-writes waits absorb that. If the rebuild
// fails before the switch, G+1 is dropped and G stays active. If it fails
// after the switch (the service stopped during step 4), G+1 stays active
// and may miss events of that short window until the next rebuild;
// Progress reports the failure.
package rebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/kafkakit/grouplag"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/progress"
	"github.com/propalpes/companias/libs/seedwork/retry"
	"github.com/propalpes/companias/services/query/internal/ports/consumer"
	"github.com/propalpes/companias/services/query/internal/view"
)

// Progress states (view.RebuildProgress.State).
const (
	StateIdle      = "idle"
	StateRunning   = "running"
	StateSwitching = "switching"
	StateDone      = "done"
	StateFailed    = "failed"
)

// Defaults of Config.
const (
	DefaultLockTTL   = 30 * time.Second
	DefaultSwitchGap = 500
	pollInterval     = 50 * time.Millisecond
	maxCatchUpRounds = 20
)

// ErrNotRunning is returned by Start when Run is not hosting rebuilds (not
// started yet, or the service is stopping). It has kind apperr.Unavailable.
var ErrNotRunning = apperr.New(apperr.Unavailable, "rebuild_unavailable", "rebuilds are not available right now")

// ErrLocked is matched (errors.Is) by the error of Start and Rebuild when a
// rebuild is running here or on another replica. It has kind
// apperr.Conflict; Store.AcquireRebuildLock reports a lock held by another
// owner with an *apperr.Error of the same kind and code.
var ErrLocked = apperr.New(apperr.Conflict, "rebuild_in_progress", "a view rebuild is already running")

// ErrLockLost is matched (errors.Is) by the error of Store.RenewRebuildLock
// when the caller no longer holds the lock (it expired and another replica
// took it): an *apperr.Error of kind apperr.Conflict and code
// "rebuild_lock_lost". The rebuild then stops.
var ErrLockLost = apperr.New(apperr.Conflict, "rebuild_lock_lost", "rebuild lock lost")

// Store is what a rebuild needs of the view store: its generations, the
// rebuild lock that one replica at a time holds, and writes into a given
// generation. *mongoview.Store implements it. Its methods are safe for
// concurrent use.
type Store interface {
	// PointerTTL is the longest a replica keeps using the active generation
	// it read; the rebuild's SwitchGrace must exceed it.
	PointerTTL() time.Duration
	// ActiveGeneration returns the generation the readers and the live
	// consumers use.
	ActiveGeneration(ctx context.Context) (string, error)
	// NextGeneration returns a generation newer than every existing one.
	NextGeneration(ctx context.Context) (string, error)
	// PrepareGeneration creates gen empty (with its indexes); it fails for
	// the active generation.
	PrepareGeneration(ctx context.Context, gen string) error
	// SwitchGeneration makes to the active generation if from still is.
	SwitchGeneration(ctx context.Context, from, to string) error
	// DropGeneration deletes gen; it fails for the active generation.
	DropGeneration(ctx context.Context, gen string) error
	// AcquireRebuildLock takes the lock for owner until ttl from now,
	// recording generation, or fails matching ErrLocked.
	AcquireRebuildLock(ctx context.Context, owner, generation string, ttl time.Duration) error
	// RenewRebuildLock extends owner's lock until ttl from now, or fails
	// matching ErrLockLost if owner no longer holds it.
	RenewRebuildLock(ctx context.Context, owner string, ttl time.Duration) error
	// ReleaseRebuildLock releases owner's lock (a no-op if not held).
	ReleaseRebuildLock(ctx context.Context, owner string) error
	// WriteViewsTo is consumer.Writer's WriteViews into generation gen
	// rather than the active one.
	WriteViewsTo(ctx context.Context, gen string, runs []view.Run) ([]view.VersionGap, error)
}

// Config configures a Rebuilder.
type Config struct {
	// Consumer is the template of the replay consumer: Brokers, Topic,
	// Dialer, batch and group tuning, Logger. Its GroupID is the prefix of
	// the fresh group (GroupID + "-rebuild-<gen>-<random>"; default
	// "companias-query"); DisableDLQ and State are overridden.
	Consumer consumer.Config
	// Transport carries the rebuild's own Kafka requests (watermarks, the
	// deletion of the replay's group): build it with kafkakit's
	// Config.Transport, so it has the consumer's TLS and SASL settings. Nil
	// is a plaintext Transport (kafkakit defaults). Its idle connections are
	// closed after each rebuild.
	Transport *kafka.Transport
	// LockTTL is how long the rebuild lock lasts without renewal; it is
	// renewed every LockTTL/3 (default DefaultLockTTL). A crashed rebuild
	// blocks new ones for at most this long.
	LockTTL time.Duration
	// SwitchGap is the number of messages the replay may still be behind
	// the high watermarks when it switches the pointer (default
	// DefaultSwitchGap).
	SwitchGap int64
	// SwitchGrace is how long the rebuild keeps replaying after the switch
	// before it takes its final high watermarks. It must exceed the
	// PointerTTL of every replica. Default: 2 × the store's PointerTTL, at
	// least one second.
	SwitchGrace time.Duration
	// KeepOld keeps the previous generation's collection after a successful
	// rebuild (default: it is dropped).
	KeepOld bool
	// Owner identifies this replica in the lock (default host-pid-random).
	Owner string
	// Logger receives progress logs (default: the consumer's Logger, or discard).
	Logger *slog.Logger
}

// Rebuilder runs view rebuilds. It is safe for concurrent use. Build it
// with New; host background rebuilds with Run.
type Rebuilder struct {
	cfg   Config
	store Store
	log   *slog.Logger

	mu       sync.Mutex
	base     context.Context // Run's ctx; nil before Run
	closed   bool
	busy     bool
	wg       sync.WaitGroup
	progress view.RebuildProgress
	replay   *consumer.Consumer
}

// New returns a Rebuilder over store.
func New(cfg Config, store Store) (*Rebuilder, error) {
	if store == nil {
		return nil, errors.New("rebuild: nil store")
	}
	if len(cfg.Consumer.Brokers) == 0 {
		return nil, errors.New("rebuild: no brokers")
	}
	if cfg.Consumer.GroupID == "" {
		cfg.Consumer.GroupID = "companias-query"
	}
	if cfg.Consumer.Topic == "" {
		cfg.Consumer.Topic = companiaevent.DefaultTopic
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	if cfg.SwitchGap <= 0 {
		cfg.SwitchGap = DefaultSwitchGap
	}
	if cfg.SwitchGrace <= 0 {
		cfg.SwitchGrace = max(2*store.PointerTTL(), time.Second)
	}
	if cfg.SwitchGrace <= store.PointerTTL() {
		return nil, fmt.Errorf("rebuild: SwitchGrace %s must exceed the store's PointerTTL %s", cfg.SwitchGrace, store.PointerTTL())
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
	}
	if cfg.Logger == nil {
		cfg.Logger = cfg.Consumer.Logger
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Consumer.Logger == nil {
		cfg.Consumer.Logger = cfg.Logger
	}
	return &Rebuilder{cfg: cfg, store: store, log: cfg.Logger, progress: view.RebuildProgress{State: StateIdle}}, nil
}

// Run hosts the rebuilds started with Start until ctx is done, then waits
// for a running rebuild to stop (it is cancelled with ctx) and returns nil.
func (r *Rebuilder) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.base != nil {
		r.mu.Unlock()
		return errors.New("rebuild: Run called twice")
	}
	r.base = ctx
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Start takes the rebuild lock and begins a rebuild in the background,
// under Run's context; ctx bounds only taking the lock. It returns the
// initial progress. If a rebuild is running here or on another replica, the
// error matches ErrLocked (kind apperr.Conflict); if Run is not hosting
// rebuilds, ErrNotRunning.
func (r *Rebuilder) Start(ctx context.Context) (view.RebuildProgress, error) {
	r.mu.Lock()
	if r.base == nil || r.closed || r.base.Err() != nil {
		r.mu.Unlock()
		return view.RebuildProgress{}, ErrNotRunning
	}
	if r.busy {
		p := r.progress
		r.mu.Unlock()
		return p, ErrLocked
	}
	r.busy = true
	r.wg.Add(1)
	base := r.base
	r.mu.Unlock()

	gen, from, err := r.lock(ctx)
	if err != nil {
		r.wg.Done()
		return view.RebuildProgress{}, err
	}
	p := r.begin(gen)
	go func() {
		defer r.wg.Done()
		_ = r.execute(base, gen, from)
	}()
	return p, nil
}

// Rebuild runs a whole rebuild in the caller's goroutine (for a CLI) and
// returns its final progress; onProgress, if not nil, is called with the
// initial progress, then about every 50ms from another goroutine, and last
// with the final progress. Conflicts are reported as by Start.
func (r *Rebuilder) Rebuild(ctx context.Context, onProgress func(view.RebuildProgress)) (view.RebuildProgress, error) {
	r.mu.Lock()
	if r.busy {
		r.mu.Unlock()
		return r.Progress(), ErrLocked
	}
	r.busy = true
	r.mu.Unlock()
	gen, from, err := r.lock(ctx)
	if err != nil {
		return view.RebuildProgress{}, err
	}
	p := r.begin(gen)
	done := make(chan struct{})
	if onProgress != nil {
		onProgress(p)
		go func() {
			t := time.NewTicker(pollInterval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					onProgress(r.Progress())
				}
			}
		}()
	}
	err = r.execute(ctx, gen, from)
	close(done)
	p = r.Progress()
	if onProgress != nil {
		onProgress(p)
	}
	return p, err
}

// Progress returns the progress of the current or last rebuild of this
// replica (State StateIdle if none ran here).
func (r *Rebuilder) Progress() view.RebuildProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.progress
}

// Status returns the partition status of the replay consumer while a
// rebuild runs here (State view.StateRebuilding), or nil.
func (r *Rebuilder) Status() []view.PartitionStatus {
	r.mu.Lock()
	c := r.replay
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Status()
}

// lock picks the next generation and takes the rebuild lock for it. The
// caller has marked r busy; lock clears the mark when it fails.
func (r *Rebuilder) lock(ctx context.Context) (gen, from string, err error) {
	defer func() {
		if err != nil {
			r.mu.Lock()
			r.busy = false
			r.mu.Unlock()
		}
	}()
	from, err = r.store.ActiveGeneration(ctx)
	if err != nil {
		return "", "", fmt.Errorf("rebuild: %w", err)
	}
	gen, err = r.store.NextGeneration(ctx)
	if err != nil {
		return "", "", fmt.Errorf("rebuild: %w", err)
	}
	if err := r.store.AcquireRebuildLock(ctx, r.cfg.Owner, gen, r.cfg.LockTTL); err != nil {
		return "", "", fmt.Errorf("rebuild: %w", err)
	}
	return gen, from, nil
}

func (r *Rebuilder) begin(gen string) view.RebuildProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = view.RebuildProgress{State: StateRunning, Generation: gen, StartedAt: time.Now().UTC()}
	return r.progress
}

func (r *Rebuilder) update(f func(p *view.RebuildProgress)) {
	r.mu.Lock()
	f(&r.progress)
	r.mu.Unlock()
}

// execute runs the rebuild of gen (replacing from) while holding the lock,
// and releases it.
func (r *Rebuilder) execute(ctx context.Context, gen, from string) (err error) {
	log := r.log.With("generation", gen, "from", from)
	log.Info("view rebuild started")
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	wg.Go(func() { r.renewLock(ctx, cancel) })

	switched := false
	defer func() {
		// Clean up with a context of its own: ctx may be the reason we stop.
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer ccancel()
		if err != nil && !switched {
			if derr := r.store.DropGeneration(cctx, gen); derr != nil {
				log.Warn("drop the unfinished generation", "err", derr)
			}
		}
		if rerr := r.store.ReleaseRebuildLock(cctx, r.cfg.Owner); rerr != nil {
			log.Warn("release the rebuild lock", "err", rerr)
		}
		r.update(func(p *view.RebuildProgress) {
			p.FinishedAt = time.Now().UTC()
			if err != nil {
				p.State, p.Error = StateFailed, err.Error()
			} else {
				p.State = StateDone
			}
		})
		r.mu.Lock()
		r.busy = false
		r.mu.Unlock()
		if err != nil {
			log.Error("view rebuild failed", "switched", switched, "err", err)
		} else {
			log.Info("view rebuild done")
		}
	}()

	if err := r.store.PrepareGeneration(ctx, gen); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	tr := r.cfg.Transport
	if tr == nil {
		if tr, err = (kafkakit.Config{}).Transport(); err != nil { // plaintext: cannot fail
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	client := &kafka.Client{Addr: kafka.TCP(r.cfg.Consumer.Brokers...), Transport: tr}
	defer tr.CloseIdleConnections()

	cc := r.cfg.Consumer
	cc.GroupID = fmt.Sprintf("%s-rebuild-%s-%s", cc.GroupID, gen, randomHex(4))
	cc.DisableDLQ = true
	cc.State = view.StateRebuilding
	replay, err := consumer.New(cc, consumer.WriterFunc(func(ctx context.Context, runs []view.Run) ([]view.VersionGap, error) {
		return r.store.WriteViewsTo(ctx, gen, runs)
	}))
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	replayCtx, stopReplay := context.WithCancel(ctx)
	replayDone := make(chan error, 1)
	go func() { replayDone <- replay.Run(replayCtx) }()
	defer func() {
		stopReplay()
		if rerr := <-replayDone; rerr != nil && err == nil {
			err = fmt.Errorf("rebuild: replay consumer: %w", rerr)
		}
		r.mu.Lock()
		r.replay = nil
		r.mu.Unlock()
		r.deleteGroup(client, cc.GroupID)
	}()
	r.mu.Lock()
	r.replay = replay
	r.mu.Unlock()

	// Replay up to the start watermarks, then catch up until the gap is small.
	var target map[int]grouplag.Bounds
	for round := 0; ; round++ {
		hw, err := r.watermarks(ctx, client)
		if err != nil {
			return err
		}
		if round > 0 && gap(hw, replay.Positions()) <= r.cfg.SwitchGap || round == maxCatchUpRounds {
			target = hw
			break
		}
		if err := r.waitFor(ctx, replay, hw); err != nil {
			return err
		}
	}
	if err := r.waitFor(ctx, replay, target); err != nil {
		return err
	}

	r.update(func(p *view.RebuildProgress) { p.State = StateSwitching })
	if err := r.store.SwitchGeneration(ctx, from, gen); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	switched = true
	log.Info("switched the view generation; catching up with the live consumers", "grace", r.cfg.SwitchGrace)
	if !retry.Sleep(ctx, r.cfg.SwitchGrace) {
		return fmt.Errorf("rebuild: after the switch: %w", context.Cause(ctx))
	}
	final, err := r.watermarks(ctx, client)
	if err != nil {
		return err
	}
	if err := r.waitFor(ctx, replay, final); err != nil {
		return err
	}
	if !r.cfg.KeepOld {
		if err := r.store.DropGeneration(ctx, from); err != nil {
			log.Warn("drop the previous generation", "err", err)
		}
	}
	return nil
}

// renewLock renews the lock every LockTTL/3 and cancels the rebuild if the
// lock is lost.
func (r *Rebuilder) renewLock(ctx context.Context, cancel context.CancelCauseFunc) {
	for retry.Sleep(ctx, r.cfg.LockTTL/3) {
		err := r.store.RenewRebuildLock(ctx, r.cfg.Owner, r.cfg.LockTTL)
		switch {
		case errors.Is(err, ErrLockLost):
			cancel(err)
			return
		case err != nil && ctx.Err() == nil:
			r.log.Warn("renew the rebuild lock", "err", err)
		}
	}
}

// watermarks reads the log bounds, retrying until it succeeds or ctx is done.
func (r *Rebuilder) watermarks(ctx context.Context, client *kafka.Client) (map[int]grouplag.Bounds, error) {
	backoff := retry.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		hw, err := consumer.Watermarks(rctx, client, r.cfg.Consumer.Topic)
		cancel()
		if err == nil {
			return hw, nil
		}
		r.log.Warn("read the topic's watermarks", "err", err)
		if !backoff.Wait(ctx, attempt) {
			return nil, fmt.Errorf("rebuild: %w", context.Cause(ctx))
		}
	}
}

// waitFor waits until the replay processed every partition up to target,
// updating the progress.
func (r *Rebuilder) waitFor(ctx context.Context, replay *consumer.Consumer, target map[int]grouplag.Bounds) error {
	var total int64
	for _, o := range target {
		total += o.High - o.First
	}
	r.update(func(p *view.RebuildProgress) { p.Total = max(p.Total, total) })
	for {
		pos := replay.Positions()
		var done int64
		reached := true
		for part, o := range target {
			n, ok := pos[part]
			if !ok {
				n = o.First
			}
			done += min(max(n-o.First, 0), o.High-o.First)
			if n < o.High {
				reached = false
			}
		}
		r.update(func(p *view.RebuildProgress) { p.Processed = max(p.Processed, done) })
		if reached {
			return nil
		}
		if !retry.Sleep(ctx, pollInterval) {
			return fmt.Errorf("rebuild: %w", context.Cause(ctx))
		}
	}
}

// gap is the number of messages below hw that the positions have not reached.
func gap(hw map[int]grouplag.Bounds, pos map[int]int64) int64 {
	var g int64
	for part, o := range hw {
		n, ok := pos[part]
		if !ok {
			n = o.First
		}
		g += max(o.High-max(n, o.First), 0)
	}
	return g
}

// deleteGroup removes the replay's consumer group from the brokers (best effort).
func (r *Rebuilder) deleteGroup(client *kafka.Client, group string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}}); err != nil {
		r.log.Debug("delete the replay consumer group", "group", group, "err", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Bar renders p as a one-line progress bar of the given width (in cells),
// for a CLI (progress.Line draws it): "[#####.....]  50.0%  500/1000
// running gen 2".
func Bar(p view.RebuildProgress, width int) string {
	frac := 0.0
	switch {
	case p.State == StateDone:
		frac = 1
	case p.Total > 0:
		frac = min(float64(p.Processed)/float64(p.Total), 1)
	}
	s := fmt.Sprintf("%s %5.1f%%  %d/%d  %s gen %s", progress.Bar(frac, width), 100*frac, p.Processed, p.Total, p.State, p.Generation)
	if p.Error != "" {
		s += ": " + p.Error
	}
	return s
}
