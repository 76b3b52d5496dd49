package jwtauth_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestDuplicateMembersRefused checks that a header or claims set naming a
// member twice is refused, whichever value comes first and in any case:
// encoding/json keeps the last one, another parser may keep the first.
func TestDuplicateMembersRefused(t *testing.T) {
	t.Parallel()
	v := hsVerifier(t, nil)
	exp := t0.Add(time.Hour).Unix()
	hdr := []byte(`{"alg":"HS256","typ":"JWT"}`)
	claims := func(members string) []byte {
		return fmt.Appendf(nil, `{"iss":"https://idp.example","exp":%d,%s}`, exp, members)
	}
	if _, err := v.Verify(context.Background(), sign(hdr, claims(`"aud":"companias"`))); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	for name, tok := range map[string]string{
		"aud other then ours": sign(hdr, claims(`"aud":"other","aud":"companias"`)),
		"aud ours then other": sign(hdr, claims(`"aud":"companias","aud":"other"`)),
		"aud in another case": sign(hdr, claims(`"aud":"companias","AUD":"other"`)),
		"exp twice":           sign(hdr, claims(`"aud":"companias","exp":1`)),
	} {
		_, err := v.Verify(context.Background(), tok)
		wantInvalid(t, err, "appears twice")
		wantInvalid(t, err, "the token claims are malformed")
		t.Logf("%s: %v", name, err)
	}
	for name, h := range map[string]string{
		"alg twice":           `{"alg":"HS256","alg":"HS256"}`,
		"typ twice":           `{"alg":"HS256","typ":"JWT","typ":"JOSE"}`,
		"kid in another case": `{"alg":"HS256","kid":"a","KID":"b"}`,
	} {
		_, err := v.Verify(context.Background(), sign([]byte(h), claims(`"aud":"companias"`)))
		wantInvalid(t, err, "the token header is malformed")
		t.Logf("%s: %v", name, err)
	}
}

// TestTyp checks that typ, when the issuer sets it, names a JWT or an
// RFC 9068 access token, in any case; anything else is refused.
func TestTyp(t *testing.T) {
	t.Parallel()
	v := hsVerifier(t, nil)
	for _, typ := range []any{"JWT", "jwt", "at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT", nil} {
		hdr := map[string]any{"alg": "HS256"}
		if typ != nil {
			hdr["typ"] = typ
		}
		if _, err := v.Verify(context.Background(), token(t, hdr, good(), secret)); err != nil {
			t.Errorf("typ %v refused: %v", typ, err)
		}
	}
	for _, typ := range []any{"JOSE", "JWS", "", "application/jwt", "at+jwt ", 1} {
		_, err := v.Verify(context.Background(), token(t, map[string]any{"alg": "HS256", "typ": typ}, good(), secret))
		if err == nil {
			t.Errorf("typ %#v accepted", typ)
			continue
		}
		wantInvalid(t, err, "")
	}
}
