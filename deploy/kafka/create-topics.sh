#!/bin/sh
# create-topics.sh creates the topics listed in topics.txt, idempotently: a
# missing topic is created with its partitions and configs; an existing one
# keeps its partitions and gets its configs (re)applied. It exits non-zero on
# the first failure. It runs in the apache/kafka image (compose service
# kafka-init) or anywhere the Kafka CLI is installed:
#
#   KAFKA_BOOTSTRAP=broker:9092 KAFKA_BIN=/opt/kafka/bin REPLICATION_FACTOR=3 \
#     sh deploy/kafka/create-topics.sh
set -eu

KAFKA_BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
TOPICS_FILE="${TOPICS_FILE:-$(dirname "$0")/topics.txt}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-1}"

grep -v '^[[:space:]]*#' "$TOPICS_FILE" | while read -r name partitions configs; do
	[ -n "$name" ] || continue
	set --
	if [ -n "$configs" ]; then
		for c in $(echo "$configs" | tr ',' ' '); do
			set -- "$@" --config "$c"
		done
	fi
	echo "topic $name: partitions=$partitions replication=$REPLICATION_FACTOR configs=${configs:-<broker defaults>}"
	"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --create --if-not-exists \
		--topic "$name" --partitions "$partitions" --replication-factor "$REPLICATION_FACTOR" "$@"
	if [ -n "$configs" ]; then
		"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --alter \
			--entity-type topics --entity-name "$name" --add-config "$configs"
	fi
done

"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --describe --exclude-internal
