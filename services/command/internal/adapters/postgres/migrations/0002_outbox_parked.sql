-- Parked outbox rows: a row Kafka refuses permanently (too large, invalid,
-- unauthorized topic…) or the relay cannot read is parked instead of being
-- retried forever. States of a row:
--   unpublished  published_at IS NULL AND parked_at IS NULL      (the relay claims it)
--   parked       published_at IS NULL AND parked_at IS NOT NULL  (waits for an operator;
--                the company's later rows wait behind it)
--   published    published_at IS NOT NULL; discarded too if discarded_at IS NOT NULL
--                (an operator gave up on it: it was never published, the pruner deletes it)
ALTER TABLE outbox ADD COLUMN parked_at timestamptz, ADD COLUMN park_reason text,
    ADD COLUMN discarded_at timestamptz;
CREATE INDEX outbox_parked_idx ON outbox (key, id) WHERE parked_at IS NOT NULL AND published_at IS NULL;
