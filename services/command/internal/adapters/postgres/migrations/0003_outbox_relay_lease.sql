-- The outbox relay's leadership: a lease with an epoch. A standby takes it
-- when it has expired (epoch + 1); the holder renews it well before it
-- expires and stops publishing at once when a renewal finds it taken.
CREATE TABLE outbox_relay_lease (
    name       text        PRIMARY KEY,
    epoch      bigint      NOT NULL,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);

INSERT INTO outbox_relay_lease (name, epoch, holder, expires_at) VALUES ('outbox', 0, '', '-infinity');
