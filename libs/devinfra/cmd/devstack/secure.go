package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/propalpes/companias/libs/devinfra/kafkabroker"
	"github.com/propalpes/companias/libs/kafkakit"
)

// The services devstack runs, as keys of their Kafka settings.
const (
	commandService = "command"
	queryService   = "query"
)

// The topics of the system and the consumer groups the services use (their
// configuration defaults, set explicitly in -secure mode so that they match
// the ACLs).
const (
	eventsTopic   = "topic-eventos-compania"
	commandsTopic = "topic-comando-crear-compania"
	dlqSuffix     = ".dlq"
	commandsGroup = "companias-command"
	queryGroup    = "companias-query"
	externalGroup = "companias-external"
)

// topics are created at start, in both modes.
var topics = []string{eventsTopic, eventsTopic + dlqSuffix, commandsTopic, commandsTopic + dlqSuffix}

// serviceTopics are what the -secure principals are granted.
var serviceTopics = kafkabroker.ServiceTopics{
	Events:        eventsTopic,
	EventsDLQ:     eventsTopic + dlqSuffix,
	EventsGroup:   queryGroup,
	Commands:      commandsTopic,
	CommandsDLQ:   commandsTopic + dlqSuffix,
	CommandsGroup: commandsGroup,
	ExternalGroup: externalGroup,
}

// The files of -secure mode, relative to -data.
const (
	secureDirName  = "kafka-secure"            // CA certificate and password files
	clientPropName = "kafka-client.properties" // the external principal's librdkafka settings
)

// secureStack is the secured broker of -secure mode and what the services
// and the developer need to reach it.
type secureStack struct {
	broker *kafkabroker.Broker
	// env holds each service's KAFKA_* settings, by commandService and
	// queryService.
	env map[string][]string
	// clientProps is the external principal's client file, as the developer
	// names it (under -data).
	clientProps string
}

// startSecureKafka starts the secured broker of -secure mode on o.kafkaAddr,
// creates the topics as the admin principal (event topic kept forever, the
// dead-letter topics for o.dlqRetention), writes each service's password to
// a 0600 file and the external principal's client file, and returns the
// services' settings. The broker keeps nothing on disk (a new CA and new
// passwords each start would not match a persisted user store). The caller
// closes the broker.
func startSecureKafka(ctx context.Context, o options) (secureStack, error) {
	dir, err := filepath.Abs(filepath.Join(o.dataDir, secureDirName))
	if err != nil {
		return secureStack{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return secureStack{}, fmt.Errorf("create %s: %w", dir, err)
	}
	broker, err := kafkabroker.Start(kafkabroker.Options{Addr: o.kafkaAddr, Security: &kafkabroker.Security{
		Dir:        dir,
		Principals: kafkabroker.ServicePrincipals(serviceTopics),
	}})
	if err != nil {
		return secureStack{}, fmt.Errorf("start embedded Kafka broker (secured): %w", err)
	}
	s, err := secureSetup(ctx, o, broker, dir)
	if err != nil {
		broker.Close()
		return secureStack{}, err
	}
	return s, nil
}

// secureSetup does the work of startSecureKafka once the broker runs.
func secureSetup(ctx context.Context, o options, broker *kafkabroker.Broker, dir string) (secureStack, error) {
	if err := broker.CreateTopicsWithConfigs(ctx, o.partitions, map[string]string{"retention.ms": "-1"}, eventsTopic); err != nil {
		return secureStack{}, fmt.Errorf("create topics: %w", err)
	}
	if err := broker.CreateTopics(ctx, o.partitions, commandsTopic); err != nil {
		return secureStack{}, fmt.Errorf("create topics: %w", err)
	}
	dlqRetention := map[string]string{"retention.ms": strconv.FormatInt(o.dlqRetention.Milliseconds(), 10)}
	if err := broker.CreateTopicsWithConfigs(ctx, o.partitions, dlqRetention, eventsTopic+dlqSuffix, commandsTopic+dlqSuffix); err != nil {
		return secureStack{}, fmt.Errorf("create topics: %w", err)
	}

	s := secureStack{broker: broker, env: map[string][]string{}, clientProps: filepath.Join(o.dataDir, clientPropName)}
	for _, svc := range []struct {
		name, principal string
		extra           []string
	}{
		{commandService, kafkabroker.WriterPrincipal, []string{"KAFKA_COMMANDS_GROUP_ID=" + commandsGroup}},
		{queryService, kafkabroker.ReaderPrincipal, []string{"KAFKA_GROUP_ID=" + queryGroup}},
	} {
		user, pass, err := broker.Credentials(svc.principal)
		if err != nil {
			return secureStack{}, err
		}
		passFile := filepath.Join(dir, svc.principal+".password")
		if err := writeSecret(passFile, pass); err != nil {
			return secureStack{}, err
		}
		s.env[svc.name] = append([]string{
			kafkakit.BrokersVar + "=" + broker.Addr(),
			kafkakit.TLSEnabledVar + "=true",
			kafkakit.TLSCAFileVar + "=" + broker.CAFile(),
			kafkakit.SASLMechanismVar + "=" + string(kafkabroker.Mechanism),
			kafkakit.SASLUsernameVar + "=" + user,
			kafkakit.SASLPasswordFileVar + "=" + passFile,
			// The admin made the topics; the services may not create any.
			"KAFKA_CREATE_TOPICS=false",
		}, svc.extra...)
	}
	props, err := filepath.Abs(s.clientProps)
	if err == nil {
		err = broker.WriteClientProperties(props, kafkabroker.ExternalPrincipal)
	}
	if err != nil {
		return secureStack{}, fmt.Errorf("write %s: %w", s.clientProps, err)
	}
	return s, nil
}

// writeSecret writes secret to path with mode 0600, replacing any earlier
// file whole (a temporary file renamed over it, so a wider mode of an old
// file is not kept and no reader sees half a password).
func writeSecret(path, secret string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.WriteString(secret + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// banner describes the secured broker for the start-up message ("" when
// the broker is not secured).
func (s secureStack) banner() string {
	if s.broker == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Kafka security        TLS (CA %s), SASL %s, ACLs; topics made by %q\n", s.broker.CAFile(), kafkabroker.Mechanism, kafkabroker.AdminPrincipal)
	fmt.Fprintf(&b, "  %-20s consumes %s (group %s), produces %s and %s\n", kafkabroker.WriterPrincipal, commandsTopic, commandsGroup, eventsTopic, commandsTopic+dlqSuffix)
	fmt.Fprintf(&b, "  %-20s consumes %s (group %s), produces %s\n", kafkabroker.ReaderPrincipal, eventsTopic, queryGroup, eventsTopic+dlqSuffix)
	fmt.Fprintf(&b, "  %-20s consumes %s (group %s)\n", kafkabroker.ExternalPrincipal, eventsTopic, externalGroup)
	fmt.Fprintf(&b, "External client file  %s (0600, holds the %q password; new at each start)\n", s.clientProps, kafkabroker.ExternalPrincipal)
	fmt.Fprintf(&b, "  kcat -F %s -C -t %s -e\n", s.clientProps, eventsTopic)
	return b.String()
}
