// Package companiaeventtest helps tests keep documents that cannot import
// the contract (JSON Schemas, OpenAPI documents) in step with its lists,
// as net/http/httptest helps tests of net/http. It is for tests only.
package companiaeventtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/propalpes/companias/libs/contracts/companiaevent"
)

// CheckEstados returns an error naming every list of EstadoLists(doc) that
// does not hold exactly the estados of companiaevent.Estados, or nil. Fewer
// than min lists is an error too: a document that stopped declaring its
// estados where the caller expects them is out of step as well.
func CheckEstados(doc []byte, min int) error {
	lists, err := EstadoLists(doc)
	if err != nil {
		return err
	}
	want := slices.Sorted(slices.Values(companiaevent.Estados()))
	var errs []error
	if len(lists) < min {
		errs = append(errs, fmt.Errorf("%d estado lists, want at least %d: %q", len(lists), min, lists))
	}
	for _, ptr := range slices.Sorted(maps.Keys(lists)) {
		if got := lists[ptr]; !slices.Equal(got, want) {
			errs = append(errs, fmt.Errorf("%s = %q, want companiaevent.Estados() %q", ptr, got, want))
		}
	}
	return errors.Join(errs...)
}

// EstadoLists returns every list of estados that the JSON document doc (a
// JSON Schema or an OpenAPI document) declares, keyed by the JSON Pointer
// of the list: the enum, or the const as a list of one, of every property
// named "estado"; the schema enum of every parameter named "estado"; and
// the required members and the property names of every property named
// "por_estado" (the statistics keyed by estado). Each list is sorted, so
// that it can be compared with slices.Sorted(companiaevent.Estados()) or
// checked member by member. It fails only if doc is not JSON.
func EstadoLists(doc []byte) (map[string][]string, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("estado lists: %w", err)
	}
	out := map[string][]string{}
	walk("", root, out)
	return out, nil
}

func walk(ptr string, v any, out map[string][]string) {
	switch v := v.(type) {
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok {
			at := ptr + "/properties"
			if est, ok := props["estado"].(map[string]any); ok {
				if c, ok := est["const"].(string); ok {
					out[at+"/estado/const"] = []string{c}
				}
				if _, ok := est["enum"]; ok {
					out[at+"/estado/enum"] = strs(est["enum"])
				}
			}
			if pe, ok := props["por_estado"].(map[string]any); ok {
				out[at+"/por_estado/required"] = strs(pe["required"])
				var keys []string
				if p, ok := pe["properties"].(map[string]any); ok {
					for k := range p {
						keys = append(keys, k)
					}
				}
				slices.Sort(keys)
				out[at+"/por_estado/properties"] = keys
			}
		}
		if v["name"] == "estado" && v["in"] != nil {
			if s, ok := v["schema"].(map[string]any); ok {
				out[ptr+"/schema/enum"] = strs(s["enum"])
			}
		}
		for k, x := range v {
			walk(ptr+"/"+escape(k), x, out)
		}
	case []any:
		for i, x := range v {
			walk(ptr+"/"+strconv.Itoa(i), x, out)
		}
	}
}

// strs returns the strings of a JSON array, sorted; other members are "".
func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// escape escapes a member name for a JSON Pointer (RFC 6901).
func escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}
