package postgres_test

import (
	"testing"

	"github.com/propalpes/companias/libs/devinfra/pgtest"
	"github.com/propalpes/companias/services/command/internal/adapters/postgres"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// The schema's CHECK on companias.estado admits exactly the domain's
// estados: a new Estado fails here until a migration widens the CHECK.
func TestIntegrationSchemaAdmitsEveryEstado(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := open(t, pgtest.NewDatabase(t))
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	const insert = `INSERT INTO companias
		(id, nombre, email, identificacion, estado, motivo_rechazo, fecha_creacion, fecha_actualizacion, version)
		VALUES (gen_random_uuid(), $1, 'a@b.co', $1, $2, CASE WHEN $2 = 'RECHAZADA' THEN 'motivo' END, now(), now(), 1)`
	for i, e := range compania.Estados() {
		if _, err := pool.Exec(ctx, insert, "E-"+string(rune('A'+i)), e.String()); err != nil {
			t.Errorf("estado %s: the schema refuses it: %v", e, err)
		}
	}
	if _, err := pool.Exec(ctx, insert, "E-Z", "SUSPENDIDA"); err == nil {
		t.Error("an estado the domain lacks was stored")
	}
}
