package httpapi

import (
	"errors"
	"io/fs"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/contracts"
	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// The Kafka contract is served read-only and without authentication, like
// /openapi.json, so that a team outside the repository can generate a
// consumer from a running service: GET /asyncapi.yaml, and GET
// /companiaevent/schema/{file} for the JSON Schemas it references. The
// paths mirror libs/contracts, so the document's relative $refs (and the
// schemas' refs to each other) resolve against the service as on disk.
const (
	asyncAPIMediaType = "application/yaml"        // RFC 9512
	schemaMediaType   = "application/schema+json" // JSON Schema's media type
)

// routeContract registers the contract routes on r; fail answers an error
// with its problem (a NotFound for a name that is not a schema of the
// contract, ".." included). It depends on nothing else of the router.
func routeContract(r gin.IRoutes, fail func(*gin.Context, error)) {
	r.GET("/"+contracts.AsyncAPIPath, func(c *gin.Context) {
		b, err := fs.ReadFile(contracts.Documents(), contracts.AsyncAPIPath)
		if err != nil { // the file is embedded: a build error
			fail(c, err)
			return
		}
		c.Data(http.StatusOK, asyncAPIMediaType, b)
	})
	r.GET("/"+contracts.SchemaDir+"/:file", func(c *gin.Context) {
		b, err := fs.ReadFile(contracts.Documents(), contracts.SchemaDir+"/"+c.Param("file"))
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid):
			fail(c, &apperr.Error{Kind: apperr.NotFound, Code: "not_found", Message: "no schema at " + c.Request.URL.EscapedPath()})
		case err != nil:
			fail(c, err)
		default:
			c.Data(http.StatusOK, schemaMediaType, b)
		}
	})
}
