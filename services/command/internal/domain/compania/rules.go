package compania

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The free-text fields (nombre, motivo, email) are stored in Unicode
// Normalization Form C. Canonically equivalent spellings, such as "ñ" as
// one code point (U+00F1) or as "n" and a combining tilde (U+006E U+0303),
// render alike; without one form, the case-insensitive uniqueness of
// (nombre, identificacion), which PostgreSQL enforces on lower(nombre),
// would let a look-alike duplicate in. NFC is lossless (canonical
// equivalence only, unlike NFKC), and is what most input methods send.
//
// They must also not contain characters that change how text is shown or
// compared without being seen: controls (Cc), line and paragraph
// separators (Zl, Zp) and format characters (Cf: bidi embeddings,
// overrides and isolates U+202A–U+202E and U+2066–U+2069, the marks
// U+200E/U+200F/U+061C, zero-width U+200B–U+200D and U+2060, U+FEFF, the
// soft hyphen, tag characters…). Zero-width joiners have uses in some
// scripts and emoji sequences; a company name or a rejection reason does
// not need them, and they are how two visibly equal names differ.
//
// The messages never quote the value: names and reasons may be personal
// data, and the messages reach logs and problem bodies.

// normalizeText returns s in NFC, trimmed of white space; it must be valid
// UTF-8 and hold 1 to maxLen characters (counted in NFC) and no invisible
// characters (see refuseInvisible).
func normalizeText(s, what string, maxLen int) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("must be valid UTF-8")
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", fmt.Errorf("%s is required", what)
	}
	if n > maxLen {
		return "", fmt.Errorf("must be at most %d characters", maxLen)
	}
	if err := refuseInvisible(s); err != nil {
		return "", err
	}
	return s, nil
}

// refuseInvisible reports the first control, separator or format character
// of s, by its class only.
func refuseInvisible(s string) error {
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return errors.New("must not contain control characters")
		case unicode.In(r, unicode.Zl, unicode.Zp):
			return errors.New("must not contain line or paragraph separators")
		case unicode.Is(unicode.Cf, r):
			return errors.New("must not contain invisible format characters (bidi controls, zero-width characters)")
		}
	}
	return nil
}

func normalizeNombre(s string) (string, error) { return normalizeText(s, "nombre", MaxNombre) }

func normalizeMotivo(s string) (string, error) { return normalizeText(s, "motivo", MaxMotivo) }

func normalizeIdentificacion(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("identificacion is required")
	}
	if len(s) > MaxIdentificacion {
		return "", fmt.Errorf("must be at most %d characters", MaxIdentificacion)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return "", errors.New("may contain only letters, digits and '-'")
		}
	}
	return s, nil
}

// normalizeEmail accepts a bare RFC 5322 addr-spec with a domain part: no
// display name, no comments, no spaces. It is also what the event contract's
// "format": "email" (JSON Schema, RFC 5321 Mailbox) accepts, which readers
// assert: ASCII only, a local part of at most 64 bytes, and a domain of
// hostname labels (1 to 63 letters, digits or '-', not at either end).
// The value is put in NFC and refused if it holds invisible characters
// first, so that such an address gets that precise message.
func normalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("must be valid UTF-8")
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	if s == "" {
		return "", errors.New("email is required")
	}
	if len(s) > MaxEmail {
		return "", fmt.Errorf("must be at most %d characters", MaxEmail)
	}
	if err := refuseInvisible(s); err != nil {
		return "", err
	}
	bad := errors.New("must be a valid email address")
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", bad
	}
	if strings.ContainsAny(s, " \t\"()<>[]\\,;:") {
		return "", bad
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", bad
	}
	if len(local) > maxEmailLocal || !isASCII(local) {
		return "", bad
	}
	for _, label := range strings.Split(domain, ".") {
		if !isHostnameLabel(label) {
			return "", bad
		}
	}
	return s, nil
}

// maxEmailLocal bounds the local part of an email (RFC 5321 4.5.3.1.1).
const maxEmailLocal = 64

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isHostnameLabel reports whether s is a DNS hostname label (RFC 1123).
func isHostnameLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
