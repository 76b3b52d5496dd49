package e2e_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestEndToEndReadYourWrites checks that a client reading the reader with
// ?min_version=N right after a write to the writer sees that write: the new
// company at version 1, then its new nombre at version 2.
func TestEndToEndReadYourWrites(t *testing.T) {
	in := startInfra(t)
	writer := in.startWriter(t)
	// The reads below give no wait: the reader's default wait applies, set
	// to the largest allowed so that a loaded CI machine cannot flake them.
	reader := in.startReader(t, "READ_WAIT_DEFAULT=10s")
	ctx := t.Context()

	for i := range 5 {
		var created compania
		body := map[string]string{
			"nombre":         fmt.Sprintf("Lectura Propia %d", i),
			"email":          fmt.Sprintf("ryw%d@e2e.example.com", i),
			"identificacion": fmt.Sprintf("RYW-%d", i),
		}
		status, _, err := doInto(ctx, http.MethodPost, writer.base+"/v1/companias", body, nil, &created)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("POST: status %d, error %v", status, err)
		}

		var v compania
		url := fmt.Sprintf("%s/v1/companias/%s?min_version=1", reader.base, created.ID)
		status, _, err = doInto(ctx, http.MethodGet, url, nil, nil, &v)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET %s right after POST: status %d, error %v", url, status, err)
		}
		if d := created.diff(v); d != "" {
			t.Errorf("view after POST differs from the writer's answer: %s", d)
		}

		var updated compania
		nombre := body["nombre"] + " renombrada"
		status, _, err = doInto(ctx, http.MethodPatch, writer.base+"/v1/companias/"+created.ID, map[string]string{"nombre": nombre}, nil, &updated)
		if err != nil || status != http.StatusOK || updated.Version != 2 {
			t.Fatalf("PATCH: status %d, version %d, error %v", status, updated.Version, err)
		}
		url = fmt.Sprintf("%s/v1/companias/%s?min_version=2", reader.base, created.ID)
		v = compania{}
		status, _, err = doInto(ctx, http.MethodGet, url, nil, nil, &v)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET %s right after PATCH: status %d, error %v", url, status, err)
		}
		if v.Nombre != nombre || v.Version != 2 {
			t.Errorf("view after PATCH: nombre %q v%d, want %q v2", v.Nombre, v.Version, nombre)
		}
		if d := updated.diff(v); d != "" {
			t.Errorf("view after PATCH differs from the writer's answer: %s", d)
		}
	}
}
