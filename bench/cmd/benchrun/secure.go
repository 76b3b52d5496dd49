package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
)

// Topics of the secured line (-secure), on the secured broker; each phase
// has its own, like the plaintext ones.
const (
	topicSecCreate = "bench-sec-create-events" // figure 1's writer, secured
	topicSecLive   = "bench-sec-live-events"   // figures 2 and 5, secured
	topicSecRaw    = "bench-sec-raw-kafka"     // figure 2's raw kafka-go ceiling, secured
	topicSecProj   = "bench-sec-proj-events"   // figure 3's pre-loaded topic, secured
)

// dlqTopic is the dead-letter topic the reader derives from its event
// topic (libs/contracts/deadletter.Topic).
func dlqTopic(topic string) string { return topic + ".dlq" }

// benchPrincipal is the principal of the bench's own clients on the
// secured broker: the raw kafka-go ceiling, the watchers and the preload.
const benchPrincipal = "benchrun"

// securedKafka is the second broker of the run: TLS with a throwaway CA,
// SASL/SCRAM-SHA-512 and ACLs, as in `make run-secure` and the secured
// end-to-end test. The admin principal creates the topics; each service
// connects as its own least-privilege principal and creates none.
type securedKafka struct {
	broker *kafkabroker.Broker
	dir    string // CA and password files
	side   kafkaSide
}

// Consumer groups and view databases of the secured reader runs: ACLs name
// groups literally, so all of them are granted up front.
func (s *stack) secLiveGroup() string      { return s.prefix + "_livesec" }
func (s *stack) secProjGroup(i int) string { return fmt.Sprintf("%s_projsec%d", s.prefix, i) }

// startSecured starts the secured broker with one principal per service
// (the writer produces the secured event topics; the reader consumes them
// in the bench's groups and produces their DLQs; benchrun produces and
// consumes the raw and pre-load topics and watches the live one), and
// creates the topics as the admin.
func (s *stack) startSecured(ctx context.Context, runs int) error {
	dir := filepath.Join(s.workDir, "kafka-secure")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	groups := []string{s.secLiveGroup()}
	for i := range runs {
		groups = append(groups, s.secProjGroup(i+1))
	}
	broker, err := kafkabroker.Start(kafkabroker.Options{Security: &kafkabroker.Security{Dir: dir, Principals: []kafkabroker.Principal{
		{Name: kafkabroker.WriterPrincipal, Produce: []string{topicSecCreate, topicSecLive}},
		{Name: kafkabroker.ReaderPrincipal, Consume: []string{topicSecLive, topicSecProj}, Groups: groups,
			Produce: []string{dlqTopic(topicSecLive), dlqTopic(topicSecProj)}},
		{Name: benchPrincipal, Consume: []string{topicSecLive, topicSecRaw}, Produce: []string{topicSecRaw, topicSecProj}},
	}}})
	if err != nil {
		return fmt.Errorf("start kfake (secured): %w", err)
	}
	s.secured = &securedKafka{broker: broker, dir: dir}
	if err := broker.CreateTopics(ctx, partitions, topicSecCreate, topicSecLive, topicSecRaw, topicSecProj,
		dlqTopic(topicSecLive), dlqTopic(topicSecProj)); err != nil {
		return fmt.Errorf("create secured topics: %w", err)
	}
	cfg, err := broker.ClientConfig(benchPrincipal)
	if err != nil {
		return err
	}
	cfg.ClientID = benchClientID
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("benchrun's secured kafka config: %w", err)
	}
	s.secured.side = kafkaSide{addr: broker.Addr(), cfg: cfg}
	return nil
}

// env returns the KAFKA_* settings with which a service connects to the
// secured broker as principal: TLS trusting the broker's CA, SCRAM-SHA-512
// with the password in a 0600 file, and no topic creation.
func (k *securedKafka) env(principal string) ([]string, error) {
	user, pass, err := k.broker.Credentials(principal)
	if err != nil {
		return nil, err
	}
	passFile := filepath.Join(k.dir, principal+".password")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write password file: %w", err)
	}
	return []string{
		kafkakit.BrokersVar + "=" + k.broker.Addr(),
		kafkakit.TLSEnabledVar + "=true",
		kafkakit.TLSCAFileVar + "=" + k.broker.CAFile(),
		kafkakit.SASLMechanismVar + "=" + string(kafkabroker.Mechanism),
		kafkakit.SASLUsernameVar + "=" + user,
		kafkakit.SASLPasswordFileVar + "=" + passFile,
		"KAFKA_CREATE_TOPICS=false",
	}, nil
}
