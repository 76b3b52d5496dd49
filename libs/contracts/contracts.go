// Package contracts holds the machine-readable documents of the companias
// Kafka contract: the AsyncAPI 3 description (asyncapi.yaml) and the JSON
// Schemas of the event values that it references. A service serves them from
// Documents so that a team outside the repository can generate a consumer
// from a running service; the Go types and codecs are in the subpackages
// (companiaevent, companiacmd, deadletter).
//
// This package depends on the standard library only.
package contracts

import (
	"embed"
	"io/fs"
)

// AsyncAPIPath is the path of the AsyncAPI document in Documents.
const AsyncAPIPath = "asyncapi.yaml"

// SchemaDir is the directory of the event schemas in Documents; the AsyncAPI
// document references each as SchemaDir + "/<Name>.v<major>.json", and a
// schema references the shared one by its bare file name.
const SchemaDir = "companiaevent/schema"

//go:embed asyncapi.yaml companiaevent/schema/*.json
var documents embed.FS

// Documents returns the contract's documents, laid out as in the repository
// (AsyncAPIPath and SchemaDir/*.json), so the relative references between
// them resolve the same when served under one base URL. It holds nothing
// else. The file system is read-only and safe for concurrent use.
func Documents() fs.FS { return documents }
