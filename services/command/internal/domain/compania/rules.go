package compania

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

func normalizeText(s, what string, maxLen int) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("must be valid UTF-8")
	}
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", fmt.Errorf("%s is required", what)
	}
	if n > maxLen {
		return "", fmt.Errorf("must be at most %d characters", maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", errors.New("must not contain control characters")
		}
	}
	return s, nil
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
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("email is required")
	}
	if len(s) > MaxEmail {
		return "", fmt.Errorf("must be at most %d characters", MaxEmail)
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
