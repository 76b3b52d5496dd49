package kafkakit

import (
	"strings"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// The environment variables read by Load. Every program that talks to Kafka
// uses these names.
const (
	// BrokersVar lists the bootstrap brokers, comma-separated host:port.
	BrokersVar = "KAFKA_BROKERS"
	// TLSEnabledVar turns TLS on: true or false (default false).
	TLSEnabledVar = "KAFKA_TLS_ENABLED"
	// TLSCAFileVar names the PEM file of the CAs that sign the brokers' certificates.
	TLSCAFileVar = "KAFKA_TLS_CA_FILE"
	// TLSCertFileVar names the PEM client certificate for mutual TLS.
	TLSCertFileVar = "KAFKA_TLS_CERT_FILE"
	// TLSKeyFileVar names the PEM key of the client certificate.
	TLSKeyFileVar = "KAFKA_TLS_KEY_FILE"
	// TLSServerNameVar overrides the name checked against the brokers' certificates.
	TLSServerNameVar = "KAFKA_TLS_SERVER_NAME"
	// TLSInsecureSkipVerifyVar accepts any broker certificate: true or false (default false).
	TLSInsecureSkipVerifyVar = "KAFKA_TLS_INSECURE_SKIP_VERIFY"
	// SASLMechanismVar selects PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case); empty is none.
	SASLMechanismVar = "KAFKA_SASL_MECHANISM"
	// SASLUsernameVar is the SASL principal.
	SASLUsernameVar = "KAFKA_SASL_USERNAME"
	// SASLPasswordVar is the SASL password.
	SASLPasswordVar = "KAFKA_SASL_PASSWORD"
	// SASLPasswordFileVar names a file holding the SASL password instead
	// (one trailing newline removed).
	SASLPasswordFileVar = "KAFKA_SASL_PASSWORD_FILE"
)

// The environment variables read by LoadMembership: how a program's
// consumer-group members keep and lose their membership. Every program that
// joins a consumer group uses these names, defaults and bounds.
const (
	// SessionTimeoutVar is how long the group coordinator waits for a
	// member's heartbeat before it declares the member dead and gives its
	// partitions to the others (default DefaultSessionTimeout).
	SessionTimeoutVar = "KAFKA_SESSION_TIMEOUT"
	// HeartbeatIntervalVar is how often a member heartbeats; it is also how
	// soon a member notices that a rebalance started (default
	// DefaultHeartbeatInterval; at most a third of the session timeout).
	HeartbeatIntervalVar = "KAFKA_HEARTBEAT_INTERVAL"
	// RebalanceTimeoutVar is how long the coordinator waits for every
	// member to rejoin during a rebalance (default DefaultRebalanceTimeout).
	RebalanceTimeoutVar = "KAFKA_REBALANCE_TIMEOUT"
)

// Variables returns the variables Load reads, each with its default ("" when
// it has none). A program merges them into its envconfig defaults and its
// settings table; KAFKA_BROKERS has no default here, the program gives it one.
func Variables() map[string]string {
	return map[string]string{
		BrokersVar:               "",
		TLSEnabledVar:            "false",
		TLSCAFileVar:             "",
		TLSCertFileVar:           "",
		TLSKeyFileVar:            "",
		TLSServerNameVar:         "",
		TLSInsecureSkipVerifyVar: "false",
		SASLMechanismVar:         "",
		SASLUsernameVar:          "",
		SASLPasswordVar:          "",
		SASLPasswordFileVar:      "",
	}
}

// Load reads the KAFKA_* variables through p and records in p every
// problem, each naming its variable: a malformed value, a password file
// that cannot be read or is empty, a password given both directly and as a
// file, and every inconsistency Validate reports. The caller reports them
// with its own through p.Err; when p has problems the returned Config must
// not be used. The two booleans default to false even when p's defaults
// lack them. Load reads no TLS file: Config.TLSConfig does.
func Load(p *envconfig.Parser) Config {
	c := Config{
		Brokers: p.List(BrokersVar),
		TLS: TLS{
			Enabled:            flag(p, TLSEnabledVar),
			CAFile:             p.Raw(TLSCAFileVar),
			CertFile:           p.Raw(TLSCertFileVar),
			KeyFile:            p.Raw(TLSKeyFileVar),
			ServerName:         p.Raw(TLSServerNameVar),
			InsecureSkipVerify: flag(p, TLSInsecureSkipVerifyVar),
		},
		SASL: SASL{
			Mechanism: Mechanism(strings.ToUpper(p.Raw(SASLMechanismVar))),
			Username:  p.Raw(SASLUsernameVar),
		},
	}
	passwordVar := SASLPasswordVar
	if p.Raw(SASLPasswordFileVar) != "" {
		passwordVar = SASLPasswordFileVar
	}
	passwordSet := p.Raw(SASLPasswordVar) != "" || p.Raw(SASLPasswordFileVar) != ""
	if passwordSet {
		// Secret reports both set, an unreadable file and an empty file.
		c.SASL.Password = Password(p.Secret(SASLPasswordVar))
	}
	for _, err := range c.check(passwordVar, passwordSet) {
		p.Add(err)
	}
	return c
}

// flag reads the boolean name, false when it is blank and has no default.
func flag(p *envconfig.Parser, name string) bool {
	if p.Raw(name) == "" {
		return false
	}
	return p.Bool(name)
}
