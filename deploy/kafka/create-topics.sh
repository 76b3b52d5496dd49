#!/bin/sh
# create-topics.sh creates the topics listed in topics.txt, idempotently: a
# missing topic is created with its partitions and configs; an existing one
# keeps its partitions and gets its configs (re)applied. It exits non-zero on
# the first failure. It runs in the apache/kafka image (compose service
# kafka-init) or anywhere the Kafka CLI is installed:
#
#   KAFKA_BOOTSTRAP=broker:9092 KAFKA_BIN=/opt/kafka/bin REPLICATION_FACTOR=3 \
#     sh deploy/kafka/create-topics.sh
#
# On a secured cluster, KAFKA_COMMAND_CONFIG names a Kafka client properties
# file (security.protocol=SASL_SSL, sasl.mechanism=SCRAM-SHA-512,
# sasl.jaas.config=..., ssl.truststore.*) of an admin principal; it is passed
# to every tool as --command-config.
set -eu

KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
TOPICS_FILE="${TOPICS_FILE:-$(dirname "$0")/topics.txt}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-1}"
KAFKA_COMMAND_CONFIG="${KAFKA_COMMAND_CONFIG:-}"

# kafka runs a Kafka CLI tool against the cluster, with the admin client
# settings when KAFKA_COMMAND_CONFIG is set.
kafka() {
	tool="$1"
	shift
	if [ -n "$KAFKA_COMMAND_CONFIG" ]; then
		"$KAFKA_BIN/$tool" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" "$@"
	else
		"$KAFKA_BIN/$tool" --bootstrap-server "$KAFKA_BOOTSTRAP" "$@"
	fi
}

grep -v '^[[:space:]]*#' "$TOPICS_FILE" | while read -r name partitions configs; do
	[ -n "$name" ] || continue
	set --
	if [ -n "$configs" ]; then
		for c in $(echo "$configs" | tr ',' ' '); do
			set -- "$@" --config "$c"
		done
	fi
	echo "topic $name: partitions=$partitions replication=$REPLICATION_FACTOR configs=${configs:-<broker defaults>}"
	kafka kafka-topics.sh --create --if-not-exists \
		--topic "$name" --partitions "$partitions" --replication-factor "$REPLICATION_FACTOR" "$@"
	if [ -n "$configs" ]; then
		kafka kafka-configs.sh --alter \
			--entity-type topics --entity-name "$name" --add-config "$configs"
	fi
done

kafka kafka-topics.sh --describe --exclude-internal
