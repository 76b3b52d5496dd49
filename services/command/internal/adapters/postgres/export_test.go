package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RunInTx exposes runInTx to the external tests.
func RunInTx(ctx context.Context, pool *pgxpool.Pool, first func(*pgx.Batch), fn func(pgx.Tx) error) error {
	return runInTx(ctx, pool, first, fn)
}

// DecodeHeadersPlain and DecodeHeadersJSON expose the two readers of
// DecodeHeaders, to check that they agree.
var (
	DecodeHeadersPlain = decodeHeadersPlain
	DecodeHeadersJSON  = decodeHeadersJSON
)

// EncodeHeadersPlain and EncodeHeadersJSON expose the two writers of
// EncodeHeaders, to check that they agree.
var (
	EncodeHeadersPlain = encodeHeadersPlain
	EncodeHeadersJSON  = encodeHeadersJSON
)

// MigrationCount is the number of embedded migrations.
func MigrationCount() int {
	ms, err := loadMigrations()
	if err != nil {
		panic(err)
	}
	return len(ms)
}
