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
	k, err := hex.DecodeString("94487cabbd3beba55a7316e50f97f2748f2309d2d62f7da74bb693a14667e002")
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
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "the command API") {
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

func TestRunRejectsBadAuthConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": "short"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "AUTH_HS256_SECRET") {
		t.Fatalf("run = %v, want the AUTH_HS256_SECRET problem", err)
	}
}

// The image sets HTTP_ADDR=:8080: without AUTH_MODE it must not start.
func TestRunRefusesAnOpenAPIBeyondLoopback(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HTTP_ADDR": ":8080"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `AUTH_MODE is not set and HTTP_ADDR ":8080" listens beyond loopback`) {
		t.Fatalf("run = %v, want the AUTH_MODE problem", err)
	}
}
