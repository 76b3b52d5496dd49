package kafkakit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// DefaultDialTimeout bounds the opening of one broker connection, TLS
// handshake and SASL exchange included, unless WithDialTimeout says
// otherwise.
const DefaultDialTimeout = 10 * time.Second

// DialFunc opens a network connection to a broker, as net.Dialer.DialContext
// does. It is the layer below TLS and SASL: the connection it returns is the
// raw TCP stream, which the client then wraps in TLS and authenticates.
type DialFunc = func(ctx context.Context, network, address string) (net.Conn, error)

// Option adjusts what Transport and Dialer build.
type Option func(*options)

type options struct {
	dialTimeout time.Duration
	wrappers    []func(DialFunc) DialFunc
}

// WithDialWrapper wraps the function that opens the TCP connections, below
// TLS and SASL: wrap receives the plain dialer and returns the one the
// client uses (to fence, count or fault-inject connections). Several
// wrappers apply in order, the last one outermost.
func WithDialWrapper(wrap func(DialFunc) DialFunc) Option {
	return func(o *options) { o.wrappers = append(o.wrappers, wrap) }
}

// WithDialTimeout sets the time allowed to open one connection, TLS and
// SASL included; d ≤ 0 keeps DefaultDialTimeout.
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.dialTimeout = d
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{dialTimeout: DefaultDialTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// dial returns the plain TCP dialer wrapped by o's wrappers.
func (o options) dial() DialFunc {
	d := (&net.Dialer{Timeout: o.dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	for _, w := range o.wrappers {
		d = w(d)
	}
	return d
}

// TLSConfig returns the client TLS configuration of c, or nil when TLS is
// disabled. It reads CAFile and the CertFile/KeyFile pair now, so rotating
// them takes a restart; an unreadable or malformed file is an error naming
// its variable. The minimum version is TLS 1.2.
func (c Config) TLSConfig() (*tls.Config, error) {
	t := c.TLS
	if !t.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, // #nosec G402 -- explicit setting; Warnings reports it
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", TLSCAFileVar, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", TLSCAFileVar, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			return nil, fmt.Errorf("%s and %s must be set together", TLSCertFileVar, TLSKeyFileVar)
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", TLSCertFileVar, TLSKeyFileVar, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// SASLMechanism returns the SASL mechanism of c, or nil when SASL is
// disabled. An unknown mechanism is an error naming KAFKA_SASL_MECHANISM.
func (c Config) SASLMechanism() (sasl.Mechanism, error) {
	s := c.SASL
	switch s.Mechanism {
	case MechanismNone:
		return nil, nil
	case MechanismPlain:
		return plain.Mechanism{Username: s.Username, Password: string(s.Password)}, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		algo := scram.SHA256
		if s.Mechanism == MechanismSCRAMSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.Username, string(s.Password))
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", SASLMechanismVar, s.Mechanism, err)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("%s must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", SASLMechanismVar, string(s.Mechanism))
	}
}

// Transport returns a new kafka.Transport for c, for kafka.Writer and
// kafka.Client: TLS and SASL as configured, c.ClientID, the dial timeout
// and the dial wrappers of opts. Each call returns a Transport of its own
// (with its own connection pool and metadata cache: kafka-go's shared
// DefaultTransport would hide new topics for its 6 s metadata TTL); the
// caller closes its idle connections when done (CloseIdleConnections). It
// does not connect.
func (c Config) Transport(opts ...Option) (*kafka.Transport, error) {
	tlsCfg, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	return &kafka.Transport{
		Dial:        o.dial(),
		DialTimeout: o.dialTimeout,
		ClientID:    c.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
	}, nil
}

// Dialer returns a new kafka.Dialer for c, for kafka.Conn, kafka.Reader and
// kafka.ConsumerGroup: TLS and SASL as configured, c.ClientID, the dial
// timeout and the dial wrappers of opts. It does not connect.
func (c Config) Dialer(opts ...Option) (*kafka.Dialer, error) {
	tlsCfg, mech, err := c.security()
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	return &kafka.Dialer{
		ClientID:      c.ClientID,
		DialFunc:      o.dial(),
		Timeout:       o.dialTimeout,
		TLS:           tlsCfg,
		SASLMechanism: mech,
	}, nil
}

func (c Config) security() (*tls.Config, sasl.Mechanism, error) {
	tlsCfg, err := c.TLSConfig()
	if err != nil {
		return nil, nil, err
	}
	mech, err := c.SASLMechanism()
	if err != nil {
		return nil, nil, err
	}
	return tlsCfg, mech, nil
}

// TransportFor returns a new kafka.Transport with the client id, TLS, SASL
// and dial function of d (a Dialer from Config.Dialer), so that a program
// handed only a Dialer talks to the brokers the same way with a
// kafka.Writer or kafka.Client; d nil gives a plain Transport. dialTimeout
// bounds opening a connection (0: kafka-go's default). It does not connect.
func TransportFor(d *kafka.Dialer, dialTimeout time.Duration) *kafka.Transport {
	tr := &kafka.Transport{DialTimeout: dialTimeout}
	if d != nil {
		tr.ClientID, tr.TLS, tr.SASL, tr.Dial = d.ClientID, d.TLS, d.SASLMechanism, d.DialFunc
	}
	return tr
}
