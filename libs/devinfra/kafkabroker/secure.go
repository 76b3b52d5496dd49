package kafkabroker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/propalpes/companias/libs/kafkakit"
)

// The secured mode's fixed choices.
const (
	// Mechanism is the SASL mechanism of every secured principal.
	Mechanism = kafkakit.MechanismSCRAMSHA512
	// AdminPrincipal is the superuser of a secured broker: it bypasses the
	// ACLs, and CreateTopics uses it.
	AdminPrincipal = "admin"
	// CAFileName is the name of the CA certificate file in Security.Dir.
	CAFileName = "kafka-ca.pem"
)

// Security turns on the secured mode of Start: a TLS listener with a
// certificate from a CA generated at start (so clients must trust
// CAFile), SASL/SCRAM-SHA-512 authentication, and ACLs, so that each
// principal may do only what its Principal grants.
type Security struct {
	// Dir receives the CA certificate (CAFileName, PEM, mode 0644). Empty
	// means a new temporary directory that Close removes.
	Dir string
	// Principals are the users besides AdminPrincipal. Names must be
	// unique, of [a-zA-Z0-9._-], and not AdminPrincipal.
	Principals []Principal
}

// Principal is a SCRAM-SHA-512 user of a secured broker and what it may do.
// Grants are literal names (no prefixes, no wildcards); anything not
// granted is refused. Read and Write imply Describe, as in Apache Kafka.
type Principal struct {
	// Name is the SASL username; the ACL principal is "User:<Name>".
	Name string
	// Password is its password; empty means a random one, read back with
	// Broker.Credentials.
	Password string
	// Consume lists the topics it may read (fetch, list offsets, commit).
	Consume []string
	// Produce lists the topics it may write.
	Produce []string
	// Groups lists the consumer groups it may join and commit offsets in.
	Groups []string
}

// The principals of the workspace's services (issue 10).
const (
	// WriterPrincipal is the command service.
	WriterPrincipal = "companias-command"
	// ReaderPrincipal is the query service.
	ReaderPrincipal = "companias-query"
	// ExternalPrincipal is an outside consumer of the integration events.
	ExternalPrincipal = "external"
)

// ServiceTopics names the topics and groups ServicePrincipals grants.
type ServiceTopics struct {
	// Events is the integration event topic (KAFKA_EVENTS_TOPIC).
	Events string
	// EventsDLQ is the dead-letter topic of the projection.
	EventsDLQ string
	// EventsGroup is the consumer group of the projection.
	EventsGroup string
	// Commands is the command topic (KAFKA_COMMANDS_TOPIC).
	Commands string
	// CommandsDLQ is the dead-letter topic of the command intake.
	CommandsDLQ string
	// CommandsGroup is the consumer group of the command intake.
	CommandsGroup string
	// ExternalGroup is the consumer group ExternalPrincipal may use.
	ExternalGroup string
}

// ServicePrincipals returns the least-privilege principals of the services,
// with random passwords: the writer consumes the command topic (in
// CommandsGroup) and produces the event topic and the command DLQ; the
// reader consumes the event topic (in EventsGroup) and produces its DLQ;
// the external principal only consumes the event topic (in ExternalGroup).
// So only the writer can put an event on the event topic.
func ServicePrincipals(t ServiceTopics) []Principal {
	return []Principal{
		{Name: WriterPrincipal, Consume: []string{t.Commands}, Groups: []string{t.CommandsGroup}, Produce: []string{t.Events, t.CommandsDLQ}},
		{Name: ReaderPrincipal, Consume: []string{t.Events}, Groups: []string{t.EventsGroup}, Produce: []string{t.EventsDLQ}},
		{Name: ExternalPrincipal, Consume: []string{t.Events}, Groups: []string{t.ExternalGroup}},
	}
}

// security is the state of a secured broker.
type security struct {
	pki       *throwawayPKI
	dir       string
	removeDir bool
	caFile    string
	passwords map[string]string // by principal, admin included
}

// setupSecurity generates the PKI, writes the CA file and returns the kfake
// options of the secured mode. host is the listen host.
func setupSecurity(s *Security, host string) (*security, []kfake.Opt, error) {
	sec := &security{dir: s.Dir, passwords: map[string]string{}}
	adminPass, err := randomPassword()
	if err != nil {
		return nil, nil, err
	}
	sec.passwords[AdminPrincipal] = adminPass
	opts := []kfake.Opt{
		kfake.EnableSASL(),
		kfake.EnableACLs(),
		kfake.Superuser(string(Mechanism), AdminPrincipal, adminPass),
	}
	for _, p := range s.Principals {
		if !validPrincipal(p.Name) || p.Name == AdminPrincipal {
			return nil, nil, fmt.Errorf("principal name %q: want [a-zA-Z0-9._-]+ and not %q", p.Name, AdminPrincipal)
		}
		if _, dup := sec.passwords[p.Name]; dup {
			return nil, nil, fmt.Errorf("principal %q is listed twice", p.Name)
		}
		pass := p.Password
		if pass == "" {
			if pass, err = randomPassword(); err != nil {
				return nil, nil, err
			}
		}
		sec.passwords[p.Name] = pass
		opts = append(opts, kfake.User(string(Mechanism), p.Name, pass, p.acls()...))
	}

	if sec.pki, err = newPKI(host); err != nil {
		return nil, nil, fmt.Errorf("generate certificates: %w", err)
	}
	if sec.dir == "" {
		if sec.dir, err = os.MkdirTemp("", "kafkabroker-"); err != nil {
			return nil, nil, fmt.Errorf("create certificate dir: %w", err)
		}
		sec.removeDir = true
	} else if err := os.MkdirAll(sec.dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("create certificate dir: %w", err)
	}
	sec.caFile, err = filepath.Abs(filepath.Join(sec.dir, CAFileName))
	if err == nil {
		err = writeFileAtomic(sec.caFile, sec.pki.caPEM, 0o644)
	}
	if err != nil {
		sec.cleanup()
		return nil, nil, fmt.Errorf("write CA file: %w", err)
	}
	opts = append(opts, kfake.TLS(&tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{sec.pki.server},
	}))
	return sec, opts, nil
}

// acls returns the kfake ACLs of p's grants.
func (p Principal) acls() []kfake.ACL {
	var out []kfake.ACL
	add := func(rt kmsg.ACLResourceType, op kmsg.ACLOperation, names []string) {
		for _, n := range names {
			if n == "" {
				continue
			}
			out = append(out, kfake.ACL{Resource: rt, Name: n, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true})
		}
	}
	add(kmsg.ACLResourceTypeTopic, kmsg.ACLOperationRead, p.Consume)
	add(kmsg.ACLResourceTypeTopic, kmsg.ACLOperationWrite, p.Produce)
	add(kmsg.ACLResourceTypeGroup, kmsg.ACLOperationRead, p.Groups)
	return out
}

// cleanup removes the temporary directory, if Start made one.
func (s *security) cleanup() {
	if s != nil && s.removeDir {
		_ = os.RemoveAll(s.dir)
	}
}

// adminOpts returns the franz-go options that connect as AdminPrincipal.
func (s *security) adminOpts() []kgo.Opt {
	if s == nil {
		return nil
	}
	return []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.pki.roots}),
		kgo.SASL(scram.Auth{User: AdminPrincipal, Pass: s.passwords[AdminPrincipal]}.AsSha512Mechanism()),
	}
}

// Secured reports whether the broker runs in the secured mode.
func (b *Broker) Secured() bool { return b.sec != nil }

// CAFile returns the absolute path of the PEM CA certificate clients must
// trust, or "" when the broker is not secured.
func (b *Broker) CAFile() string {
	if b.sec == nil {
		return ""
	}
	return b.sec.caFile
}

// Credentials returns the SCRAM-SHA-512 username and password of principal
// (AdminPrincipal included) on a secured broker.
func (b *Broker) Credentials(principal string) (user, password string, err error) {
	if b.sec == nil {
		return "", "", errors.New("kafkabroker: the broker is not secured")
	}
	pass, ok := b.sec.passwords[principal]
	if !ok {
		return "", "", fmt.Errorf("kafkabroker: no principal %q", principal)
	}
	return principal, pass, nil
}

// ClientConfig returns the kafkakit configuration with which principal
// reaches the broker: TLS trusting CAFile and SCRAM-SHA-512 with its
// credentials on a secured broker, plaintext (principal "") otherwise.
func (b *Broker) ClientConfig(principal string) (kafkakit.Config, error) {
	c := kafkakit.Config{Brokers: []string{b.addr}}
	if b.sec == nil {
		if principal != "" {
			return kafkakit.Config{}, fmt.Errorf("kafkabroker: principal %q on a broker that is not secured", principal)
		}
		return c, nil
	}
	user, pass, err := b.Credentials(principal)
	if err != nil {
		return kafkakit.Config{}, err
	}
	c.TLS = kafkakit.TLS{Enabled: true, CAFile: b.sec.caFile}
	c.SASL = kafkakit.SASL{Mechanism: Mechanism, Username: user, Password: kafkakit.Password(pass)}
	return c, nil
}

// ClientProperties returns the librdkafka-style client settings of
// principal on a secured broker (bootstrap.servers, security.protocol,
// sasl.mechanisms, sasl.username, sasl.password, ssl.ca.location), as
// `kcat -F` and other librdkafka clients read them. It holds the password.
func (b *Broker) ClientProperties(principal string) (string, error) {
	user, pass, err := b.Credentials(principal)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Kafka client settings of principal %q on the embedded broker (librdkafka, kcat -F).\n", user)
	fmt.Fprintf(&sb, "# The CA and the password are made anew each time the broker starts.\n")
	fmt.Fprintf(&sb, "bootstrap.servers=%s\n", b.addr)
	fmt.Fprintf(&sb, "security.protocol=SASL_SSL\n")
	fmt.Fprintf(&sb, "sasl.mechanisms=%s\n", Mechanism)
	fmt.Fprintf(&sb, "sasl.username=%s\n", user)
	fmt.Fprintf(&sb, "sasl.password=%s\n", pass)
	fmt.Fprintf(&sb, "ssl.ca.location=%s\n", b.sec.caFile)
	return sb.String(), nil
}

// WriteClientProperties writes ClientProperties(principal) to path with
// mode 0600 (it holds a password), replacing the file atomically.
func (b *Broker) WriteClientProperties(path, principal string) error {
	props, err := b.ClientProperties(principal)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, []byte(props), 0o600); err != nil {
		return fmt.Errorf("kafkabroker: write client properties: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path with mode
// perm and renames it over path, so a reader never sees half a file and an
// existing file's wider mode is not kept.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// randomPassword returns 24 URL-safe characters from 144 random bits.
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validPrincipal reports whether name is non-empty [a-zA-Z0-9._-]: SCRAM
// usernames with ',' or '=' need escaping and ACL principals with ':' are
// ambiguous, so the broker refuses them.
func validPrincipal(name string) bool {
	return name != "" && !slices.ContainsFunc([]rune(name), func(r rune) bool {
		return !(r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	})
}

// listenHost returns the host part of addr ("" when it has none).
func listenHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return host
}

// advertiseSASLHandshakeV0 makes the cluster advertise SaslHandshake from
// version 0 instead of 1 in its ApiVersions responses, so that librdkafka
// (kcat) authenticates. kfake implements only v1 of SaslHandshake (v0 is
// the pre-KIP-152 flow without SaslAuthenticate), but librdkafka 2.x
// enables SASL handshakes only when the broker's range includes v0, as
// every Apache Kafka broker's does, and otherwise fails with "SASL
// Handshake not supported by broker". Every client picks the highest
// version both sides support, so each still sends v1, which kfake serves.
//
// kfake has no hook to edit its own responses, so this reads the cluster's
// ApiVersions answer once, as the admin, and from then on answers
// ApiVersions requests up to v4 from that copy (edited) through a control
// function; later versions, with their cluster checks, go to kfake.
func advertiseSASLHandshakeV0(ctx context.Context, cluster *kfake.Cluster, addr string, sec *security) error {
	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, sec.adminOpts()...)...)
	if err != nil {
		return err
	}
	defer client.Close()
	probe := kmsg.NewPtrApiVersionsRequest()
	probe.Version = 3
	probe.ClientSoftwareName = "kafkabroker"
	probe.ClientSoftwareVersion = "1"
	resp, err := probe.RequestWith(ctx, client)
	if err != nil {
		return fmt.Errorf("read api versions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("read api versions: %w", err)
	}
	keys := slices.Clone(resp.ApiKeys)
	for i := range keys {
		if keys[i].ApiKey == kmsg.SASLHandshake.Int16() {
			keys[i].MinVersion = 0
		}
	}
	supported, finalized := slices.Clone(resp.SupportedFeatures), slices.Clone(resp.FinalizedFeatures)
	cluster.ControlKey(kmsg.ApiVersions.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := kreq.(*kmsg.ApiVersionsRequest)
		if req.Version > 4 {
			return nil, nil, false
		}
		out := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		out.ApiKeys = slices.Clone(keys)
		if req.Version >= 3 {
			out.SupportedFeatures = slices.Clone(supported)
			out.FinalizedFeatures = slices.Clone(finalized)
			out.FinalizedFeaturesEpoch = resp.FinalizedFeaturesEpoch
		}
		return out, nil, true
	})
	return nil
}
