package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/jwtauth"
)

// newAuthenticator adds to jwtauth.NewLogged (whose rules are tested in
// seedwork) this API's warning, its scopes, and an untyped nil
// Authenticator when authentication is off or fails to build.
// testKey is a valid HS256 key: 32 random bytes.
var testKey = func() jwtauth.Secret {
	k, err := hex.DecodeString("8f2f0c41f21f9fa940113609aab8c0b4416ecc8a90b23c91b3d124d32581f00a")
	if err != nil {
		panic(err)
	}
	return jwtauth.Secret(k)
}()

func TestNewAuthenticator(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	a, err := newAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeNone}, log)
	if err != nil || a != nil {
		t.Fatalf("mode none = %v, %v; want a nil Authenticator", a, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "the query API") {
		t.Errorf("mode none logged %q, want this API's warning", logs.String())
	}

	a, err = newAuthenticator(jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: testKey}, log)
	if err != nil || a == nil {
		t.Fatalf("mode hs256 = %v, %v", a, err)
	}
	if _, err := a.Verify(context.Background(), "a.b.c"); !errors.Is(err, jwtauth.ErrInvalidToken) {
		t.Errorf("Verify(garbage) = %v, want ErrInvalidToken", err)
	}
	if a, err := newAuthenticator(jwtauth.Settings{Mode: "ldap"}, log); err == nil || a != nil {
		t.Errorf("unknown mode = %v, %v; want an error and a nil Authenticator", a, err)
	}
}
