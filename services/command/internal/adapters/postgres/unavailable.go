package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// unavailable returns err marked apperr.Unavailable when it means that
// PostgreSQL cannot serve right now, so that the HTTP port answers 503
// ("retrying later may help", as its OpenAPI document promises) instead of
// 500, and the Kafka intake keeps retrying; any other err is returned as is.
func unavailable(err error) error {
	if err == nil || !isUnavailable(err) {
		return err
	}
	return &apperr.Error{Kind: apperr.Unavailable, Code: "database_unavailable",
		Message: "the database is unavailable; retry later", Err: err}
}

// isUnavailable reports whether err is an outage of the server rather than
// a fault of the request or of the configuration: no connection could be
// made (refused, unreachable, timed out) or the server answered that it has
// no connection slot left (53300, also per role or database), is starting
// or shutting down (57P01, 57P02, 57P03) or lost the connection (class 08).
// A server error about authentication or a missing database is not.
func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "53300", "57P01", "57P02", "57P03":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr)
}
