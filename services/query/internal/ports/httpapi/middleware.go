package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
)

// HeaderRequestID carries the request id, in and out (httpkit's header).
const HeaderRequestID = httpkit.HeaderRequestID

// badRequest answers 400 listing every invalid query or path parameter.
func (a *API) badRequest(c *gin.Context, fields []apperr.FieldError) {
	a.kit.Fail(c, &httpkit.Error{Status: http.StatusBadRequest, Code: "invalid_parameters",
		Detail: "the request has invalid parameters", Errors: problem.ParameterViolations(fields)})
}
