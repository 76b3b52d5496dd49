// Package kafkabroker runs an in-process, single-node Kafka-protocol broker
// built on franz-go's kfake. It exists for tests and for the local `make run`
// stack; production code must never import it.
//
// The broker speaks the Kafka wire protocol on a TCP port, so any client
// (segmentio/kafka-go, franz-go, kcat) can use it: in plaintext without
// authentication by default, or, with Options.Security, over TLS with
// SASL/SCRAM-SHA-512 and per-principal ACLs, like a hardened cluster. With a DataDir it keeps
// topics, records and committed group offsets across a Close and a new Start
// on the same directory and port. Consumer-group members that kfake would
// keep after their session expired are evicted as a Kafka broker would (see
// reaper.go), so a client killed during a rebalance cannot hold partitions
// for good.
package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultAddr is the listen address used when Options.Addr is empty: the
// loopback interface on a free port chosen by the kernel.
const DefaultAddr = "127.0.0.1:0"

// metadataPollInterval is how often CreateTopics re-reads metadata while it
// waits for new topics to become visible.
const metadataPollInterval = 20 * time.Millisecond

// Options configures Start. The zero value is valid: a memory-only broker on
// a free loopback port with logging disabled.
type Options struct {
	// Addr is the host:port to listen on. Port 0 picks a free port; read the
	// bound address back with Broker.Addr. Empty means DefaultAddr. A
	// wildcard host (0.0.0.0, ::) listens on every interface but advertises
	// 127.0.0.1 to clients, since a wildcard is not dialable.
	Addr string

	// DataDir, when not empty, makes the broker persist topics, records and
	// committed consumer-group offsets in this directory (created if
	// missing). A later Start with the same DataDir reloads them. Clients
	// cache the advertised address, so restart on the same fixed port if
	// clients must survive the restart. Two brokers must never share a
	// DataDir at the same time.
	DataDir string

	// Logger receives the broker's own log lines (kfake levels mapped to
	// slog levels). Nil disables broker logging.
	Logger *slog.Logger

	// Security, when not nil, secures the broker: see Security. Nil means
	// plaintext, and every client may do everything.
	Security *Security
}

// Broker is a running in-process broker. It is safe for concurrent use.
type Broker struct {
	cluster   *kfake.Cluster
	addr      string
	sec       *security // nil when plaintext
	closeOnce sync.Once

	stopReaper context.CancelFunc
	reaperDone chan struct{}
}

// Start binds opts.Addr and starts a single-node broker on it. The broker is
// ready for clients when Start returns. The caller must call Close.
func Start(opts Options) (*Broker, error) {
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kafkabroker: listen on %s: %w", addr, err)
	}
	ln = advertiseDialable(ln)

	// kfake listens on 127.0.0.1 itself; hand it the listener bound above so
	// the requested host is honoured and a fixed port cannot be lost between
	// probing and binding. kfake advertises ln.Addr() in metadata responses.
	var handedOut bool
	var mu sync.Mutex
	listenFn := func(network, _ string) (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		if handedOut {
			return nil, errors.New("kafkabroker: the single broker listener is already in use")
		}
		handedOut = true
		return ln, nil
	}

	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listenFn),
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("kafkabroker: create data dir: %w", err)
		}
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	if opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(slogAdapter{opts.Logger}))
	}
	var sec *security
	if opts.Security != nil {
		var secOpts []kfake.Opt
		if sec, secOpts, err = setupSecurity(opts.Security, listenHost(addr)); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("kafkabroker: secured mode: %w", err)
		}
		kopts = append(kopts, secOpts...)
	}

	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		_ = ln.Close() // kfake closes it too on most error paths; a second Close is harmless.
		sec.cleanup()
		return nil, fmt.Errorf("kafkabroker: start kfake cluster: %w", err)
	}
	reap := newReaper(opts.Logger)
	reap.install(cluster)
	b := &Broker{cluster: cluster, addr: ln.Addr().String(), sec: sec, reaperDone: make(chan struct{})}
	if sec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := advertiseSASLHandshakeV0(ctx, cluster, b.addr, sec); err != nil {
			b.Close()
			return nil, fmt.Errorf("kafkabroker: secured mode: %w", err)
		}
	}
	var rctx context.Context
	rctx, b.stopReaper = context.WithCancel(context.Background())
	go func() {
		defer close(b.reaperDone)
		reap.run(rctx, b.addr, sec.adminOpts())
	}()
	return b, nil
}

// Addr returns the host:port the broker listens on and advertises, suitable
// as a bootstrap address for any Kafka client.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, flushing state to DataDir when one is set, and
// removes the temporary certificate directory of a secured broker. It is
// idempotent and safe to call concurrently; later calls are no-ops.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		if b.stopReaper != nil {
			b.stopReaper()
			<-b.reaperDone
		}
		b.cluster.Close()
		b.sec.cleanup()
	})
}

// CreateTopics creates each topic with the given number of partitions
// (replication factor 1) and returns once every topic is visible in broker
// metadata. Names are checked against Kafka's rules (kfake itself accepts
// any name, a real broker does not). Topics that already exist are left unchanged, whatever their
// partition count, and are not an error. It returns when ctx is done. On a
// secured broker it connects as AdminPrincipal.
func (b *Broker) CreateTopics(ctx context.Context, partitions int, topics ...string) error {
	return b.CreateTopicsWithConfigs(ctx, partitions, nil, topics...)
}

// CreateTopicsWithConfigs is CreateTopics with topic configs (such as
// retention.ms) set on every topic it creates; a topic that already exists
// keeps its own configs.
func (b *Broker) CreateTopicsWithConfigs(ctx context.Context, partitions int, configs map[string]string, topics ...string) error {
	if partitions < 1 || partitions > math.MaxInt32 {
		return fmt.Errorf("kafkabroker: create topics: partitions must be in [1, %d], got %d", math.MaxInt32, partitions)
	}
	if len(topics) == 0 {
		return nil
	}
	for _, topic := range topics {
		if err := validateTopicName(topic); err != nil {
			return fmt.Errorf("kafkabroker: create topics: %w", err)
		}
	}
	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr)}, b.sec.adminOpts()...)...)
	if err != nil {
		return fmt.Errorf("kafkabroker: create topics: new client: %w", err)
	}
	defer client.Close()

	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	if deadline, ok := ctx.Deadline(); ok {
		req.TimeoutMillis = int32(max(time.Until(deadline).Milliseconds(), 1))
	}
	for _, topic := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = topic
		rt.NumPartitions = int32(partitions)
		rt.ReplicationFactor = 1
		for _, k := range slices.Sorted(maps.Keys(configs)) {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name = k
			c.Value = kmsg.StringPtr(configs[k])
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		return fmt.Errorf("kafkabroker: create topics %v: %w", topics, err)
	}
	var errs []error
	for _, rt := range resp.Topics {
		err := kerr.ErrorForCode(rt.ErrorCode)
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			continue
		}
		msg := ""
		if rt.ErrorMessage != nil {
			msg = ": " + *rt.ErrorMessage
		}
		errs = append(errs, fmt.Errorf("topic %q: %w%s", rt.Topic, err, msg))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafkabroker: create topics: %w", err)
	}
	return waitForTopics(ctx, client, topics)
}

// validateTopicName applies Apache Kafka's topic name rules: 1 to 249
// characters from [a-zA-Z0-9._-], and neither "." nor "..".
func validateTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("invalid topic name %q", name)
	}
	for _, r := range name {
		ok := r == '.' || r == '_' || r == '-' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("invalid topic name %q: character %q not in [a-zA-Z0-9._-]", name, r)
		}
	}
	return nil
}

// waitForTopics polls metadata until every topic is present, error-free and
// has at least one partition, or until ctx is done.
func waitForTopics(ctx context.Context, client *kgo.Client, topics []string) error {
	ticker := time.NewTicker(metadataPollInterval)
	defer ticker.Stop()
	for {
		missing, err := missingTopics(ctx, client, topics)
		if err == nil && len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("topics not yet visible: %v", missing)
			}
			return fmt.Errorf("kafkabroker: wait for topics: %w (last: %w)", ctx.Err(), err)
		case <-ticker.C:
		}
	}
}

// missingTopics returns the topics that metadata does not yet show as ready.
func missingTopics(ctx context.Context, client *kgo.Client, topics []string) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	ready := make(map[string]bool, len(resp.Topics))
	for _, rt := range resp.Topics {
		if rt.Topic != nil && rt.ErrorCode == 0 && len(rt.Partitions) > 0 {
			ready[*rt.Topic] = true
		}
	}
	var missing []string
	for _, topic := range topics {
		if !ready[topic] {
			missing = append(missing, topic)
		}
	}
	return missing, nil
}

// advertiseDialable wraps a listener bound to a wildcard address so that its
// Addr reports 127.0.0.1 instead; kfake advertises Addr to clients.
func advertiseDialable(ln net.Listener) net.Listener {
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return ln
	}
	return &advertisedListener{
		Listener: ln,
		addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tcp.Port},
	}
}

type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l *advertisedListener) Addr() net.Addr { return l.addr }

// slogAdapter forwards kfake log lines to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelInfo
	case kfake.LogLevelDebug:
		sl = slog.LevelDebug
	default:
		return
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, sl) {
		return
	}
	a.l.Log(ctx, sl, fmt.Sprintf(format, args...), slog.String("component", "kfake"))
}
