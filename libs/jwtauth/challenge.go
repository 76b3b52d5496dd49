package jwtauth

import (
	"fmt"
	"strings"

	"github.com/propalpes/companias/libs/seedwork/apperr"
)

// RequireScope returns nil if c has scope, else an error of kind
// apperr.Forbidden matching ErrInsufficientScope.
func RequireScope(c Claims, scope string) error {
	if c.HasScope(scope) {
		return nil
	}
	return &apperr.Error{Kind: apperr.Forbidden, Code: CodeInsufficientScope,
		Message: fmt.Sprintf("the bearer token lacks the %s scope", scope)}
}

// FromHeader extracts the token of an Authorization header value
// ("Bearer <token>", the scheme in any case). It returns ErrNoToken when
// the header is empty or uses another scheme, and an invalid_token error
// when the Bearer credentials are empty or contain spaces.
func FromHeader(authorization string) (string, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", invalid("the Authorization header does not hold one bearer token", nil)
	}
	return token, nil
}

// NeedsChallenge reports whether err calls for a WWW-Authenticate header:
// it is of kind apperr.Unauthenticated or apperr.Forbidden.
func NeedsChallenge(err error) bool {
	k := apperr.KindOf(err)
	return k == apperr.Unauthenticated || k == apperr.Forbidden
}

// Challenge returns the RFC 6750 WWW-Authenticate value answering err:
// `Bearer realm="…"` when no token was sent, with error="invalid_token" and
// a description when a token was refused, and with
// error="insufficient_scope" and scope="…" (the scope argument) when one
// was missing.
func Challenge(realm string, err error, scope string) string {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(quote(realm))
	e, ok := apperr.As(err)
	if !ok || e.Code == CodeNoToken {
		return b.String()
	}
	switch e.Code {
	case CodeInvalidToken:
		b.WriteString(`, error="invalid_token", error_description=`)
		b.WriteString(quote(e.Message))
	case CodeInsufficientScope:
		b.WriteString(`, error="insufficient_scope", error_description=`)
		b.WriteString(quote(e.Message))
		if scope != "" {
			b.WriteString(", scope=")
			b.WriteString(quote(scope))
		}
	}
	return b.String()
}

// quote makes s an RFC 9110 quoted-string of the characters RFC 6750 allows
// in its attributes (%x20-21 / %x23-5B / %x5D-7E): others become '?'.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			c = '?'
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}
