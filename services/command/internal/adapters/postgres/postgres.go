package postgres

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool defaults applied by Open when the DSN does not set them.
const (
	// DefaultApplicationName is the application_name the sessions report in
	// pg_stat_activity.
	DefaultApplicationName = "companias-command"
	// DefaultConnectTimeout bounds dialling one connection.
	DefaultConnectTimeout = 5 * time.Second
)

// Option changes the pool configuration built by Open. Options run after the
// DSN was parsed and the defaults applied, so they win over both.
type Option func(*pgxpool.Config)

// WithMaxConns sets the maximum number of pooled connections.
func WithMaxConns(n int32) Option {
	return func(c *pgxpool.Config) { c.MaxConns = n }
}

// WithApplicationName sets the application_name of the sessions.
func WithApplicationName(name string) Option {
	return func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["application_name"] = name }
}

// WithConfig lets the caller adjust anything else of the pool configuration.
func WithConfig(fn func(*pgxpool.Config)) Option { return Option(fn) }

// Open parses dsn (a postgres:// URL or key=value string, pgxpool's pool_*
// parameters included), applies the defaults below and opts, creates the pool
// and pings the server once, so that a wrong DSN or an unreachable server
// fails at start-up. The caller closes the pool.
//
// Defaults, each only when the DSN does not set it: pool_max_conns
// max(8, 4×GOMAXPROCS) (commits wait on the WAL flush, and more concurrent
// committers share one flush); pool_max_conn_lifetime 30m with 5m jitter (so
// that replicas re-balance after a failover and do not reconnect in step);
// pool_max_conn_idle_time 5m; pool_health_check_period 30s; connect_timeout
// 5s; application_name "companias-command".
func Open(ctx context.Context, dsn string, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn.ParseConfigError masks the password it quotes.
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	set := func(param string) bool {
		return strings.Contains(dsn, param+"=") || strings.Contains(dsn, param+" ")
	}
	if !set("pool_max_conns") {
		cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	if !set("pool_max_conn_lifetime") {
		cfg.MaxConnLifetime = 30 * time.Minute
	}
	if !set("pool_max_conn_lifetime_jitter") {
		cfg.MaxConnLifetimeJitter = 5 * time.Minute
	}
	if !set("pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	if !set("pool_health_check_period") {
		cfg.HealthCheckPeriod = 30 * time.Second
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = DefaultApplicationName
	}
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}
