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

// routeContract registers the contract routes on r.
func (h *handlers) routeContract(r gin.IRoutes) {
	r.GET("/"+contracts.AsyncAPIPath, h.asyncAPI)
	r.GET("/"+contracts.SchemaDir+"/:file", h.contractSchema)
}

func (h *handlers) asyncAPI(c *gin.Context) {
	b, err := fs.ReadFile(contracts.Documents(), contracts.AsyncAPIPath)
	if err != nil { // the file is embedded: a build error
		h.fail(c, err)
		return
	}
	c.Data(http.StatusOK, asyncAPIMediaType, b)
}

// contractSchema serves one schema file; anything else under the
// directory, ".." included, is a 404.
func (h *handlers) contractSchema(c *gin.Context) {
	b, err := fs.ReadFile(contracts.Documents(), contracts.SchemaDir+"/"+c.Param("file"))
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid):
		h.fail(c, &apperr.Error{Kind: apperr.NotFound, Code: "not_found", Message: "no schema at " + c.Request.URL.EscapedPath()})
	case err != nil:
		h.fail(c, err)
	default:
		c.Data(http.StatusOK, schemaMediaType, b)
	}
}
