package envconfig_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// secret32 is a valid AUTH_HS256_SECRET: 32 random bytes in base64;
// hexSecret32 is the same key in hex, key32 the key itself.
const (
	secret32    = "base64:cbyAhwUVWvYEmpdoZmXe2mLGtdJE1j1gE2tVEd9zmIk="
	hexSecret32 = "hex:71bc808705155af6049a97686665deda62c6b5d244d63d60136b5511df739889"
)

var key32 = func() envconfig.Secret {
	k, err := hex.DecodeString(strings.TrimPrefix(hexSecret32, "hex:"))
	if err != nil {
		panic(err)
	}
	return envconfig.Secret(k)
}()

// loopback is the HTTP_ADDR the tests give unless they test it: there an
// unset AUTH_MODE means none.
const loopback = "127.0.0.1:8080"

// onLoopback returns vars plus HTTP_ADDR=loopback unless vars sets
// HTTP_ADDR, and, with AUTH_MODE hs256 or jwks, AUTH_ISSUER=i and
// AUTH_AUDIENCE=a unless vars sets them.
func onLoopback(vars map[string]string) map[string]string {
	out := map[string]string{"HTTP_ADDR": loopback}
	if m := strings.ToLower(vars["AUTH_MODE"]); m == "hs256" || m == "jwks" {
		out["AUTH_ISSUER"], out["AUTH_AUDIENCE"] = "i", "a"
	}
	for k, v := range vars {
		out[k] = v
	}
	return out
}

func TestAuth(t *testing.T) {
	t.Parallel()
	read := files(map[string]string{"/jwt": secret32 + "\n", "/tiny": "tiny"})
	tests := []struct {
		name string
		vars map[string]string
		want envconfig.AuthSettings
	}{
		{"default none", nil, envconfig.AuthSettings{Mode: envconfig.AuthModeNone}},
		{"hs256", map[string]string{"AUTH_MODE": "HS256", "AUTH_HS256_SECRET": secret32, "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"},
			envconfig.AuthSettings{Mode: envconfig.AuthModeHS256, HS256Secret: key32, Issuer: "i", Audience: "a"}},
		{"hs256 hex", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": hexSecret32}, envconfig.AuthSettings{Mode: envconfig.AuthModeHS256, HS256Secret: key32, Issuer: "i", Audience: "a"}},
		{"hs256 file", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET_FILE": "/jwt"}, envconfig.AuthSettings{Mode: envconfig.AuthModeHS256, HS256Secret: key32, Issuer: "i", Audience: "a"}},
		{"jwks", map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "https://idp/jwks"}, envconfig.AuthSettings{Mode: envconfig.AuthModeJWKS, JWKSURL: "https://idp/jwks", Issuer: "i", Audience: "a"}},
		{"jwks loopback http", map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "http://127.0.0.1:8081/jwks"},
			envconfig.AuthSettings{Mode: envconfig.AuthModeJWKS, JWKSURL: "http://127.0.0.1:8081/jwks", Issuer: "i", Audience: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := envconfig.New(env(onLoopback(tt.vars)), read, nil)
			if got := p.Auth(); got != tt.want {
				t.Errorf("Auth() = %#v, want %#v", got, tt.want)
			}
			if err := p.Err(); err != nil {
				t.Errorf("Err() = %v", err)
			}
			if err := envconfig.ValidateAuth(tt.want, loopback); err != nil {
				t.Errorf("ValidateAuth(%#v) = %v", tt.want, err)
			}
		})
	}
}

func TestAuthProblems(t *testing.T) {
	t.Parallel()
	read := files(map[string]string{"/jwt": secret32, "/tiny": "hex:00ff\n"})
	tests := []struct {
		name string
		vars map[string]string
		want []string // every problem, in order
	}{
		{"unknown mode", map[string]string{"AUTH_MODE": "oauth"}, []string{`AUTH_MODE must be none, hs256 or jwks, got "oauth"`}},
		{"hs256 without secret", map[string]string{"AUTH_MODE": "hs256"}, []string{"AUTH_HS256_SECRET or AUTH_HS256_SECRET_FILE is required with AUTH_MODE=hs256"}},
		{"short secret", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": "short"}, []string{`AUTH_HS256_SECRET must start with "base64:" or "hex:", the encoding of the key that follows; ` + envconfig.HS256SecretHint}},
		{"short secret file", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET_FILE": "/tiny"}, []string{"AUTH_HS256_SECRET_FILE has 2 bytes of key material, want at least 32; " + envconfig.HS256SecretHint}},
		{"unreadable file", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET_FILE": "/missing"},
			[]string{"AUTH_HS256_SECRET_FILE cannot be read: open /missing: file does not exist"}},
		{"secret and file", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": secret32, "AUTH_HS256_SECRET_FILE": "/jwt"},
			[]string{"AUTH_HS256_SECRET and AUTH_HS256_SECRET_FILE are both set; set one"}},
		{"jwks url with hs256", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": secret32, "AUTH_JWKS_URL": "https://x"},
			[]string{"AUTH_JWKS_URL is only used with AUTH_MODE=jwks"}},
		{"jwks without url", map[string]string{"AUTH_MODE": "jwks"}, []string{"AUTH_JWKS_URL is required with AUTH_MODE=jwks"}},
		{"jwks without issuer and audience", map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "https://idp.example/jwks", "AUTH_ISSUER": "", "AUTH_AUDIENCE": ""},
			[]string{
				"AUTH_ISSUER is required with AUTH_MODE=jwks: the iss claim of the tokens this service accepts",
				"AUTH_AUDIENCE is required with AUTH_MODE=jwks: this service's own aud value (companias-command, companias-query)",
			}},
		{"hs256 without audience", map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": secret32, "AUTH_AUDIENCE": ""},
			[]string{"AUTH_AUDIENCE is required with AUTH_MODE=hs256: this service's own aud value (companias-command, companias-query)"}},
		{"jwks placeholder url", map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "https://idp.invalid/.well-known/jwks.json"},
			[]string{`AUTH_JWKS_URL "https://idp.invalid/.well-known/jwks.json" is the shipped placeholder (a .invalid host): put the JWKS URL of your identity provider`}},
		{"jwks bad url", map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "idp/jwks"}, []string{`AUTH_JWKS_URL must be an absolute https URL (http only to a loopback host), got "idp/jwks"`}},
		{"jwks http beyond loopback", map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "http://idp.example/jwks"},
			[]string{`AUTH_JWKS_URL must be an absolute https URL (http only to a loopback host), got "http://idp.example/jwks"`}},
		{"secret file with jwks", map[string]string{"AUTH_MODE": "jwks", "AUTH_JWKS_URL": "https://x", "AUTH_HS256_SECRET_FILE": "/jwt"},
			[]string{"AUTH_HS256_SECRET_FILE is only used with AUTH_MODE=hs256"}},
		{"settings with none", map[string]string{"AUTH_HS256_SECRET": secret32, "AUTH_JWKS_URL": "https://x", "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"},
			[]string{
				"AUTH_HS256_SECRET is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)",
				"AUTH_JWKS_URL is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)",
				"AUTH_ISSUER is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)",
				"AUTH_AUDIENCE is set but AUTH_MODE is none (set AUTH_MODE=hs256 or jwks to check tokens)",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := envconfig.New(env(onLoopback(tt.vars)), read, nil)
			p.Auth()
			want := "invalid configuration: " + strings.Join(tt.want, "\n")
			if err := p.Err(); err == nil || err.Error() != want {
				t.Errorf("Err() = %v, want %q", err, want)
			}
			if err := p.Err(); err != nil && (strings.Contains(err.Error(), secret32) || strings.Contains(err.Error(), "short")) {
				t.Errorf("Err() leaks the secret: %v", err)
			}
		})
	}
}

func TestValidateAuth(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    envconfig.AuthSettings
		want string
	}{
		{envconfig.AuthSettings{}, `AUTH_MODE must be none, hs256 or jwks, got ""`},
		{envconfig.AuthSettings{Mode: envconfig.AuthModeNone, HS256Secret: "x"}, "AUTH_HS256_SECRET is set but AUTH_MODE is none"},
		{envconfig.AuthSettings{Mode: envconfig.AuthModeHS256, HS256Secret: "short"}, "AUTH_HS256_SECRET has 5 bytes of key material, want at least 32"},
		{envconfig.AuthSettings{Mode: envconfig.AuthModeHS256, HS256Secret: "0123456789abcdef0123456789abcdef"}, "AUTH_HS256_SECRET repeats a 16-byte pattern"},
		{envconfig.AuthSettings{Mode: envconfig.AuthModeJWKS, JWKSURL: "https://x", HS256Secret: key32}, "AUTH_HS256_SECRET is only used with AUTH_MODE=hs256"},
	} {
		if err := envconfig.ValidateAuth(tt.s, loopback); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateAuth(%s) = %v, want %q", fmt.Sprint(tt.s.Mode), err, tt.want)
		}
	}
}

// The shipped examples and other guessable secrets fail start with a
// message telling what to put instead; random keys in either encoding pass.
func TestAuthHS256Secret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  string
		wantErr string // "" for a valid secret
	}{
		{"base64", secret32, ""},
		{"base64 unpadded", strings.TrimSuffix(secret32, "="), ""},
		{"base64 url-safe", "base64:8_-PLnU9Do7qG8gmk-2Wru9dMBm5v7A2dYTe6EhUrgA", ""},
		{"hex", hexSecret32, ""},
		{"hex upper case", strings.ToUpper(hexSecret32[:4]) + hexSecret32[4:], "must start with"},
		{"64 random bytes", "base64:AniUU39fzn7G+kS2jfpogaipT5E2s/vgJpEEjz9dpjf255+WI6Y/THiNkiHqLPR6BlBDPINgi/38Jx52sIstyQ==", ""},
		{"shipped k8s example", "CHANGE-ME-32-OR-MORE-RANDOM-BYTES", "holds a placeholder, not a key; " + envconfig.HS256SecretHint},
		{"shipped compose example", "change-me-to-32-or-more-random-bytes", "holds a placeholder"},
		{"placeholder encoded", "base64:Y2hhbmdlbWUtY2hhbmdlbWUtY2hhbmdlbWUtY2hhbmdlbWU=", "is a placeholder, not a key"},
		{"placeholder after a prefix", "base64:Change-Me-Change-Me-Change-Me-Change-Me-Change-Me", "holds a placeholder"},
		{"the word secret", "hex:" + strings.Repeat("5345435245545f", 5), "is a placeholder"},
		{"example", "an-EXAMPLE-value-of-more-than-32-bytes", "holds a placeholder"},
		{"raw text", "0123456789abcdefghijklmnopqrstuvwxyz!#", `must start with "base64:" or "hex:"`},
		{"short", "hex:0123456789abcdef", "has 8 bytes of key material, want at least 32"},
		{"bad base64", "base64:not base64 at all!", `is not valid base64 after "base64:"`},
		{"bad hex", "hex:zz", `is not valid hex after "hex:"`},
		{"one byte", "hex:" + strings.Repeat("aa", 32), "has 1 distinct byte values in its key, want at least 16"},
		{"few bytes", "hex:" + strings.Repeat("0102030405060708090a0b0c0d0e0f", 3), "has 15 distinct byte values"},
		{"pattern", "hex:" + strings.Repeat("000102030405060708090a0b0c0d0e0f10", 2), "repeats a 17-byte pattern"},
		{"counting", "hex:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "is a run of evenly spaced bytes"},
		{"counting down", "hex:fffdfbf9f7f5f3f1efedebe9e7e5e3e1dfdddbd9d7d5d3d1cfcdcbc9c7c5c3c1", "is a run of evenly spaced bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := envconfig.New(env(onLoopback(map[string]string{"AUTH_MODE": "hs256", "AUTH_HS256_SECRET": tt.secret})), nil, nil)
			s := p.Auth()
			err := p.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Err() = %v, want nil", err)
			case tt.wantErr == "" && len(s.HS256Secret) < envconfig.MinHS256SecretLen:
				t.Errorf("HS256Secret has %d bytes, want the decoded key", len(s.HS256Secret))
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), "AUTH_HS256_SECRET "+tt.wantErr)):
				t.Errorf("Err() = %v, want a problem containing %q", err, "AUTH_HS256_SECRET "+tt.wantErr)
			case tt.wantErr != "" && strings.Contains(err.Error(), strings.SplitN(tt.secret, ":", 2)[len(strings.SplitN(tt.secret, ":", 2))-1]):
				t.Errorf("Err() = %v leaks the secret", err)
			}
		})
	}
	if string(key32) == "" || envconfig.CheckHS256Key([]byte(key32)) != nil {
		t.Errorf("CheckHS256Key(key32) = %v", envconfig.CheckHS256Key([]byte(key32)))
	}
}

// An API listening beyond loopback never runs open by accident: an unset
// AUTH_MODE is then a problem naming it, and AUTH_MODE=none needs
// AUTH_ALLOW_NONE_ON_NETWORK=true.
func TestAuthFailsClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		vars    map[string]string
		want    envconfig.AuthSettings
		wantErr string // "" for no problem
	}{
		{"unset on all interfaces", map[string]string{"HTTP_ADDR": ":8080"}, envconfig.AuthSettings{},
			`AUTH_MODE is not set and HTTP_ADDR ":8080" listens beyond loopback`},
		{"unset on 0.0.0.0", map[string]string{"HTTP_ADDR": "0.0.0.0:8080"}, envconfig.AuthSettings{}, "AUTH_MODE is not set"},
		{"unset on a routable address", map[string]string{"HTTP_ADDR": "10.0.0.7:8080"}, envconfig.AuthSettings{}, "AUTH_MODE is not set"},
		{"unset without HTTP_ADDR", nil, envconfig.AuthSettings{}, "AUTH_MODE is not set"},
		{"unset with an opt-in", map[string]string{"HTTP_ADDR": ":8080", "AUTH_ALLOW_NONE_ON_NETWORK": "true"},
			envconfig.AuthSettings{AllowNoneOnNetwork: true}, "AUTH_MODE is not set"},
		{"unset on 127.0.0.1", map[string]string{"HTTP_ADDR": "127.0.0.1:8080"}, envconfig.AuthSettings{Mode: envconfig.AuthModeNone}, ""},
		{"unset on localhost", map[string]string{"HTTP_ADDR": "localhost:8080"}, envconfig.AuthSettings{Mode: envconfig.AuthModeNone}, ""},
		{"unset on ::1", map[string]string{"HTTP_ADDR": "[::1]:8080"}, envconfig.AuthSettings{Mode: envconfig.AuthModeNone}, ""},
		{"none on all interfaces", map[string]string{"HTTP_ADDR": ":8080", "AUTH_MODE": "none"}, envconfig.AuthSettings{Mode: envconfig.AuthModeNone},
			"AUTH_MODE is none but HTTP_ADDR \":8080\" listens beyond loopback, which serves an open API: set AUTH_MODE=jwks (or hs256), listen on 127.0.0.1, or set AUTH_ALLOW_NONE_ON_NETWORK=true to do so on purpose"},
		{"none opted in", map[string]string{"HTTP_ADDR": ":8080", "AUTH_MODE": "none", "AUTH_ALLOW_NONE_ON_NETWORK": "true"},
			envconfig.AuthSettings{Mode: envconfig.AuthModeNone, AllowNoneOnNetwork: true}, ""},
		{"none not opted in", map[string]string{"HTTP_ADDR": ":8080", "AUTH_MODE": "none", "AUTH_ALLOW_NONE_ON_NETWORK": "false"},
			envconfig.AuthSettings{Mode: envconfig.AuthModeNone}, "AUTH_ALLOW_NONE_ON_NETWORK=true"},
		{"opt-in with jwks", map[string]string{"HTTP_ADDR": ":8080", "AUTH_MODE": "jwks", "AUTH_JWKS_URL": "https://idp.example/jwks",
			"AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a", "AUTH_ALLOW_NONE_ON_NETWORK": "true"},
			envconfig.AuthSettings{Mode: envconfig.AuthModeJWKS, JWKSURL: "https://idp.example/jwks", Issuer: "i", Audience: "a", AllowNoneOnNetwork: true},
			"AUTH_ALLOW_NONE_ON_NETWORK is only used with AUTH_MODE=none"},
		{"jwks on all interfaces", map[string]string{"HTTP_ADDR": ":8080", "AUTH_MODE": "jwks", "AUTH_JWKS_URL": "https://idp.example/jwks", "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"},
			envconfig.AuthSettings{Mode: envconfig.AuthModeJWKS, JWKSURL: "https://idp.example/jwks", Issuer: "i", Audience: "a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := envconfig.New(env(tt.vars), nil, nil)
			got := p.Auth()
			err := p.Err()
			if got != tt.want {
				t.Errorf("Auth() = %#v, want %#v", got, tt.want)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Err() = %v, want a problem containing %q", err, tt.wantErr)
			}
			if tt.want.Mode != "" && tt.wantErr == "" {
				if err := envconfig.ValidateAuth(tt.want, tt.vars["HTTP_ADDR"]); err != nil {
					t.Errorf("ValidateAuth = %v, want nil", err)
				}
			}
		})
	}
	if err := envconfig.ValidateAuth(envconfig.AuthSettings{Mode: envconfig.AuthModeNone}, ":8080"); err == nil ||
		!strings.Contains(err.Error(), "AUTH_ALLOW_NONE_ON_NETWORK") {
		t.Errorf("ValidateAuth(none, :8080) = %v, want the opt-in problem", err)
	}
}

func TestCheckJWKSURL(t *testing.T) {
	t.Parallel()
	for url, ok := range map[string]bool{
		"https://idp.example/jwks": true, "http://localhost:8081/jwks": true, "http://127.0.0.1/jwks": true,
		"http://[::1]:9/jwks": true, "http://idp.example/jwks": false, "http://10.0.0.1/jwks": false,
		"ftp://idp.example/jwks": false, "idp/jwks": false, "https:///jwks": false, "https://u:p@idp.example/jwks": false,
		"http://localhost.evil.example/jwks": false,
	} {
		if err := envconfig.CheckJWKSURL(url); (err == nil) != ok {
			t.Errorf("CheckJWKSURL(%q) = %v, want ok=%v", url, err, ok)
		}
	}
}
