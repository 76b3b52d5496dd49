package jwtauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// header is the part of the JOSE header this package reads.
type header struct {
	Alg  string   `json:"alg"`
	Kid  any      `json:"kid"`
	Typ  *string  `json:"typ"`
	Crit []string `json:"crit"`
}

// precheck refuses, before the jwt parser runs, what that parser accepts
// but this service must not: a header or claims set that is not exactly
// one JSON object, or that repeats a member name (encoding/json keeps the
// last one, so {"aud":"other","aud":"ours"} would pass as "ours" here and
// as "other" for a parser keeping the first); crit parameters (RFC 7515
// §4.1.11: none is understood here); a typ other than JWT or at+jwt
// (RFC 9068); and an alg outside algs, with messages a client can act on.
func precheck(raw string, algs []string) (header, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return header{}, invalid("the token is not a signed JWT (three base64url parts)", nil)
	}
	hb, err := decodeSegment(parts[0])
	if err != nil {
		return header{}, invalid("the token header is not base64url", err)
	}
	var h header
	if err := strictObject(hb, &h); err != nil {
		return header{}, invalid("the token header is malformed", err)
	}
	if h.Alg == "" || strings.EqualFold(h.Alg, "none") {
		return header{}, invalid("unsigned tokens are not accepted", nil)
	}
	if !contains(algs, h.Alg) {
		return header{}, invalid(fmt.Sprintf("the token algorithm %q is not accepted", clip(h.Alg)), nil)
	}
	if h.Crit != nil {
		return header{}, invalid("the token has critical header parameters this service does not understand", nil)
	}
	if h.Typ != nil && !acceptedTyp(*h.Typ) {
		return header{}, invalid(fmt.Sprintf("the token type %q is not a JWT", clip(*h.Typ)), nil)
	}
	if _, ok := h.Kid.(string); h.Kid != nil && !ok {
		return header{}, invalid("the token kid header is not a string", nil)
	}
	cb, err := decodeSegment(parts[1])
	if err != nil {
		return header{}, invalid("the token claims are not base64url", err)
	}
	if err := strictObject(cb, nil); err != nil {
		return header{}, invalid("the token claims are malformed", err)
	}
	if _, err := decodeSegment(parts[2]); err != nil {
		return header{}, invalid("the token signature is not base64url", err)
	}
	return h, nil
}

// acceptedTyp reports whether typ names a JWT (RFC 7519 §5.1) or an OAuth
// access token (RFC 9068 §2.1), in any case.
func acceptedTyp(typ string) bool {
	for _, ok := range []string{"JWT", "at+jwt", "application/at+jwt"} {
		if strings.EqualFold(typ, ok) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// decodeSegment decodes one unpadded base64url segment, refusing stray bits.
func decodeSegment(seg string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(seg)
}

// strictObject checks that b is one JSON object whose member names are
// distinct (compared case-insensitively, as encoding/json matches them to
// struct fields) followed by nothing but white space, and decodes it into
// v unless v is nil.
func strictObject(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		key := strings.ToLower(strings.ToUpper(name))
		if seen[key] {
			return fmt.Errorf("member %q appears twice", clip(name))
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	if v == nil {
		return nil
	}
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// claimError is a claim of the wrong type; msg is client-safe.
type claimError struct{ msg string }

func (e *claimError) Error() string { return e.msg }

// tokenClaims is the claims set as the jwt parser decodes it. It
// implements jwt.Claims so that the parser's validator checks exp, nbf,
// iat, iss and aud; the dates are parsed here (see numericDate).
type tokenClaims struct {
	iss, sub      string
	aud           jwt.ClaimStrings
	exp, nbf, iat *jwt.NumericDate
	scope, scp    json.RawMessage
}

// UnmarshalJSON decodes the claims this package reads; any of them of the
// wrong type is a *claimError.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	var p struct {
		Iss   json.RawMessage `json:"iss"`
		Sub   json.RawMessage `json:"sub"`
		Aud   json.RawMessage `json:"aud"`
		Exp   json.RawMessage `json:"exp"`
		Nbf   json.RawMessage `json:"nbf"`
		Iat   json.RawMessage `json:"iat"`
		Scope json.RawMessage `json:"scope"`
		Scp   json.RawMessage `json:"scp"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return &claimError{"the token claims are malformed"}
	}
	var err error
	if c.iss, err = stringClaim(p.Iss); err != nil {
		return &claimError{"the token iss claim is malformed"}
	}
	if c.sub, err = stringClaim(p.Sub); err != nil {
		return &claimError{"the token sub claim is malformed"}
	}
	aud, err := stringOrList(p.Aud, false)
	if err != nil {
		return &claimError{"the token aud claim is malformed"}
	}
	c.aud = aud
	for _, d := range []struct {
		name string
		raw  json.RawMessage
		dst  **jwt.NumericDate
	}{{"exp", p.Exp, &c.exp}, {"nbf", p.Nbf, &c.nbf}, {"iat", p.Iat, &c.iat}} {
		if isAbsent(d.raw) {
			continue
		}
		t, err := numericDate(d.raw)
		if err != nil {
			return &claimError{fmt.Sprintf("the token %s claim is malformed (not a NumericDate in range)", d.name)}
		}
		*d.dst = &jwt.NumericDate{Time: t}
	}
	c.scope, c.scp = p.Scope, p.Scp
	return nil
}

// GetExpirationTime implements jwt.Claims.
func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.exp, nil }

// GetNotBefore implements jwt.Claims.
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.nbf, nil }

// GetIssuedAt implements jwt.Claims.
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.iat, nil }

// GetAudience implements jwt.Claims.
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) { return c.aud, nil }

// GetIssuer implements jwt.Claims.
func (c *tokenClaims) GetIssuer() (string, error) { return c.iss, nil }

// GetSubject implements jwt.Claims.
func (c *tokenClaims) GetSubject() (string, error) { return c.sub, nil }

// claims returns the verified claims, with the scopes parsed.
func (c *tokenClaims) claims() (Claims, error) {
	out := Claims{Subject: c.sub, Issuer: c.iss, Audience: c.aud}
	if c.exp == nil { // WithExpirationRequired makes this unreachable
		return Claims{}, invalid("the token has no exp claim", nil)
	}
	out.ExpiresAt = c.exp.Time
	if c.nbf != nil {
		out.NotBefore = c.nbf.Time
	}
	if c.iat != nil {
		out.IssuedAt = c.iat.Time
	}
	scope, err := stringOrList(c.scope, true)
	if err != nil {
		return Claims{}, invalid("the token scope claim is malformed", err)
	}
	scp, err := stringOrList(c.scp, true)
	if err != nil {
		return Claims{}, invalid("the token scp claim is malformed", err)
	}
	out.Scopes = append(scope, scp...)
	return out, nil
}

// maxNumericDate bounds a NumericDate: 2^40 seconds is past the year 36000,
// and keeps a date and its leeway arithmetic inside time.Time's range.
// jwt.NumericDate's own decoding converts the float to int64 unchecked, so
// that an nbf near 2^63 could wrap around into the past; and it truncates
// fractions to jwt.TimePrecision, a package variable.
const maxNumericDate = 1 << 40

// numericDate parses a JSON number of seconds since the epoch (fractions
// allowed), from 0 to maxNumericDate.
func numericDate(raw json.RawMessage) (time.Time, error) {
	var n json.Number
	if len(raw) > 0 && raw[0] == '"' { // encoding/json would accept "123"
		return time.Time{}, errors.New("NumericDate is a string")
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, err
	}
	if i, err := n.Int64(); err == nil {
		if i < 0 || i > maxNumericDate {
			return time.Time{}, fmt.Errorf("NumericDate %q is out of range", n)
		}
		return time.Unix(i, 0), nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("bad NumericDate %q", n)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

func isAbsent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// stringClaim decodes a string claim; absent or null is "".
func stringClaim(raw json.RawMessage) (string, error) {
	if isAbsent(raw) {
		return "", nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// stringOrList decodes a claim that is a string or an array of strings;
// split splits strings at spaces (scope), else a string is one value (aud).
func stringOrList(raw json.RawMessage, split bool) ([]string, error) {
	if isAbsent(raw) {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if split {
			return strings.Fields(s), nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("want a string or an array of strings")
	}
	return list, nil
}
