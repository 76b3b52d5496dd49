package httpkit

import (
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
)

// Route is one registered (method, path) pair, with the path in OpenAPI form
// ("/v1/companias/{id}").
type Route struct {
	Method string
	Path   string
}

// Routes lists the routes registered in e, sorted by path then method, with
// gin's ":id" and "*path" segments in OpenAPI's "{id}" form; a port's tests
// compare them with its OpenAPI document.
func Routes(e *gin.Engine) []Route {
	var out []Route
	for _, r := range e.Routes() {
		out = append(out, Route{Method: r.Method, Path: openAPIPath(r.Path)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// openAPIPath turns gin's ":id" segments into OpenAPI's "{id}".
func openAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}
