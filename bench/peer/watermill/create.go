package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// schema is the writer's table set for the create path (companias and
// its append-only event log, as in services/command's 0001_init.sql); the
// outbox is Watermill's own table, which the SQL subscriber creates.
const schema = `
CREATE TABLE IF NOT EXISTS companias (
    id                  uuid        PRIMARY KEY,
    nombre              text        NOT NULL CHECK (char_length(nombre) BETWEEN 1 AND 200),
    email               text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    identificacion      text        NOT NULL CHECK (identificacion ~ '^[A-Za-z0-9-]{1,40}$'),
    estado              text        NOT NULL CHECK (estado IN ('PENDIENTE', 'APROBADA', 'RECHAZADA')),
    motivo_rechazo      text        CHECK (char_length(motivo_rechazo) BETWEEN 1 AND 1000),
    fecha_creacion      timestamptz NOT NULL,
    fecha_actualizacion timestamptz NOT NULL,
    version             bigint      NOT NULL CHECK (version >= 1),
    CHECK ((estado = 'RECHAZADA') = (motivo_rechazo IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS companias_nombre_identificacion_key
    ON companias (lower(nombre), lower(identificacion));
CREATE TABLE IF NOT EXISTS compania_eventos (
    id           uuid        PRIMARY KEY,
    compania_id  uuid        NOT NULL REFERENCES companias (id),
    version      bigint      NOT NULL,
    nombre       text        NOT NULL,
    data         jsonb       NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (compania_id, version)
);
CREATE OR REPLACE FUNCTION compania_eventos_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'compania_eventos is append-only';
END $$;
CREATE OR REPLACE TRIGGER compania_eventos_append_only
    BEFORE UPDATE OR DELETE ON compania_eventos
    FOR EACH ROW EXECUTE FUNCTION compania_eventos_append_only();
`

// partitionKey is the message metadata the Kafka marshaler takes the
// record key from (the company id).
const partitionKey = "partition_key"

const eventType = "CompaniaCreada"

type handlers struct {
	db     *sql.DB
	schema wsql.SchemaAdapter
	topic  string
	log    watermill.LoggerAdapter
}

type crearRequest struct {
	Nombre         string `json:"nombre"`
	Email          string `json:"email"`
	Identificacion string `json:"identificacion"`
}

// compania is the company as stored, answered and carried by its event.
type compania struct {
	ID                 string    `json:"id"`
	Nombre             string    `json:"nombre"`
	Email              string    `json:"email"`
	Identificacion     string    `json:"identificacion"`
	Estado             string    `json:"estado"`
	FechaCreacion      time.Time `json:"fecha_creacion"`
	FechaActualizacion time.Time `json:"fecha_actualizacion"`
	Version            int64     `json:"version"`
}

// evento is the event's payload: the full company after the change.
type evento struct {
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	Compania   compania  `json:"compania"`
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,40}$`)

func (r crearRequest) validate() map[string]string {
	bad := map[string]string{}
	if n := utf8.RuneCountInString(strings.TrimSpace(r.Nombre)); n < 1 || n > 200 {
		bad["nombre"] = "1 to 200 characters"
	}
	if n := utf8.RuneCountInString(r.Email); n < 3 || n > 254 || !strings.Contains(r.Email, "@") {
		bad["email"] = "an e-mail address"
	}
	if !identRE.MatchString(r.Identificacion) {
		bad["identificacion"] = "1 to 40 letters, digits or dashes"
	}
	return bad
}

// crear handles POST /v1/companias: the company row, its event-log row
// and the outbox message in one transaction, then 201 with the company.
func (h *handlers) crear(c *gin.Context) {
	var req crearRequest
	if err := c.ShouldBindJSON(&req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if bad := req.validate(); len(bad) > 0 {
		c.JSON(http.StatusUnprocessableEntity, gin.H{"error": "invalid fields", "fields": bad})
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
		return
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	co := compania{ID: id.String(), Nombre: strings.TrimSpace(req.Nombre), Email: req.Email, Identificacion: req.Identificacion,
		Estado: "PENDIENTE", FechaCreacion: now, FechaActualizacion: now, Version: 1}
	ev := evento{EventID: uuid.NewString(), Type: eventType, OccurredAt: now, Compania: co}
	payload, err := json.Marshal(ev)
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
		return
	}

	err = h.create(c.Request.Context(), co, ev, payload)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		c.JSON(http.StatusConflict, gin.H{"error": "a company with this nombre and identificacion exists"})
		return
	case err != nil:
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return
	}
	c.Header("Location", "/v1/companias/"+co.ID)
	c.Header("ETag", `"`+strconv.FormatInt(co.Version, 10)+`"`)
	c.JSON(http.StatusCreated, co)
}

// create writes the company row, its event-log row and the outbox message
// in one database/sql transaction (watermill-sql v3 takes *sql.Tx).
func (h *handlers) create(ctx context.Context, co compania, ev evento, payload []byte) (err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `INSERT INTO companias
            (id, nombre, email, identificacion, estado, fecha_creacion, fecha_actualizacion, version)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		co.ID, co.Nombre, co.Email, co.Identificacion, co.Estado, co.FechaCreacion, co.FechaActualizacion, co.Version); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO compania_eventos (id, compania_id, version, nombre, data, occurred_at)
            VALUES ($1, $2, $3, $4, $5, $6)`, ev.EventID, co.ID, co.Version, eventType, payload, ev.OccurredAt); err != nil {
		return err
	}
	// The outbox: Watermill's SQL publisher on this transaction, wrapped
	// by the Forwarder's publisher (it envelopes the message with its
	// destination topic into the forwarder's SQL topic).
	sqlPub, err := wsql.NewPublisher(tx, wsql.PublisherConfig{SchemaAdapter: h.schema}, h.log)
	if err != nil {
		return err
	}
	pub := forwarder.NewPublisher(sqlPub, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic})
	msg := message.NewMessage(ev.EventID, payload)
	msg.Metadata.Set(partitionKey, co.ID)
	msg.Metadata.Set("ce_type", "com.propalpes.companias."+eventType+".v1")
	msg.Metadata.Set("ce_subject", co.ID)
	msg.Metadata.Set("content-type", "application/json")
	if err := pub.Publish(h.topic, msg); err != nil {
		return err
	}
	return tx.Commit()
}
