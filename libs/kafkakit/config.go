// Package kafkakit builds the Kafka clients of every program in the
// workspace from one configuration, so that the brokers, TLS and SASL
// settings, their defaults and their checks exist once.
//
// A Config is read from the KAFKA_* environment variables by Load (through
// the caller's envconfig.Parser, so Kafka problems are reported with the
// program's other configuration problems) or built in code and checked with
// Validate. Its builders turn it into what segmentio/kafka-go needs: a
// *kafka.Transport for kafka.Writer and kafka.Client users, a *kafka.Dialer
// for kafka.Conn, kafka.Reader and kafka.ConsumerGroup users. The builders
// read the TLS files when they are called, so build once at start-up.
package kafkakit

import (
	"errors"
	"fmt"
	"log/slog"
)

// Mechanism is a SASL mechanism name as Kafka spells it.
type Mechanism string

// The SASL mechanisms a Config may select.
const (
	// MechanismNone disables SASL: the connection is not authenticated.
	MechanismNone Mechanism = ""
	// MechanismPlain sends the username and password as they are; use it
	// only over TLS.
	MechanismPlain Mechanism = "PLAIN"
	// MechanismSCRAMSHA256 is SCRAM with SHA-256 (RFC 7677).
	MechanismSCRAMSHA256 Mechanism = "SCRAM-SHA-256"
	// MechanismSCRAMSHA512 is SCRAM with SHA-512.
	MechanismSCRAMSHA512 Mechanism = "SCRAM-SHA-512"
)

// known reports whether m is a mechanism the builders support (not none).
func (m Mechanism) known() bool {
	return m == MechanismPlain || m == MechanismSCRAMSHA256 || m == MechanismSCRAMSHA512
}

// Password is a SASL password. It formats and logs as "[redacted]", so a
// Config can be printed or logged without leaking it; convert it to a
// string to use the value.
type Password string

// String returns "[redacted]".
func (Password) String() string { return "[redacted]" }

// GoString returns "[redacted]", for %#v.
func (Password) GoString() string { return "[redacted]" }

// LogValue returns "[redacted]", for slog.
func (Password) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Config is how a program reaches its Kafka cluster. The zero TLS and SASL
// values mean plaintext without authentication (the embedded broker of
// `make run`).
type Config struct {
	// Brokers are the bootstrap brokers, host:port (KAFKA_BROKERS).
	Brokers []string
	// ClientID is sent to the brokers with every request, so that their logs
	// and quotas can tell the programs apart. Load leaves it empty: the
	// program sets its own name.
	ClientID string
	// TLS configures the encryption of the connections.
	TLS TLS
	// SASL configures the authentication of the connections.
	SASL SASL
}

// TLS configures TLS to the brokers. The files are PEM and are read by
// Config.TLSConfig.
type TLS struct {
	// Enabled turns TLS on (KAFKA_TLS_ENABLED). The other fields require it.
	Enabled bool
	// CAFile holds the certificates that sign the brokers' certificates
	// (KAFKA_TLS_CA_FILE); empty trusts the system roots.
	CAFile string
	// CertFile and KeyFile hold the client certificate and its key for
	// mutual TLS (KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE); both or neither.
	CertFile, KeyFile string
	// ServerName is the name checked against the brokers' certificates
	// (KAFKA_TLS_SERVER_NAME); empty checks the host of each broker address.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate
	// (KAFKA_TLS_INSECURE_SKIP_VERIFY): the connection is encrypted but not
	// authenticated, so anyone on the path can impersonate the brokers.
	// Warnings reports it; it excludes CAFile and ServerName, which it would
	// silently ignore.
	InsecureSkipVerify bool
}

// SASL configures SASL authentication.
type SASL struct {
	// Mechanism is none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// (KAFKA_SASL_MECHANISM).
	Mechanism Mechanism
	// Username is the principal (KAFKA_SASL_USERNAME); required with a
	// mechanism.
	Username string
	// Password is its password (KAFKA_SASL_PASSWORD or the content of the
	// file named by KAFKA_SASL_PASSWORD_FILE); required with a mechanism.
	Password Password
}

// Validate reports every inconsistency of c, each naming the environment
// variable that sets the field, as one joined error, or nil. Load reports
// the same problems (and those of reading the variables).
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, fmt.Errorf("%s needs at least one host:port", BrokersVar))
	}
	return errors.Join(append(errs, c.check(SASLPasswordVar, c.SASL.Password != "")...)...)
}

// check returns the problems of the TLS and SASL settings. passwordVar is
// the variable the password came from, so a problem names it; passwordSet
// whether a password was given (it may be empty when its file was not
// readable, which is reported on its own).
func (c Config) check(passwordVar string, passwordSet bool) []error {
	var errs []error
	fail := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...)))
	}
	t := c.TLS
	if !t.Enabled {
		for _, v := range []struct {
			name string
			set  bool
		}{
			{TLSCAFileVar, t.CAFile != ""}, {TLSCertFileVar, t.CertFile != ""}, {TLSKeyFileVar, t.KeyFile != ""},
			{TLSServerNameVar, t.ServerName != ""}, {TLSInsecureSkipVerifyVar, t.InsecureSkipVerify},
		} {
			if v.set {
				fail(v.name, "is set but %s is false (set %s=true to use TLS)", TLSEnabledVar, TLSEnabledVar)
			}
		}
	} else {
		if t.CertFile != "" && t.KeyFile == "" {
			fail(TLSCertFileVar, "is set without %s (a client certificate needs its key)", TLSKeyFileVar)
		}
		if t.KeyFile != "" && t.CertFile == "" {
			fail(TLSKeyFileVar, "is set without %s (a client key needs its certificate)", TLSCertFileVar)
		}
		if t.InsecureSkipVerify {
			if t.CAFile != "" {
				fail(TLSCAFileVar, "is set but %s=true skips the verification it is for; set one", TLSInsecureSkipVerifyVar)
			}
			if t.ServerName != "" {
				fail(TLSServerNameVar, "is set but %s=true skips the verification it is for; set one", TLSInsecureSkipVerifyVar)
			}
		}
	}
	s := c.SASL
	switch {
	case s.Mechanism == MechanismNone:
		if s.Username != "" {
			fail(SASLUsernameVar, "is set but %s is empty (set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", SASLMechanismVar)
		}
		if passwordSet {
			fail(passwordVar, "is set but %s is empty (set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", SASLMechanismVar)
		}
	case s.Mechanism.known():
		if s.Username == "" {
			fail(SASLUsernameVar, "is required with %s=%s", SASLMechanismVar, s.Mechanism)
		}
		if !passwordSet {
			fail(SASLPasswordVar, "or %s is required with %s=%s", SASLPasswordFileVar, SASLMechanismVar, s.Mechanism)
		}
	default:
		fail(SASLMechanismVar, "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (or empty for none), got %q", string(s.Mechanism))
	}
	return errs
}

// Warnings returns the settings of c that work but weaken security, one
// sentence each naming the variable, for the program to log at Warn at
// start-up: skipping certificate verification, and PLAIN passwords sent
// without TLS. It returns nil when there is nothing to warn about.
func (c Config) Warnings() []string {
	var out []string
	if c.TLS.Enabled && c.TLS.InsecureSkipVerify {
		out = append(out, TLSInsecureSkipVerifyVar+"=true: the brokers' certificates are not verified, so anyone on the network path can impersonate them; use it only for tests")
	}
	if c.SASL.Mechanism == MechanismPlain && !c.TLS.Enabled {
		out = append(out, SASLMechanismVar+"=PLAIN without "+TLSEnabledVar+"=true: the password crosses the network in clear")
	}
	return out
}
