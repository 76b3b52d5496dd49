// Package check has no code: its tests check the contract documents against
// their meta-schemas (vendored in testdata/metaschema, so no test reaches
// the network):
//
//   - libs/contracts/asyncapi.yaml is valid AsyncAPI 3.0 and agrees with the
//     Go contract (events, headers, dead letters, operations, schemaFormat);
//   - every event JSON Schema compiles with every $ref resolved, and each
//     encoded event satisfies the schema its ce_dataschema names;
//   - both services' openapi.json are valid OpenAPI 3.1, agree on the
//     version, and every Schema Object in them compiles.
//
// It is a module of its own so that the contracts module keeps no
// requirement at all: its importers (the services, tools, deploy/check and
// any external consumer) get nothing but the standard library from it. Its
// dependencies (santhosh-tekuri/jsonschema, goccy/go-yaml) are the versions
// the services already build with, so being in go.work changes nothing.
package check
