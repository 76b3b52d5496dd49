// Package consumer is the projection worker of the query service: a Kafka
// consumer-group member that reads the companias integration events, folds
// them into views (package projection) and writes them to the view store,
// committing offsets only after the store accepted the write.
//
// # Loop
//
// For each group generation the consumer reads every assigned partition and,
// repeatedly: takes what is available, up to Config.BatchSize messages or
// Config.Linger after the first one; decodes each message and validates it
// against the contract's JSON Schema; copies poison (malformed, unsupported
// major version, schema failure) to the dead-letter topic with the
// deadletter headers; skips and counts unknown event types of the known
// major version; collapses the events per company (projection.Collapse);
// writes them with one Writer call; and only then commits, per partition,
// the offset after the last message of the batch. Store and dead-letter
// failures are retried with capped exponential backoff until they succeed
// or the generation ends: a message is never skipped and an offset is never
// committed past a message that was not processed. A store write that has
// not returned within Config.WriteTimeout is cancelled and counts as a
// failure (ErrWriteTimeout), so that a store that hangs cannot freeze the
// partitions silently: the batch is retried, its offsets stay uncommitted.
//
// # Group membership
//
// The membership is libs/kafkakit/groupconsumer's, shared with the command
// intake: kafka-go's ConsumerGroup with one partition reader per assigned
// partition, commits carrying the generation that fetched the messages, the
// fetch buffers dropped when a generation ends, a stale-offset guard, and
// leaving the group within Config.CloseTimeout (see that package for why
// kafka-go's group Reader is not used). A panic while processing a batch
// re-runs the batch one message at a time; the message that panics is
// dead-lettered with reason panic and the others are processed.
//
// Delivery is at least once: after a rebalance or a crash, messages after
// the last commit are processed again, which the version-guarded store
// makes harmless.
package consumer
