package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/propalpes/companias/libs/contracts"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// get fetches u from the running API with no credentials and returns the
// status, Content-Type and body.
func get(t *testing.T, e *env, u string) (int, string, []byte) {
	t.Helper()
	res, err := e.srv.Client().Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), b
}

// payloadRef matches the relative $refs of the AsyncAPI document's payloads.
var payloadRef = regexp.MustCompile(`\$ref: '([^'#]+\.json)'`)

// TestContractServedToGenerateAConsumer does what a generator would with
// only the base URL of a running service (authentication on, no token):
// fetch /asyncapi.yaml, resolve its payload $refs against that URL, and
// compile each event schema with only what the service serves, so every
// $ref inside the schemas resolves against the service too.
func TestContractServedToGenerateAConsumer(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	base, err := url.Parse(e.srv.URL + "/asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	status, ctype, doc := get(t, e, base.String())
	orig, _ := fs.ReadFile(contracts.Documents(), contracts.AsyncAPIPath)
	if status != http.StatusOK || ctype != "application/yaml" || !bytes.Equal(doc, orig) {
		t.Fatalf("GET /asyncapi.yaml = %d %q, %d bytes; want 200 application/yaml, the contract's %d bytes", status, ctype, len(doc), len(orig))
	}

	refs := map[string]bool{}
	for _, m := range payloadRef.FindAllSubmatch(doc, -1) {
		refs[string(m[1])] = true
	}
	if len(refs) < len(companiaevent.Names()) {
		t.Fatalf("the served document references %d schema files, want one per event (%d)", len(refs), len(companiaevent.Names()))
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(servedLoader{t: t, e: e})
	for ref := range refs {
		u, err := base.Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Compile(u.String()); err != nil {
			t.Errorf("compile %s from the service: %v", u, err)
		}
	}
	for _, n := range companiaevent.Names() {
		u, _ := base.Parse(contracts.SchemaDir + "/" + string(n) + ".v1.json")
		if !refs[contracts.SchemaDir+"/"+string(n)+".v1.json"] {
			t.Errorf("the served document does not reference %s", u)
		}
		r := e.do(req{method: "GET", path: u.Path})
		want(t, r, http.StatusOK)
		if r.str("$id") != companiaevent.SchemaID(n) {
			t.Errorf("GET %s: $id = %q, want the events' ce_dataschema %q", u.Path, r.str("$id"), companiaevent.SchemaID(n))
		}
	}
}

// servedLoader loads a schema from the running service, as a generator
// would. A schema's $ref to a sibling ("compania.v1.json") resolves against
// its $id, under companiaevent.SchemaBaseURI, which names the schemas but
// is not served: the consumer maps that base to the service's
// /companiaevent/schema/, as this loader does. Any other URL is an error.
type servedLoader struct {
	t *testing.T
	e *env
}

func (l servedLoader) Load(u string) (any, error) {
	if rest, ok := strings.CutPrefix(u, companiaevent.SchemaBaseURI); ok {
		u = l.e.srv.URL + "/" + contracts.SchemaDir + "/" + rest
	}
	if !strings.HasPrefix(u, l.e.srv.URL+"/") {
		return nil, fmt.Errorf("%s is neither served nor under the schemas' base URI", u)
	}
	res, err := l.e.srv.Client().Get(u)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/schema+json" {
		return nil, fmt.Errorf("GET %s = %d %s", u, res.StatusCode, res.Header.Get("Content-Type"))
	}
	return jsonschema.UnmarshalJSON(res.Body)
}

func TestContractSchemaNotFound(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t)
	for _, p := range []string{"/companiaevent/schema/CompaniaBorrada.v1.json", "/companiaevent/schema/..", "/companiaevent/schema/%2E%2E",
		"/companiaevent/schema/..%2Fschema.go", "/companiaevent/schema/compania.v1.json%00"} {
		r := e.do(req{method: "GET", path: p})
		want(t, r, http.StatusNotFound)
		// A name the route takes but no schema has is not_found; a path the
		// router does not route at all (an escaped slash) is route_not_found.
		if c := r.str("code"); c != "not_found" && c != "route_not_found" {
			t.Errorf("GET %s: code = %q, want not_found or route_not_found", p, c)
		}
	}
}
