package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/jwtauth"
)

func TestNewAuthenticator(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	a, err := newAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeNone}, log)
	if err != nil || a != nil {
		t.Fatalf("mode none = %v, %v; want a nil Authenticator", a, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "AUTH_MODE=none") {
		t.Errorf("mode none logged %q, want a warning that the API is open", logs.String())
	}

	a, err = newAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: "0123456789abcdef0123456789abcdef"}, log)
	if err != nil || a == nil {
		t.Fatalf("mode hs256 = %v, %v", a, err)
	}
	if _, err := a.Verify(context.Background(), "a.b.c"); !errors.Is(err, jwtauth.ErrInvalidToken) {
		t.Errorf("Verify(garbage) = %v, want ErrInvalidToken", err)
	}
	if a, err = newAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeJWKS, JWKSURL: "https://idp.example/jwks"}, log); err != nil || a == nil {
		t.Fatalf("mode jwks = %v, %v", a, err)
	}
	if _, err := newAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: "short"}, log); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := newAuthenticator(jwtauth.Settings{Mode: "ldap"}, log); err == nil {
		t.Error("an unknown mode was accepted")
	}
	if strings.Contains(logs.String(), "0123456789abcdef") {
		t.Error("the secret was logged")
	}
}
