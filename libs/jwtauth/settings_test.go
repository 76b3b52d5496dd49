package jwtauth_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/jwtauth"
)

func TestNewFromSettings(t *testing.T) {
	t.Parallel()
	secret32 := jwtauth.Secret(secret)
	tests := []struct {
		name    string
		s       jwtauth.Settings
		wantErr string // "" for success
	}{
		{"hs256", jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: secret32, Issuer: "i", Audience: "a"}, ""},
		{"hs256 ignores the jwks url", jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: secret32, JWKSURL: "https://x/jwks"}, ""},
		{"jwks", jwtauth.Settings{Mode: jwtauth.ModeJWKS, JWKSURL: "https://idp.example/jwks"}, ""},
		{"jwks ignores the secret", jwtauth.Settings{Mode: jwtauth.ModeJWKS, JWKSURL: "https://idp.example/jwks", HS256Secret: secret32}, ""},
		{"short secret", jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: "short"}, "build token verifier: jwtauth: the HS256 secret has 5 bytes"},
		{"bad jwks url", jwtauth.Settings{Mode: jwtauth.ModeJWKS, JWKSURL: "idp/jwks"}, "build token verifier: jwtauth: the JWKS URL"},
		{"none", jwtauth.Settings{Mode: jwtauth.ModeNone}, `auth mode "none" builds no token verifier`},
		{"unknown", jwtauth.Settings{Mode: "ldap"}, `unknown auth mode "ldap"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := jwtauth.NewFromSettings(tt.s)
			switch {
			case tt.wantErr == "" && (err != nil || v == nil):
				t.Fatalf("NewFromSettings = %v, %v; want a Verifier", v, err)
			case tt.wantErr != "" && (err == nil || v != nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("NewFromSettings = %v, %v; want an error containing %q", v, err, tt.wantErr)
			}
		})
	}
}

func TestSecretIsRedacted(t *testing.T) {
	t.Parallel()
	s := jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: "top-secret-value"}
	if out := fmt.Sprintf("%v %+v %#v %s", s, s, s, s.HS256Secret); strings.Contains(out, "top-secret") || !strings.Contains(out, "[redacted]") {
		t.Errorf("printed settings leak the secret: %s", out)
	}
	if v := s.HS256Secret.LogValue().String(); v != "[redacted]" {
		t.Errorf("LogValue = %q", v)
	}
}

func TestNewLogged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	v, err := jwtauth.NewLogged(jwtauth.Settings{Mode: jwtauth.ModeNone}, log, "AUTH IS OFF", "read")
	if v != nil || err != nil {
		t.Fatalf("mode none = %v, %v; want nil, nil", v, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"AUTH IS OFF"`) {
		t.Errorf("mode none logged %q, want the warning", logs.String())
	}

	logs.Reset()
	if v, err = jwtauth.NewLogged(jwtauth.Settings{Mode: jwtauth.ModeNone, AllowNoneOnNetwork: true}, log, "AUTH IS OFF"); v != nil || err != nil {
		t.Fatalf("mode none on the network = %v, %v; want nil, nil", v, err)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"AUTHENTICATION IS OFF ON A NETWORK ADDRESS`) {
		t.Errorf("mode none on the network logged %q, want an ERROR line", logs.String())
	}

	logs.Reset()
	v, err = jwtauth.NewLogged(jwtauth.Settings{Mode: jwtauth.ModeJWKS, JWKSURL: "https://idp.example/jwks", Issuer: "iss"}, log, "off", "read", "admin")
	if v == nil || err != nil {
		t.Fatalf("mode jwks = %v, %v; want a Verifier", v, err)
	}
	for _, w := range []string{`"level":"INFO"`, `"mode":"jwks"`, `"jwks_url":"https://idp.example/jwks"`, `"issuer":"iss"`, `"scopes":["read","admin"]`} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("mode jwks logged %q, want %s", logs.String(), w)
		}
	}

	logs.Reset()
	if v, err = jwtauth.NewLogged(jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: jwtauth.Secret(secret)}, log, "off"); v == nil || err != nil {
		t.Fatalf("mode hs256 = %v, %v; want a Verifier", v, err)
	}
	if strings.Contains(logs.String(), string(secret)) || strings.Contains(logs.String(), hex.EncodeToString(secret)) {
		t.Errorf("mode hs256 logged the secret: %q", logs.String())
	}

	logs.Reset()
	if v, err = jwtauth.NewLogged(jwtauth.Settings{Mode: jwtauth.ModeHS256, HS256Secret: "short"}, log, "off"); v != nil || err == nil {
		t.Errorf("short secret = %v, %v; want an error", v, err)
	}
	if v, err = jwtauth.NewLogged(jwtauth.Settings{Mode: "ldap"}, log, "off"); v != nil || err == nil {
		t.Errorf("unknown mode = %v, %v; want an error", v, err)
	}
	if logs.Len() != 0 {
		t.Errorf("failures logged %q, want nothing", logs.String())
	}
}
