package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/MicahParks/jwkset"

	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// maxJWKSBytes bounds the JWKS document read from the key server.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
const minRSABits = 2048

// maxRedirects bounds the same-host redirects a JWKS fetch follows.
const maxRedirects = 5

// publicKey is one usable key of the set.
type publicKey struct {
	alg string // the JWK's alg member, if any: the only alg it may verify
	pub crypto.PublicKey
}

// fits reports whether the key's type is the one alg needs.
func (k publicKey) fits(alg string) bool {
	switch alg {
	case RS256:
		_, ok := k.pub.(*rsa.PublicKey)
		return ok
	case ES256:
		p, ok := k.pub.(*ecdsa.PublicKey)
		return ok && p.Curve == elliptic.P256()
	}
	return false
}

// jwksClient returns a copy of c (or of a zero client) whose redirect
// policy keeps a fetch on the host it started at and on https when it
// started there (http only to a loopback host), with at most maxRedirects
// hops: a key server must not be able to send the verifier elsewhere for
// its keys.
func jwksClient(c *http.Client) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	next := out.CheckRedirect
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		switch {
		case req.URL.Host != first.Host:
			return fmt.Errorf("jwks redirect to another host (%s) refused", req.URL.Host)
		case envconfig.CheckJWKSURL(req.URL.String()) != nil:
			return fmt.Errorf("jwks redirect to %s refused: not https", req.URL.Redacted())
		case len(via) > maxRedirects:
			return fmt.Errorf("jwks: stopped after %d redirects", maxRedirects)
		case next != nil:
			return next(req, via)
		}
		return nil
	}
	return out
}

// fetch downloads and parses the JWKS within s.timeout.
func (s *keySet) fetch(ctx context.Context) (map[string]publicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("read jwks: document larger than 1 MiB")
	}
	return parseJWKS(body)
}

// parseJWKS decodes a JWKS document with jwkset and keeps, by kid (the last
// of a repeated kid wins), the keys usable for RS256 or ES256 signatures.
// Keys without kid, with use other than sig, of another type or that fail
// validation are skipped; a document without any usable key is an error.
func parseJWKS(doc []byte) (map[string]publicKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := map[string]publicKey{}
	for _, m := range set.Keys {
		if m.KID == "" || (m.USE != "" && m.USE != jwkset.UseSig) {
			continue
		}
		if k, err := usableKey(m); err == nil {
			keys[m.KID] = k
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("decode jwks: no usable RS256 or ES256 key")
	}
	return keys, nil
}

// usableKey returns the public key of an RSA (RS256, at least minRSABits,
// odd exponent of at least 3) or P-256 (ES256) JWK. Only the public members
// reach jwkset: private members published by mistake are ignored, and the
// x5u/x5c members are dropped so that validating a key never dials out.
func usableKey(m jwkset.JWKMarshal) (publicKey, error) {
	pub := jwkset.JWKMarshal{KTY: m.KTY, USE: m.USE, KEYOPS: m.KEYOPS, ALG: m.ALG, KID: m.KID}
	switch {
	case m.KTY == jwkset.KtyRSA && (m.ALG == "" || m.ALG == jwkset.AlgRS256):
		pub.N, pub.E = m.N, m.E
	case m.KTY == jwkset.KtyEC && m.CRV == jwkset.CrvP256 && (m.ALG == "" || m.ALG == jwkset.AlgES256):
		pub.CRV, pub.X, pub.Y = m.CRV, m.X, m.Y
	default:
		return publicKey{}, fmt.Errorf("unsupported kty %q / crv %q / alg %q", m.KTY, m.CRV, m.ALG)
	}
	jwk, err := jwkset.NewJWKFromMarshal(pub, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return publicKey{}, err
	}
	switch k := jwk.Key().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits || k.E < 3 || k.E%2 == 0 {
			return publicKey{}, errors.New("weak or malformed RSA key")
		}
		return publicKey{alg: string(m.ALG), pub: k}, nil
	case *ecdsa.PublicKey:
		// RFC 7518 §6.2.1.2: x and y are the full 32 bytes. Rebuilt
		// through crypto/ecdsa, which checks the point is on the curve.
		x, errX := base64.RawURLEncoding.Strict().DecodeString(m.X)
		y, errY := base64.RawURLEncoding.Strict().DecodeString(m.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("malformed P-256 coordinates")
		}
		p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, err
		}
		return publicKey{alg: string(m.ALG), pub: p}, nil
	}
	return publicKey{}, fmt.Errorf("unsupported key %T", jwk.Key())
}
