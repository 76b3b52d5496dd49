package jwtauth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveDoc answers every request with a JWKS document, without a network.
type serveDoc []byte

func (d serveDoc) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/jwk-set+json"}},
		Body: io.NopCloser(bytes.NewReader(d)), ContentLength: int64(len(d)), Request: r}, nil
}

// fetchDoc parses doc as the key server's answer.
func fetchDoc(doc []byte) (map[string]publicKey, error) {
	s := &keySet{url: "https://idp.test/jwks", client: &http.Client{Transport: serveDoc(doc)},
		timeout: time.Minute, now: time.Now}
	return s.fetch(context.Background())
}

// FuzzJWKS feeds arbitrary documents to the JWKS parser. A document is
// refused as a whole, or yields keys that are usable for signatures only:
// each has a kid, an RSA key of at least 2048 bits with an odd exponent (alg
// RS256 or none) or a P-256 point (alg ES256 or none). The keys re-encoded as
// a JWKS document parse to the same keys, and the document padded to the
// size limit still parses while one byte more is refused.
func FuzzJWKS(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := fetchDoc(doc)
		if err != nil {
			if keys != nil {
				t.Fatalf("keys %v with error %v", keys, err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("a document without keys was accepted")
		}
		for kid, k := range keys {
			checkKey(t, kid, k)
		}

		again, err := fetchDoc(encodeJWKS(t, keys))
		if err != nil || !sameKeys(again, keys) {
			t.Fatalf("the keys of %q re-encoded parse to %v, %v", doc, again, err)
		}

		padded := append(bytes.Repeat([]byte(" "), maxJWKSBytes-len(doc)), doc...)
		if got, err := fetchDoc(padded); err != nil || !sameKeys(got, keys) {
			t.Fatalf("the document padded to %d bytes parses to %v, %v", len(padded), got, err)
		}
		if _, err := fetchDoc(append(padded, ' ')); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("a document of %d bytes: err = %v, want it refused as too large", len(padded)+1, err)
		}
	})
}

func checkKey(t *testing.T, kid string, k publicKey) {
	t.Helper()
	if kid == "" {
		t.Fatal("accepted a key without kid")
	}
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if k.alg != "" && k.alg != RS256 {
			t.Fatalf("RSA key %q for alg %q", kid, k.alg)
		}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			t.Fatalf("weak RSA key %q: %d bits, e=%d", kid, pub.N.BitLen(), pub.E)
		}
	case *ecdsa.PublicKey:
		if k.alg != "" && k.alg != ES256 {
			t.Fatalf("EC key %q for alg %q", kid, k.alg)
		}
		b, err := pub.Bytes()
		if err != nil || pub.Curve != elliptic.P256() {
			t.Fatalf("EC key %q is not a P-256 point: %v", kid, err)
		}
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err != nil {
			t.Fatalf("EC key %q is not on P-256: %v", kid, err)
		}
	default:
		t.Fatalf("key %q of type %T", kid, k.pub)
	}
}

// encodeJWKS writes keys as a JWKS document with "use":"sig".
func encodeJWKS(t *testing.T, keys map[string]publicKey) []byte {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	var out []map[string]string
	for kid, k := range keys {
		j := map[string]string{"kid": kid, "use": "sig"}
		if k.alg != "" {
			j["alg"] = k.alg
		}
		switch pub := k.pub.(type) {
		case *rsa.PublicKey:
			j["kty"], j["n"], j["e"] = "RSA", enc(pub.N.Bytes()), enc(big.NewInt(int64(pub.E)).Bytes())
		case *ecdsa.PublicKey:
			b, err := pub.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			j["kty"], j["crv"], j["x"], j["y"] = "EC", "P-256", enc(b[1:33]), enc(b[33:])
		}
		out = append(out, j)
	}
	b, err := json.Marshal(map[string][]map[string]string{"keys": out})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameKeys(a, b map[string]publicKey) bool {
	if len(a) != len(b) {
		return false
	}
	type equaler interface{ Equal(x crypto.PublicKey) bool }
	for kid, ka := range a {
		kb, ok := b[kid]
		if !ok || ka.alg != kb.alg {
			return false
		}
		if e, ok := ka.pub.(equaler); !ok || !e.Equal(kb.pub) {
			return false
		}
	}
	return true
}
