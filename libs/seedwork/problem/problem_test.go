package problem_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/apperr"
	"github.com/propalpes/companias/libs/seedwork/problem"
)

func TestFromError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{apperr.New(apperr.Invalid, "validation", "bad"), 422, "validation"},
		{fmt.Errorf("wrapped: %w", apperr.New(apperr.NotFound, "nf", "gone")), 404, "nf"},
		{apperr.New(apperr.Conflict, "dup", "dup"), 409, "dup"},
		{apperr.New(apperr.PreconditionFailed, "v", "v"), 412, "v"},
		{apperr.New(apperr.Unavailable, "u", "u"), 503, "u"},
		{fmt.Errorf("auth: %w", apperr.New(apperr.Unauthenticated, "invalid_token", "expired")), 401, "invalid_token"},
		{apperr.New(apperr.Forbidden, "insufficient_scope", "needs a scope"), 403, "insufficient_scope"},
		{apperr.New(apperr.Internal, "boom", "secret detail"), 500, "internal"},
		{errors.New("db password is hunter2"), 500, "internal"},
	}
	for _, tt := range tests {
		p := problem.FromError(tt.err)
		if p.Status != tt.status || p.Code != tt.code || p.Type != problem.TypeBase+tt.code {
			t.Errorf("FromError(%v) = %+v, want %d %s", tt.err, p, tt.status, tt.code)
		}
		if tt.status == 500 && p.Detail != "an unexpected error occurred" {
			t.Errorf("500 detail leaks the cause: %q", p.Detail)
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	err := apperr.Validation("validation", "bad fields", []apperr.FieldError{{Field: "email", Message: "invalid"}})
	p := problem.FromError(err)
	p.Extra = map[string]any{"current_version": 3, "status": "ignored"}
	rec := httptest.NewRecorder()
	problem.Write(rec, p)
	if rec.Code != http.StatusUnprocessableEntity || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Fatalf("status %d content-type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["status"] != float64(422) || body["title"] != "Unprocessable Entity" || body["current_version"] != float64(3) {
		t.Errorf("body = %v", body)
	}
	errs, _ := body["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("errors = %v", body["errors"])
	}
	if e, _ := errs[0].(map[string]any); len(e) != 2 || e["pointer"] != "/email" || e["detail"] != "invalid" {
		t.Errorf("errors[0] = %v, want pointer /email and detail invalid only", errs[0])
	}
}

func TestViolations(t *testing.T) {
	t.Parallel()
	fields := []apperr.FieldError{{Field: "nombre", Message: "is required"}, {Field: "/compania/email", Message: "bad"}, {Field: "a/b~c", Message: "unknown field"}}
	got := problem.BodyViolations(fields)
	want := []problem.Violation{{Pointer: "/nombre", Detail: "is required"}, {Pointer: "/compania/email", Detail: "bad"}, {Pointer: "/a~1b~0c", Detail: "unknown field"}}
	if !slices.Equal(got, want) {
		t.Errorf("BodyViolations = %+v, want %+v", got, want)
	}
	if got := problem.ParameterViolations(fields[:1]); !slices.Equal(got, []problem.Violation{{Parameter: "nombre", Detail: "is required"}}) {
		t.Errorf("ParameterViolations = %+v", got)
	}
	if problem.BodyViolations(nil) != nil || problem.ParameterViolations(nil) != nil {
		t.Error("no fields must give nil violations")
	}
}
