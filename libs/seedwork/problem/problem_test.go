package problem_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	if errs, _ := body["errors"].([]any); len(errs) != 1 {
		t.Errorf("errors = %v", body["errors"])
	}
}
