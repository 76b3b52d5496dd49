package topics

import (
	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// The environment variables with which a program decides whether and how
// it creates its topics at start. Every program that creates topics uses
// these names, defaults and ranges.
const (
	// CreateVar makes the program create its missing topics at start:
	// true or false (default true). Deployments whose principals may not
	// create topics set it false and provision the topics beforehand.
	CreateVar = "KAFKA_CREATE_TOPICS"
	// ReplicationFactorVar is the replication factor of the topics the
	// program creates: 0 to MaxReplicationFactor (default 0, which means
	// min(MaxAutoReplicationFactor, brokers in the cluster)).
	ReplicationFactorVar = "KAFKA_REPLICATION_FACTOR"
)

// MaxReplicationFactor is the largest replication factor ReplicationFactorVar accepts.
const MaxReplicationFactor = 32

// Settings is how a program creates its topics at start.
type Settings struct {
	// Create makes the program create its missing topics (CreateVar).
	Create bool
	// ReplicationFactor is Topic.ReplicationFactor of the topics it creates
	// (ReplicationFactorVar); 0 means min(MaxAutoReplicationFactor, brokers).
	ReplicationFactor int
}

// Variables returns the variables LoadSettings reads, each with its
// default. A program merges them into its envconfig defaults (LoadSettings
// needs them there) and its settings table.
func Variables() map[string]string {
	return map[string]string{CreateVar: "true", ReplicationFactorVar: "0"}
}

// WithKafkaVariables adds to own, and returns it, every variable a program
// reads through kafkakit.Load, kafkakit.LoadMembership and LoadSettings,
// with its default, except those own already sets (such as the program's
// own KAFKA_BROKERS default).
func WithKafkaVariables(own map[string]string) map[string]string {
	for _, vars := range []map[string]string{kafkakit.Variables(), kafkakit.MembershipVariables(), Variables()} {
		for k, v := range vars {
			if _, ok := own[k]; !ok {
				own[k] = v
			}
		}
	}
	return own
}

// LoadSettings reads CreateVar and ReplicationFactorVar through p, whose
// defaults must hold Variables(), and records in p a problem naming the
// variable for a value that is not a boolean, or not an integer in
// [0, MaxReplicationFactor]; such a value yields its default.
func LoadSettings(p *envconfig.Parser) Settings {
	return Settings{
		Create:            p.Bool(CreateVar),
		ReplicationFactor: p.IntRange(ReplicationFactorVar, 0, MaxReplicationFactor),
	}
}
