package envconfig

import (
	"log/slog"
	"time"
)

// Service is the part of a configuration every companias service has and
// reads the same way: how its API listens, its operator endpoints, its
// authentication, tracing, shutdown grace and log level. A service's
// Config embeds it, so that cfg.HTTP, cfg.Auth… read as before.
type Service struct {
	// HTTP is where and how the HTTP API listens: HTTP_ADDR and the
	// http.Server timeouts (HTTP_READ_HEADER_TIMEOUT, HTTP_READ_TIMEOUT,
	// HTTP_WRITE_TIMEOUT, HTTP_IDLE_TIMEOUT); see Parser.HTTPServer.
	HTTP HTTPServer
	// Admin is where the operator endpoints listen: GET /metrics on
	// METRICS_ADDR ("off": none) and the Go profiler on PPROF_ADDR (unset:
	// off; loopback only unless PPROF_ALLOW_REMOTE=true); never on the API
	// port. See Parser.Admin.
	Admin Admin
	// Auth configures bearer-token authentication of the HTTP API (AUTH_*;
	// AUTH_MODE is required unless HTTP_ADDR is a loopback address). See
	// Parser.Auth.
	Auth AuthSettings
	// Tracing configures OpenTelemetry tracing (OTEL_*); off by default.
	Tracing Tracing
	// ShutdownTimeout bounds each step of the graceful stop: the HTTP
	// drain, then the workers' stop (SHUTDOWN_TIMEOUT, 1s..10m).
	ShutdownTimeout time.Duration
	// LogLevel is the slog level: debug, info, warn or error (LOG_LEVEL).
	LogLevel slog.Level
}

// Service reads the variables of Service; give each a default (the
// service's own values: its address, its metrics port, its OTEL service
// name).
func (p *Parser) Service() Service {
	return Service{
		HTTP:            p.HTTPServer(),
		Admin:           p.Admin(),
		Auth:            p.Auth(),
		Tracing:         p.Tracing(),
		ShutdownTimeout: p.DurationRange("SHUTDOWN_TIMEOUT", time.Second, 10*time.Minute),
		LogLevel:        p.Level("LOG_LEVEL"),
	}
}
