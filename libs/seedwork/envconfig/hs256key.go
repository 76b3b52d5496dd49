package envconfig

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// The encodings of an HS256 secret (AUTH_HS256_SECRET or the content of
// AUTH_HS256_SECRET_FILE): a prefix naming the encoding, then the key.
const (
	// HS256Base64Prefix precedes a key in base64, standard or URL-safe,
	// padding optional: "base64:" + the output of `openssl rand -base64 32`.
	HS256Base64Prefix = "base64:"
	// HS256HexPrefix precedes a key in hex: "hex:" + the output of
	// `openssl rand -hex 32`.
	HS256HexPrefix = "hex:"
)

// MinHS256DistinctBytes is the fewest distinct byte values an HS256 key may
// have: 32 random bytes have about 30, a typed phrase or a pattern far fewer.
const MinHS256DistinctBytes = 16

// HS256SecretHint tells an operator what to put in an HS256 secret.
const HS256SecretHint = `put "base64:" followed by 32 or more random bytes in base64 there, ` +
	`e.g. base64:$(openssl rand -base64 32), or "hex:" followed by them in hex`

// placeholderWords are refused, in any case, in a secret's text and in its
// decoded key: they mark an example copied instead of a generated key.
var placeholderWords = []string{"change-me", "changeme", "change_me", "example", "secret", "replace", "placeholder"}

// DecodeHS256Secret returns the key that v (an AUTH_HS256_SECRET value)
// encodes: v is HS256Base64Prefix followed by base64, or HS256HexPrefix
// followed by hex, and contains no placeholder word. The error, a
// predicate to put after the variable's name, never contains v.
func DecodeHS256Secret(v string) ([]byte, error) {
	switch {
	case hasPlaceholder(v): // first: "base64:change-me" is URL-safe base64
		return nil, errors.New("holds a placeholder, not a key")
	case strings.HasPrefix(v, HS256Base64Prefix):
		b64 := strings.TrimRight(strings.TrimPrefix(v, HS256Base64Prefix), "=")
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			if key, err := enc.DecodeString(b64); err == nil {
				return key, nil
			}
		}
		return nil, fmt.Errorf("is not valid base64 after %q", HS256Base64Prefix)
	case strings.HasPrefix(v, HS256HexPrefix):
		key, err := hex.DecodeString(strings.TrimPrefix(v, HS256HexPrefix))
		if err != nil {
			return nil, fmt.Errorf("is not valid hex after %q", HS256HexPrefix)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("must start with %q or %q, the encoding of the key that follows", HS256Base64Prefix, HS256HexPrefix)
	}
}

// CheckHS256Key returns nil if key is fit to sign and verify HS256 tokens:
// at least MinHS256SecretLen bytes, at least MinHS256DistinctBytes distinct
// byte values, not a shorter pattern repeated, not a run of evenly spaced
// bytes (00 01 02 …), and free of placeholder words ("change-me",
// "example", "secret", …). The error, a predicate to put after the key's
// name ("AUTH_HS256_SECRET " + err), never contains the key.
func CheckHS256Key(key []byte) error {
	if len(key) < MinHS256SecretLen {
		return fmt.Errorf("has %d bytes of key material, want at least %d", len(key), MinHS256SecretLen)
	}
	if hasPlaceholder(string(key)) {
		return errors.New("is a placeholder, not a key")
	}
	var seen [256]bool
	distinct := 0
	for _, b := range key {
		if !seen[b] {
			seen[b], distinct = true, distinct+1
		}
	}
	if distinct < MinHS256DistinctBytes {
		return fmt.Errorf("has %d distinct byte values in its key, want at least %d: it is not random", distinct, MinHS256DistinctBytes)
	}
	for period := 1; period <= len(key)/2; period++ {
		if repeats(key, period) {
			return fmt.Errorf("repeats a %d-byte pattern: it is not random", period)
		}
	}
	if evenlySpaced(key) {
		return errors.New("is a run of evenly spaced bytes: it is not random")
	}
	return nil
}

// repeats reports whether key is its first period bytes over and over.
func repeats(key []byte, period int) bool {
	for i := period; i < len(key); i++ {
		if key[i] != key[i-period] {
			return false
		}
	}
	return true
}

// evenlySpaced reports whether each byte of key differs from the one before
// by the same amount (modulo 256).
func evenlySpaced(key []byte) bool {
	for i := 2; i < len(key); i++ {
		if key[i]-key[i-1] != key[1]-key[0] {
			return false
		}
	}
	return true
}

// hasPlaceholder reports whether s contains a placeholder word, in any case.
func hasPlaceholder(s string) bool {
	s = strings.ToLower(s)
	for _, w := range placeholderWords {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
