package apperr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

func TestKindAndIs(t *testing.T) {
	t.Parallel()
	sentinel := apperr.New(apperr.Conflict, "dup", "duplicate")
	copyWithDetail := &apperr.Error{Kind: apperr.Conflict, Code: "dup", Message: "duplicate of X"}
	wrapped := fmt.Errorf("save: %w", copyWithDetail)
	if !errors.Is(wrapped, sentinel) || apperr.KindOf(wrapped) != apperr.Conflict {
		t.Errorf("wrapped copy does not match its sentinel")
	}
	if errors.Is(wrapped, apperr.New(apperr.Conflict, "other", "")) {
		t.Errorf("different codes matched")
	}
	if apperr.KindOf(errors.New("plain")) != apperr.Internal {
		t.Errorf("plain error is not internal")
	}
	if apperr.Validation("validation", "bad", nil) != nil {
		t.Errorf("Validation without fields is not nil")
	}
	v := apperr.Validation("validation", "bad", []apperr.FieldError{{Field: "a", Message: "x"}, {Field: "b", Message: "y"}})
	if v.Error() != "bad: a x; b y" {
		t.Errorf("Error() = %q", v.Error())
	}
	cause := errors.New("cause")
	if e := (&apperr.Error{Kind: apperr.Unavailable, Message: "down", Err: cause}); !errors.Is(e, cause) || e.Kind.String() != "unavailable" {
		t.Errorf("cause not unwrapped")
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[apperr.Kind]string{
		apperr.Internal: "internal", apperr.Invalid: "invalid", apperr.NotFound: "not_found",
		apperr.Conflict: "conflict", apperr.PreconditionFailed: "precondition_failed",
		apperr.Unavailable: "unavailable", apperr.Unauthenticated: "unauthenticated", apperr.Forbidden: "forbidden",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
	err := fmt.Errorf("verify: %w", apperr.New(apperr.Unauthenticated, "invalid_token", "expired"))
	if apperr.KindOf(err) != apperr.Unauthenticated || apperr.KindOf(apperr.New(apperr.Forbidden, "s", "")) != apperr.Forbidden {
		t.Errorf("KindOf does not see the auth kinds")
	}
}
