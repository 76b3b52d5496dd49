-- Companies: the current state of each Compania aggregate.
CREATE TABLE companias (
    id                  uuid        PRIMARY KEY,
    nombre              text        NOT NULL CHECK (char_length(nombre) BETWEEN 1 AND 200),
    email               text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    identificacion      text        NOT NULL CHECK (identificacion ~ '^[A-Za-z0-9-]{1,40}$'),
    estado              text        NOT NULL CHECK (estado IN ('PENDIENTE', 'APROBADA', 'RECHAZADA')),
    -- Set exactly when the company is RECHAZADA (1–1000 characters, as the domain requires).
    motivo_rechazo      text        CHECK (char_length(motivo_rechazo) BETWEEN 1 AND 1000),
    fecha_creacion      timestamptz NOT NULL,
    fecha_actualizacion timestamptz NOT NULL,
    version             bigint      NOT NULL CHECK (version >= 1),
    CHECK ((estado = 'RECHAZADA') = (motivo_rechazo IS NOT NULL))
);

-- (nombre, identificacion) is unique case-insensitively.
CREATE UNIQUE INDEX companias_nombre_identificacion_key
    ON companias (lower(nombre), lower(identificacion));

-- The append-only log of every domain event, one row per (company, version).
CREATE TABLE compania_eventos (
    id           uuid        PRIMARY KEY,
    compania_id  uuid        NOT NULL REFERENCES companias (id),
    version      bigint      NOT NULL,
    nombre       text        NOT NULL,
    data         jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (compania_id, version)
);

-- Refuse UPDATE and DELETE on the event log.
CREATE FUNCTION compania_eventos_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'compania_eventos is append-only';
END $$;
CREATE TRIGGER compania_eventos_append_only
    BEFORE UPDATE OR DELETE ON compania_eventos
    FOR EACH ROW EXECUTE FUNCTION compania_eventos_append_only();

-- The transactional outbox: one Kafka record per committed event. The relay
-- publishes unpublished rows in id order and stamps published_at; a pruner
-- deletes published rows after a retention period. headers is a JSON array of
-- {"key": k, "value": text} or {"key": k, "b64": base64} objects, in record
-- order (see postgres.EncodeHeaders / DecodeHeaders). After writing
-- transactions commit, the writer sends pg_notify('companias_outbox', '') (one
-- may cover several) so that a listening relay wakes up.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    key          bytea       NOT NULL,
    value        bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Idempotency records of commands (HTTP Idempotency-Key, Kafka command id),
-- written in the same transaction as the command they record.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    compania_id  uuid        NOT NULL,
    result       jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
