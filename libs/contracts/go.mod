module github.com/propalpes/companias/libs/contracts

go 1.26.0

// Test-only: documents_test.go validates the contract documents against
// their meta-schemas. No package of this module imports these, so the
// contract packages stay stdlib-only for their importers.
require (
	github.com/goccy/go-yaml v1.19.2
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
)

require golang.org/x/text v0.42.0 // indirect
