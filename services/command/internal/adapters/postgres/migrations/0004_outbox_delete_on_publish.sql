-- The relay deletes the rows it published, in the statement that used to
-- stamp published_at: a DELETE only marks the row version dead, where the
-- stamp wrote a whole new version of the row and an entry in each of its
-- indexes (the stamp was most of the relay's cost per row). The history of
-- what was published is the event log, compania_eventos, which keeps every
-- event. States of a row now:
--   unpublished  parked_at IS NULL      (the relay claims it)
--   parked       parked_at IS NOT NULL  (waits for an operator; the
--                company's later rows wait behind it)
-- A published or discarded row is gone. The relay claims in primary-key
-- order, so the partial index of unpublished rows is no longer needed.
--
-- Upgrading: stop the writers of the previous version before this
-- migration runs; their relay and pruner use the columns dropped here.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_unpublished_idx;
DROP INDEX outbox_published_at_idx;
DROP INDEX outbox_parked_idx;
ALTER TABLE outbox DROP COLUMN published_at, DROP COLUMN discarded_at;
CREATE INDEX outbox_parked_idx ON outbox (key, id) WHERE parked_at IS NOT NULL;
