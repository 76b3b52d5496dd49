package companiaevent

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed schema/*.json
var schemaFS embed.FS

// SchemaBaseURI is the base of every schema $id of this contract.
const SchemaBaseURI = "https://propalpes.co/schemas/companias/"

// SchemaID returns the JSON Schema $id that the value of event n must satisfy.
// The schema files reference the shared "compania.v1.json"; load every file
// of Schemas into the validator.
func SchemaID(n Name) string { return fmt.Sprintf("%s%s.v%d.json", SchemaBaseURI, n, MajorVersion) }

// Schemas returns the JSON Schema (draft 2020-12) documents of this contract,
// keyed by their $id.
func Schemas() map[string][]byte {
	out := map[string][]byte{}
	entries, _ := fs.ReadDir(schemaFS, "schema")
	for _, e := range entries {
		b, err := schemaFS.ReadFile("schema/" + e.Name())
		if err != nil {
			continue // cannot happen: the files are embedded
		}
		out[SchemaBaseURI+e.Name()] = b
	}
	return out
}
