package check_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/propalpes/companias/libs/contracts"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// The meta-schemas, vendored (see testdata/metaschema/README.md): the
// tests never reach the network.
const (
	asyncAPIMetaSchema = "testdata/metaschema/asyncapi-3.0.0.json"
	openAPIMetaSchema  = "testdata/metaschema/openapi-3.1.json"
)

// schemaFormat2020 is the schemaFormat of the event payloads: their files
// are JSON Schema draft 2020-12, not AsyncAPI Schema Objects (draft 07).
const schemaFormat2020 = "application/schema+json;version=draft-2020-12"

// noNetwork is the compilers' loader: a $ref to a document that was not
// added as a resource is an error, never a download.
type noNetwork struct{}

func (noNetwork) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is not a vendored or contract document", url)
}

// readJSON reads the JSON document name of fsys as jsonschema wants it.
func readJSON(t *testing.T, fsys fs.FS, name string) any {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	return doc
}

// metaSchema compiles the vendored meta-schema in file.
func metaSchema(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	doc := readJSON(t, os.DirFS("."), file)
	c := jsonschema.NewCompiler()
	c.UseLoader(noNetwork{})
	url := "file:///" + filepath.ToSlash(file)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return s
}

// asyncAPI returns the AsyncAPI document parsed as YAML, in the shape
// encoding/json would give (map[string]any, []any, json.Number…).
func asyncAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := fs.ReadFile(contracts.Documents(), contracts.AsyncAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.UnmarshalWithOptions(b, &v, yaml.Strict()); err != nil {
		t.Fatalf("%s is not YAML: %v", contracts.AsyncAPIPath, err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s is not JSON-compatible YAML: %v", contracts.AsyncAPIPath, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("%s is not a YAML mapping", contracts.AsyncAPIPath)
	}
	return m
}

// at returns the member of doc at the slash-separated path, or nil.
func at(doc any, p string) any {
	for _, k := range strings.Split(p, "/") {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		doc = m[k]
	}
	return doc
}

// obj is at for a member that must be an object.
func obj(t *testing.T, doc any, p string) map[string]any {
	t.Helper()
	m, ok := at(doc, p).(map[string]any)
	if !ok {
		t.Fatalf("%s is not an object: %v", p, at(doc, p))
	}
	return m
}

// ref resolves a local reference "#/a/b" of doc.
func ref(t *testing.T, doc any, r any) map[string]any {
	t.Helper()
	m, ok := r.(map[string]any)
	if !ok {
		t.Fatalf("%v is not a reference", r)
	}
	s, _ := m["$ref"].(string)
	local, ok := strings.CutPrefix(s, "#/")
	if !ok {
		t.Fatalf("%q is not a local reference", s)
	}
	return obj(t, doc, local)
}

func TestAsyncAPIDocumentIsValidAsyncAPI3(t *testing.T) {
	t.Parallel()
	doc := asyncAPI(t)
	if err := metaSchema(t, asyncAPIMetaSchema).Validate(any(doc)); err != nil {
		t.Fatalf("%s does not satisfy the AsyncAPI 3.0.0 schema:\n%v", contracts.AsyncAPIPath, err)
	}
}

// eventSchemas compiles every schema of the contract with nothing else
// loaded, so that compiling is also resolving every $ref.
func eventSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.UseLoader(noNetwork{})
	c.AssertFormat()
	files, err := fs.Glob(contracts.Documents(), contracts.SchemaDir+"/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no schema in %s: %v", contracts.SchemaDir, err)
	}
	ids := map[string]string{}
	for _, f := range files {
		doc := readJSON(t, contracts.Documents(), f)
		id, _ := at(doc, "$id").(string)
		if want := companiaevent.SchemaBaseURI + path.Base(f); id != want {
			t.Errorf("%s: $id = %q, want %q", f, id, want)
		}
		if d, _ := at(doc, "$schema").(string); d != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %q, want draft 2020-12 (the schemaFormat the AsyncAPI document declares)", f, d)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ids[f] = id
	}
	out := map[string]*jsonschema.Schema{}
	for f, id := range ids {
		s, err := c.Compile(id)
		if err != nil {
			t.Errorf("compile %s: %v", f, err)
			continue
		}
		out[id] = s
	}
	return out
}

func TestEventSchemasCompileWithEveryRefResolved(t *testing.T) {
	t.Parallel()
	schemas := eventSchemas(t)
	embedded := companiaevent.Schemas()
	for id := range schemas {
		if _, ok := embedded[id]; !ok {
			t.Errorf("companiaevent.Schemas lacks %s", id)
		}
	}
	if len(embedded) != len(schemas) {
		t.Errorf("companiaevent.Schemas has %d schemas, the documents %d", len(embedded), len(schemas))
	}
	for _, n := range companiaevent.Names() {
		if schemas[companiaevent.SchemaID(n)] == nil {
			t.Errorf("event %s has no schema %s", n, companiaevent.SchemaID(n))
		}
	}
}

// TestEncodedEventsSatisfyTheirDataSchema checks ce_dataschema end to end:
// the value of every encoded event satisfies the schema the header names.
func TestEncodedEventsSatisfyTheirDataSchema(t *testing.T) {
	t.Parallel()
	schemas := eventSchemas(t)
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	motivo := "incompleta"
	for _, n := range companiaevent.Names() {
		c := companiaevent.Compania{ID: "0b7e2a5c-6c1e-4c2f-9f0e-2f4b8f7a1d11", Nombre: "ACME", Email: "a@acme.co",
			Identificacion: "9", Estado: companiaevent.EstadoPendiente, FechaCreacion: at, FechaActualizacion: at, Version: 2}
		d := companiaevent.Data{Compania: c}
		switch n {
		case companiaevent.CompaniaCreada:
			d.Compania.Version = 1
		case companiaevent.CompaniaActualizada:
			d.Campos = []string{"email"}
		case companiaevent.CompaniaAprobada:
			d.Compania.Estado = companiaevent.EstadoAprobada
		case companiaevent.CompaniaRechazada:
			d.Compania.Estado, d.Compania.MotivoRechazo = companiaevent.EstadoRechazada, &motivo
		default:
			t.Errorf("no sample of event %s: add one here", n)
			continue
		}
		m, err := companiaevent.Encode(companiaevent.Event{ID: "018f0000-0000-7000-8000-000000000001", Name: n, Time: at, Data: d})
		if err != nil {
			t.Fatal(err)
		}
		var id string
		for _, h := range m.Headers {
			if h.Key == companiaevent.HeaderDataSchema {
				id = string(h.Value)
			}
		}
		s := schemas[id]
		if s == nil {
			t.Errorf("%s: %s %q names no schema of the contract", n, companiaevent.HeaderDataSchema, id)
			continue
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.Value))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(inst); err != nil {
			t.Errorf("%s: the value does not satisfy %s: %v", n, id, err)
		}
	}
}

// TestAsyncAPIPayloadsDeclareSchemaFormat checks that every message says in
// which language its payload and headers are written, and that each event
// payload is its schema file, written in the language declared.
func TestAsyncAPIPayloadsDeclareSchemaFormat(t *testing.T) {
	t.Parallel()
	doc := asyncAPI(t)
	for name, m := range obj(t, doc, "components/messages") {
		for _, part := range []string{"payload", "headers"} {
			p, ok := at(m, part).(map[string]any)
			if !ok {
				continue
			}
			if f, _ := p["schemaFormat"].(string); f == "" || p["schema"] == nil {
				t.Errorf("message %s: %s is not a Multi Format Schema Object (schemaFormat and schema)", name, part)
			}
		}
		if at(m, "payload") == nil {
			t.Errorf("message %s has no payload", name)
		}
	}
	for _, n := range companiaevent.Names() {
		p := obj(t, doc, "components/messages/"+string(n)+"/payload")
		if p["schemaFormat"] != schemaFormat2020 {
			t.Errorf("message %s: schemaFormat = %v, want %s", n, p["schemaFormat"], schemaFormat2020)
		}
		want := contracts.SchemaDir + "/" + path.Base(companiaevent.SchemaID(n))
		if r := at(p, "schema/$ref"); r != want {
			t.Errorf("message %s: payload schema $ref = %v, want %s", n, r, want)
		}
		if _, err := fs.Stat(contracts.Documents(), want); err != nil {
			t.Errorf("message %s: %v", n, err)
		}
	}
}

// TestAsyncAPIDocumentsEveryEvent keeps the AsyncAPI document in step with
// the Go contract: every event type on the event channel, every CloudEvents
// header, the dead-letter headers, and an operation on every channel.
func TestAsyncAPIDocumentsEveryEvent(t *testing.T) {
	t.Parallel()
	doc := asyncAPI(t)
	if doc["asyncapi"] != "3.0.0" {
		t.Errorf("asyncapi = %v, want 3.0.0", doc["asyncapi"])
	}
	events := obj(t, doc, "channels/eventosCompania")
	if events["address"] != companiaevent.DefaultTopic {
		t.Errorf("eventosCompania address = %v, want %s", events["address"], companiaevent.DefaultTopic)
	}
	msgs := obj(t, events, "messages")
	for _, n := range companiaevent.Names() {
		if _, ok := msgs[string(n)]; !ok {
			t.Errorf("channel eventosCompania lacks message %s", n)
			continue
		}
		if got := ref(t, doc, msgs[string(n)])["name"]; got != n.Type() {
			t.Errorf("message %s: name = %v, want %s", n, got, n.Type())
		}
	}
	if len(msgs) != len(companiaevent.Names()) {
		t.Errorf("channel eventosCompania has %d messages, the contract %d events", len(msgs), len(companiaevent.Names()))
	}

	trait := obj(t, doc, "components/messageTraits/cloudEvent/headers")
	props := obj(t, trait, "properties")
	for _, h := range []string{companiaevent.HeaderSpecVersion, companiaevent.HeaderID, companiaevent.HeaderSource,
		companiaevent.HeaderType, companiaevent.HeaderTime, companiaevent.HeaderSubject, companiaevent.HeaderDataSchema,
		companiaevent.HeaderContentType, companiaevent.HeaderTraceparent} {
		if props[h] == nil {
			t.Errorf("the cloudEvent trait lacks header %s", h)
		}
	}
	// Encode writes every required header.
	m, err := companiaevent.Encode(companiaevent.Event{ID: "e", Name: companiaevent.CompaniaCreada,
		Data: companiaevent.Data{Compania: companiaevent.Compania{ID: "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range trait["required"].([]any) {
		if !slices.ContainsFunc(m.Headers, func(h companiaevent.Header) bool { return h.Key == r }) {
			t.Errorf("header %v is required by the document but Encode does not write it", r)
		}
	}

	dlq := obj(t, doc, "channels/deadLetters")
	if len(obj(t, dlq, "messages")) == 0 {
		t.Error("channel deadLetters has no message")
	}
	dlqHeaders := obj(t, doc, "components/messages/DeadLetter/headers/schema/properties")
	for _, h := range []string{deadletter.HeaderReason, deadletter.HeaderError, deadletter.HeaderTopic, deadletter.HeaderPartition,
		deadletter.HeaderOffset, deadletter.HeaderTime, deadletter.HeaderConsumer, deadletter.HeaderDroppedHeaders} {
		if dlqHeaders[h] == nil {
			t.Errorf("message DeadLetter lacks header %s", h)
		}
	}
	reasons, _ := at(dlqHeaders, deadletter.HeaderReason+"/enum").([]any)
	for _, r := range []string{deadletter.ReasonMalformed, deadletter.ReasonInvalid, deadletter.ReasonConflict,
		deadletter.ReasonUnsupportedVersion, deadletter.ReasonPanic} {
		if !slices.Contains(reasons, any(r)) {
			t.Errorf("header %s: enum lacks %s", deadletter.HeaderReason, r)
		}
	}

	actions := map[string][]string{} // channel → actions of its operations
	for name, op := range obj(t, doc, "operations") {
		r, _ := at(op, "channel/$ref").(string)
		ch, ok := strings.CutPrefix(r, "#/channels/")
		if !ok || at(doc, "channels/"+ch) == nil {
			t.Errorf("operation %s: channel %q is not a channel of the document", name, r)
		}
		actions[ch] = append(actions[ch], at(op, "action").(string))
	}
	for ch := range obj(t, doc, "channels") {
		if len(actions[ch]) == 0 {
			t.Errorf("channel %s has no operation", ch)
		}
	}
	for _, a := range []string{"send", "receive"} {
		if !slices.Contains(actions["deadLetters"], a) {
			t.Errorf("channel deadLetters has no %s operation", a)
		}
	}

	// The secured server and its security scheme (issue 10): SASL/SCRAM
	// over TLS, declared and referenced.
	if at(doc, "servers/secured/protocol") != "kafka-secure" || at(doc, "components/securitySchemes/scramSha512/type") != "scramSha512" ||
		at(doc, "servers/secured/security") == nil {
		t.Error("the secured server (kafka-secure, SASL/SCRAM-SHA-512) is not declared and referenced")
	}
}

// openAPIDocuments finds the OpenAPI documents of the services, wherever
// they live below services/. They are checked here, next to the other
// contract documents, so that the meta-schemas are vendored once.
func openAPIDocuments(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Skip("not in the workspace: the services' OpenAPI documents are not here")
	}
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "services"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "openapi.json" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found the OpenAPI documents %v, want the writer's and the reader's", files)
	}
	return files
}

func TestOpenAPIDocumentsAreValidOpenAPI31(t *testing.T) {
	t.Parallel()
	meta := metaSchema(t, openAPIMetaSchema)
	versions := map[string][]string{}
	for _, f := range openAPIDocuments(t) {
		doc := readJSON(t, os.DirFS(filepath.Dir(f)), filepath.Base(f))
		if err := meta.Validate(doc); err != nil {
			t.Errorf("%s does not satisfy the OpenAPI 3.1 schema:\n%v", f, err)
		}
		v, _ := at(doc, "openapi").(string)
		versions[v] = append(versions[v], f)
		checkSchemaObjects(t, f, doc)
	}
	if len(versions) != 1 {
		t.Errorf("the OpenAPI documents name different versions: %v", versions)
	}
}

// checkSchemaObjects compiles every Schema Object of the OpenAPI document
// doc (components, parameters, headers, bodies), so that every $ref in them
// resolves. Without jsonSchemaDialect a Schema Object is draft 2020-12.
func checkSchemaObjects(t *testing.T, file string, doc any) {
	t.Helper()
	if d := at(doc, "jsonSchemaDialect"); d != nil {
		t.Errorf("%s: jsonSchemaDialect %v: checkSchemaObjects assumes the default (draft 2020-12)", file, d)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.ToSlash(abs)
	c := jsonschema.NewCompiler()
	c.UseLoader(noNetwork{})
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(url, doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var ptrs []string
	var walk func(v any, ptr string)
	walk = func(v any, ptr string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				p := ptr + "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
				if k == "schema" || strings.HasSuffix(ptr, "/components/schemas") {
					if _, ok := x.(map[string]any); ok {
						ptrs = append(ptrs, p)
						continue
					}
				}
				walk(x, p)
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s/%d", ptr, i))
			}
		}
	}
	walk(doc, "#")
	if len(ptrs) == 0 {
		t.Errorf("%s: no Schema Object found", file)
	}
	for _, p := range ptrs {
		if _, err := c.Compile(url + p); err != nil {
			var ue *jsonschema.LoadURLError
			if errors.As(err, &ue) {
				t.Errorf("%s: %s: a $ref does not resolve: %v", file, p, err)
				continue
			}
			t.Errorf("%s: %s does not compile: %v", file, p, err)
		}
	}
}
