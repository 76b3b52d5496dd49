package jwtauth_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/jwtauth"
	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// The fuzz targets of this file verify tokens with fuzzVerifier. Their seeds
// are in testdata/fuzz/<FuzzName>/.

const fuzzLeeway = jwtauth.DefaultLeeway

// fuzzVerifier is hsVerifier's HS256 verifier: secret, issuer
// https://idp.example, audience companias, clock t0, default leeway.
func fuzzVerifier(f *testing.F) *jwtauth.Verifier {
	v, err := jwtauth.New(jwtauth.Config{HS256Secret: secret, Issuer: "https://idp.example", Audience: "companias",
		Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	return v
}

// sign returns the HS256 token of the raw header and claims bytes.
func sign(hdr, claims []byte) string {
	signed := b64(hdr) + "." + b64(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return signed + "." + b64(m.Sum(nil))
}

// FuzzFromHeader: an Authorization value either yields one bearer token,
// which survives being put back into a header, or is refused with
// ErrNoToken (no Bearer credentials) or ErrInvalidToken, both 401s with a
// well-formed challenge.
func FuzzFromHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, authorization string) {
		tok, err := jwtauth.FromHeader(authorization)
		if err != nil {
			if tok != "" {
				t.Fatalf("FromHeader(%q) = %q with error %v", authorization, tok, err)
			}
			checkRefusal(t, err, jwtauth.ErrNoToken, jwtauth.ErrInvalidToken)
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || !strings.Contains(authorization, tok) {
			t.Fatalf("FromHeader(%q) = %q: not one token of the header", authorization, tok)
		}
		if again, err := jwtauth.FromHeader("Bearer " + tok); err != nil || again != tok {
			t.Fatalf("FromHeader(Bearer %q) = %q, %v; want the token back", tok, again, err)
		}
	})
}

// FuzzVerify feeds arbitrary strings to Verify: a refusal is a 401
// (ErrNoToken for "", else ErrInvalidToken) with a well-formed challenge; an
// accepted token has claims that satisfy the verifier's rules, checked
// against the token's own JSON; anything longer than MaxTokenLen is refused
// before it is parsed.
func FuzzVerify(f *testing.F) {
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			if raw == "" {
				checkRefusal(t, err, jwtauth.ErrNoToken)
			} else {
				checkRefusal(t, err, jwtauth.ErrInvalidToken)
			}
		} else {
			parts := strings.Split(raw, ".")
			payload, derr := base64.RawURLEncoding.DecodeString(parts[1])
			if len(parts) != 3 || derr != nil {
				t.Fatalf("accepted %q, which is not three base64url parts", raw)
			}
			checkClaims(t, payload, c)
		}
		long := raw + "." + strings.Repeat("A", jwtauth.MaxTokenLen)
		if _, err := v.Verify(context.Background(), long); !errors.Is(err, jwtauth.ErrInvalidToken) || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("a token of %d bytes: err = %v, want it refused as too large", len(long), err)
		}
	})
}

// FuzzVerifySigned signs an arbitrary header and claims set with the
// verifier's secret, so that the claim checks are reached. Beyond the
// properties of FuzzVerify: an accepted header asks for HS256 with no
// critical parameters; the accepted claims re-encoded canonically and signed
// again verify to the same claims; and the same token padded to exactly
// MaxTokenLen bytes is accepted, one byte more refused.
func FuzzVerifySigned(f *testing.F) {
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, hdr, claims []byte) {
		raw := sign(hdr, claims)
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			checkRefusal(t, err, jwtauth.ErrInvalidToken)
			if len(raw) > jwtauth.MaxTokenLen && !strings.Contains(err.Error(), "too large") {
				t.Fatalf("a token of %d bytes was refused for another reason: %v", len(raw), err)
			}
			return
		}
		var h struct {
			Alg  string   `json:"alg"`
			Crit []string `json:"crit"`
		}
		if json.Unmarshal(hdr, &h) != nil || h.Alg != jwtauth.HS256 || len(h.Crit) > 0 {
			t.Fatalf("accepted the header %q", hdr)
		}
		checkClaims(t, claims, c)

		again, err := v.Verify(context.Background(), sign([]byte(`{"alg":"HS256","typ":"JWT"}`), canonicalClaims(t, c)))
		if err != nil || !sameClaims(again, c) {
			t.Fatalf("canonical form of %+v verifies to %+v, %v", c, again, err)
		}

		// The size limit: whitespace in front of either JSON document
		// changes the token's length, not its meaning.
		for _, size := range []int{jwtauth.MaxTokenLen, jwtauth.MaxTokenLen + 1} {
			padded, ok := padToken(hdr, claims, size)
			if !ok {
				continue // already longer
			}
			_, err := v.Verify(context.Background(), padded)
			if size <= jwtauth.MaxTokenLen && err != nil {
				t.Fatalf("the token padded to %d bytes is refused: %v", size, err)
			}
			if size > jwtauth.MaxTokenLen && (err == nil || !strings.Contains(err.Error(), "too large")) {
				t.Fatalf("the token padded to %d bytes: err = %v, want it refused as too large", size, err)
			}
		}
	})
}

// checkRefusal checks that err is a 401 matching one of want, with a
// message, and that its challenge is a well-formed header value.
func checkRefusal(t *testing.T, err error, want ...error) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.Unauthenticated || e.Message == "" {
		t.Fatalf("refusal %v is not an Unauthenticated *apperr.Error with a message", err)
	}
	if !slices.ContainsFunc(want, func(w error) bool { return errors.Is(err, w) }) {
		t.Fatalf("refusal %v matches none of %v", err, want)
	}
	ch := jwtauth.Challenge("companias", err, "companias:write")
	for i := 0; i < len(ch); i++ {
		if ch[i] < 0x20 || ch[i] > 0x7e {
			t.Fatalf("challenge %q has the byte %#x", ch, ch[i])
		}
	}
	if !strings.HasPrefix(ch, `Bearer realm="companias"`) || strings.Count(ch, `"`)%2 != 0 {
		t.Fatalf("challenge %q is malformed", ch)
	}
	if errors.Is(err, jwtauth.ErrInvalidToken) && !strings.Contains(ch, `error="invalid_token"`) {
		t.Fatalf("challenge %q does not say invalid_token", ch)
	}
}

// rawClaims is the claims set as a client sent it.
type rawClaims struct {
	Iss   string          `json:"iss"`
	Sub   string          `json:"sub"`
	Aud   json.RawMessage `json:"aud"`
	Exp   *json.Number    `json:"exp"`
	Nbf   *json.Number    `json:"nbf"`
	Iat   *json.Number    `json:"iat"`
	Scope json.RawMessage `json:"scope"`
	Scp   json.RawMessage `json:"scp"`
}

// checkClaims checks accepted claims against the JSON they came from, with
// exact arithmetic for the times: exp is after now-leeway, nbf and iat are
// not after now+leeway, the issuer and audience are the configured ones, and
// the claims hold what the token said.
func checkClaims(t *testing.T, payload []byte, c jwtauth.Claims) {
	t.Helper()
	var p rawClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("accepted claims %q that do not decode: %v", payload, err)
	}
	now := new(big.Float).SetInt64(t0.Unix())
	lee := new(big.Float).SetFloat64(fuzzLeeway.Seconds())
	// cmp compares n with now+offset·leeway, or reports 0 within a
	// millisecond, where float rounding of the NumericDate may decide.
	cmp := func(name string, n json.Number, offset int64) int {
		x, _, err := big.ParseFloat(n.String(), 10, 128, big.ToNearestEven)
		if err != nil {
			t.Fatalf("accepted %s %s, which is not a finite number", name, n)
		}
		bound := new(big.Float).Add(now, new(big.Float).Mul(lee, new(big.Float).SetInt64(offset)))
		d, _ := new(big.Float).Sub(x, bound).Float64()
		switch {
		case d > 1e-3:
			return 1
		case d < -1e-3:
			return -1
		}
		return 0
	}
	if p.Exp == nil {
		t.Fatalf("accepted claims without exp: %s", payload)
	}
	if cmp("exp", *p.Exp, -1) < 0 {
		t.Fatalf("accepted exp %s, before now-leeway (now %d)", *p.Exp, t0.Unix())
	}
	if p.Nbf != nil && cmp("nbf", *p.Nbf, 1) > 0 {
		t.Fatalf("accepted nbf %s, after now+leeway (now %d)", *p.Nbf, t0.Unix())
	}
	if p.Iat != nil && cmp("iat", *p.Iat, 1) > 0 {
		t.Fatalf("accepted iat %s, after now+leeway (now %d)", *p.Iat, t0.Unix())
	}
	if c.Issuer != "https://idp.example" || c.Issuer != p.Iss || c.Subject != p.Sub {
		t.Fatalf("claims %+v: issuer or subject differ from %s", c, payload)
	}
	if !slices.Equal(c.Audience, list(t, p.Aud, false)) || !slices.Contains(c.Audience, "companias") {
		t.Fatalf("claims %+v: audience differs from %s or lacks companias", c, payload)
	}
	if want := append(list(t, p.Scope, true), list(t, p.Scp, true)...); !slices.Equal(c.Scopes, want) {
		t.Fatalf("claims %+v: scopes differ from %q", c, want)
	}
}

// list reads a string-or-array claim; split splits a string at white space.
func list(t *testing.T, raw json.RawMessage, split bool) []string {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if split {
			return strings.Fields(s)
		}
		return []string{s}
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatalf("accepted the claim %s, neither a string nor an array of strings", raw)
	}
	return l
}

// canonicalClaims encodes c as a claims set: times as NumericDates, the
// audience and the scopes as arrays.
func canonicalClaims(t *testing.T, c jwtauth.Claims) []byte {
	t.Helper()
	date := func(tm time.Time) json.Number {
		s := strconv.FormatInt(tm.Unix(), 10)
		if ns := tm.Nanosecond(); ns != 0 {
			s += "." + strings.TrimRight(strconv.Itoa(1e9 + ns)[1:], "0")
		}
		return json.Number(s)
	}
	m := map[string]any{"iss": c.Issuer, "sub": c.Subject, "exp": date(c.ExpiresAt)}
	if c.Audience != nil {
		m["aud"] = c.Audience
	}
	if c.Scopes != nil {
		m["scp"] = c.Scopes
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = date(c.NotBefore)
	}
	if !c.IssuedAt.IsZero() {
		m["iat"] = date(c.IssuedAt)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameClaims compares claims; times within a millisecond, the precision a
// fractional NumericDate keeps through float64.
func sameClaims(a, b jwtauth.Claims) bool {
	near := func(x, y time.Time) bool { d := x.Sub(y); return d < time.Millisecond && d > -time.Millisecond }
	return a.Subject == b.Subject && a.Issuer == b.Issuer && slices.Equal(a.Audience, b.Audience) &&
		slices.Equal(a.Scopes, b.Scopes) && near(a.ExpiresAt, b.ExpiresAt) &&
		near(a.NotBefore, b.NotBefore) && near(a.IssuedAt, b.IssuedAt)
}

// padToken signs hdr and claims with leading white space added to both so
// that the token is exactly size bytes; ok is false if it is already longer.
func padToken(hdr, claims []byte, size int) (string, bool) {
	enc := base64.RawURLEncoding
	const sigLen = 43 // an HS256 signature in unpadded base64url
	for hp := 0; hp < 3; hp++ {
		rest := size - enc.EncodedLen(len(hdr)+hp) - 2 - sigLen
		if rest < enc.EncodedLen(len(claims)) || rest%4 == 1 {
			continue // no claims length encodes to rest characters
		}
		n := rest / 4 * 3
		if rest%4 > 0 {
			n += rest%4 - 1
		}
		tok := sign(append(bytes.Repeat([]byte(" "), hp), hdr...), append(bytes.Repeat([]byte(" "), n-len(claims)), claims...))
		if len(tok) == size {
			return tok, true
		}
	}
	return "", false
}
