package httpapi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/httpkit"
	"github.com/propalpes/companias/services/command/internal/domain/compania"
)

// Fuzz targets of the request parts the handlers read besides the body: the
// path id, Content-Type, If-Match, Idempotency-Key, X-Request-Id and
// traceparent. Seeds are in testdata/fuzz/<FuzzName>/. A header argument
// holds one header line per "\n"-separated part; "" means no header.

// headerLines splits a fuzzed header into its lines, none for "".
func headerLines(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, "\n")
}

// fuzzEngine returns an engine for the fuzz targets' contexts, in release
// mode like the one New builds.
func fuzzEngine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	return gin.New()
}

// changeContext is a PATCH of company id on engine with the given headers
// and body; contentLength -1 sends the body without a declared length.
func changeContext(engine *gin.Engine, id, contentType, ifMatch string, body []byte, contentLength int64) *gin.Context {
	c := gin.CreateTestContextOnly(httptest.NewRecorder(), engine)
	r := httptest.NewRequest(http.MethodPatch, "/v1/companias/id", bytes.NewReader(body))
	r.ContentLength = contentLength
	if contentType != "" {
		r.Header["Content-Type"] = []string{contentType}
	}
	if lines := headerLines(ifMatch); lines != nil {
		r.Header["If-Match"] = lines
	}
	c.Request = r
	c.Params = gin.Params{{Key: "id", Value: id}}
	return c
}

// FuzzReadChange reads the parts every change of a company shares. Each
// part is accepted or refused with its own status, in one order: a path id
// that is not a UUID is a 404 (compania.ErrNotFound), an unsupported media
// type a 415 with Accept-Patch, a bad If-Match a 400 or 412, and a body over
// MaxBodyBytes a 413, declared or not. What is accepted is the lower-case
// UUID, the If-Match version and the body bytes unchanged.
func FuzzReadChange(f *testing.F) {
	medias := []string{mediaJSON, mediaMergePatch}
	engine := fuzzEngine()
	f.Fuzz(func(t *testing.T, id, contentType, ifMatch string, body []byte) {
		if len(body) > MaxBodyBytes {
			return // the padding below covers larger bodies
		}
		tgt, got, err := readChange(changeContext(engine, id, contentType, ifMatch, body, int64(len(body))), medias...)

		// The first part that fails decides the answer.
		ifMatchHeader := http.Header{"If-Match": headerLines(ifMatch)}
		wantVersion, ifMatchErr := expectedVersion(ifMatchHeader)
		mt, params, mtErr := mime.ParseMediaType(contentType)
		mediaOK := contentType != "" && mtErr == nil && slices.Contains(medias, mt)
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			mediaOK = false
		}
		p := httpkit.Problem(err)
		switch {
		case !compania.ValidID(id):
			if !errors.Is(err, compania.ErrNotFound) || p.Status != http.StatusNotFound {
				t.Fatalf("path id %q: err = %v (%d), want a 404 not found", id, err, p.Status)
			}
		case !mediaOK:
			var re *httpkit.Error
			if !errors.As(err, &re) || p.Status != http.StatusUnsupportedMediaType || p.Code != codeUnsupported ||
				re.Header.Get("Accept-Patch") != mediaJSON+", "+mediaMergePatch {
				t.Fatalf("Content-Type %q: err = %v (%d), want a 415 with Accept-Patch", contentType, err, p.Status)
			}
		case ifMatchErr != nil:
			if s := httpkit.Problem(ifMatchErr).Status; p.Status != s || (s != http.StatusBadRequest && s != http.StatusPreconditionFailed) {
				t.Fatalf("If-Match %q: err = %v (%d), want the 400 or 412 of %v", ifMatch, err, p.Status, ifMatchErr)
			}
		default:
			if err != nil {
				t.Fatalf("valid change (%q, %q, %q) refused: %v", id, contentType, ifMatch, err)
			}
			if tgt.id != strings.ToLower(id) || tgt.expected != wantVersion || !bytes.Equal(got, body) {
				t.Fatalf("read %+v and %q from id %q, If-Match %q and body %q", tgt, got, id, ifMatch, body)
			}
			checkBodyLimit(t, engine, id, contentType, ifMatch, body)
		}
		if err != nil && (tgt != target{} || got != nil) {
			t.Fatalf("readChange returned %+v and %q with error %v", tgt, got, err)
		}
	})
}

// checkBodyLimit pads an accepted body with white space: at MaxBodyBytes it
// is read whole, one byte more is a 413 whether its length is declared or not.
func checkBodyLimit(t *testing.T, engine *gin.Engine, id, contentType, ifMatch string, body []byte) {
	t.Helper()
	padded := slices.Concat(body, bytes.Repeat([]byte(" "), MaxBodyBytes-len(body)))
	if _, got, err := readChange(changeContext(engine, id, contentType, ifMatch, padded, -1)); err != nil || !bytes.Equal(got, padded) {
		t.Fatalf("a body of MaxBodyBytes: err = %v, %d bytes read", err, len(got))
	}
	padded = append(padded, ' ')
	for _, declared := range []int64{int64(len(padded)), -1} {
		_, _, err := readChange(changeContext(engine, id, contentType, ifMatch, padded, declared))
		if p := httpkit.Problem(err); p.Status != http.StatusRequestEntityTooLarge || p.Code != codeTooLarge {
			t.Fatalf("a body of MaxBodyBytes+1 (declared length %d): err = %v (%d), want a 413", declared, err, p.Status)
		}
	}
}

// FuzzIfMatch parses If-Match (one header line per "\n"). A refusal is a 400
// (invalid_if_match) or, for tags that can never match, a 412
// (compania.ErrVersionMismatch). An accepted header is "*" (version 0) or names
// exactly one version as a strong tag, which is what its canonical form
// names too; the parsed list survives being written back.
func FuzzIfMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, header string) {
		lines := headerLines(header)
		h := http.Header{"If-Match": lines}
		v, err := expectedVersion(h)
		tags, star, ok := parseIfMatch(strings.Join(lines, ","))
		if err != nil {
			p := httpkit.Problem(err)
			switch {
			case p.Status == http.StatusBadRequest && p.Code == "invalid_if_match":
			case p.Status == http.StatusPreconditionFailed && errors.Is(err, compania.ErrVersionMismatch):
				if !ok || star {
					t.Fatalf("If-Match %q: a 412 for a header that does not parse as tags", header)
				}
			default:
				t.Fatalf("If-Match %q: err = %v (%d), want a 400 or a 412", header, err, p.Status)
			}
			if v != 0 {
				t.Fatalf("If-Match %q: version %d with error %v", header, v, err)
			}
			return
		}
		switch {
		case lines == nil:
			if v != 0 {
				t.Fatalf("no If-Match: version %d", v)
			}
			return
		case v == 0:
			if !ok || !star || len(tags) > 0 {
				t.Fatalf("If-Match %q: version 0 without a lone *", header)
			}
		default:
			for _, tg := range tags {
				if n, isVersion := parseVersion(tg.opaque); !tg.weak && isVersion && n != v {
					t.Fatalf("If-Match %q: version %d, but it also names %d", header, v, n)
				}
			}
			if !slices.Contains(tags, entityTag{opaque: strconv.FormatInt(v, 10)}) {
				t.Fatalf("If-Match %q: version %d is not one of its strong tags %+v", header, v, tags)
			}
			if again, err := expectedVersion(http.Header{"If-Match": {etag(v)}}); err != nil || again != v {
				t.Fatalf("If-Match %s (canonical of %q) = %d, %v; want %d", etag(v), header, again, err, v)
			}
		}
		var parts []string
		if star {
			parts = append(parts, "*")
		}
		for _, tg := range tags {
			s := `"` + tg.opaque + `"`
			if tg.weak {
				s = "W/" + s
			}
			parts = append(parts, s)
		}
		tags2, star2, ok2 := parseIfMatch(strings.Join(parts, ", "))
		if !ok2 || star2 != star || !slices.Equal(tags2, tags) {
			t.Fatalf("If-Match %q written back as %q parses to %+v %v %v", header, parts, tags2, star2, ok2)
		}
	})
}

// FuzzIdempotencyKey reads the Idempotency-Key header, sent once or twice.
// An accepted key is the header as sent, 1 to 255 visible ASCII characters,
// and becomes the command's key; anything else is a 400
// invalid_idempotency_key. The length limit holds at 255/256 characters.
func FuzzIdempotencyKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, key string, twice bool) {
		h := http.Header{}
		h.Add(headerIdempotencyKey, key)
		if twice {
			h.Add(headerIdempotencyKey, key)
		}
		k, err := idempotencyKey(h)
		if err != nil {
			if p := httpkit.Problem(err); p.Status != http.StatusBadRequest || p.Code != "invalid_idempotency_key" || k != "" {
				t.Fatalf("key %q: %q, err = %v (%d), want a 400 invalid_idempotency_key", key, k, err, p.Status)
			}
			return
		}
		if twice || k != key || len(k) < 1 || len(k) > maxIdempotencyKeyLen || !visibleASCII(k) {
			t.Fatalf("key %q (twice %v) accepted as %q", key, twice, k)
		}
		idem, err := idempotency(ScopeCrear, k, crearRequest{Nombre: "x"})
		if err != nil || idem == nil || idem.Key != k || idem.Scope != ScopeCrear || len(idem.RequestHash) != 32 {
			t.Fatalf("key %q: idempotency %+v, %v", k, idem, err)
		}
		long := key + strings.Repeat("k", maxIdempotencyKeyLen-len(key))
		if got, err := idempotencyKey(http.Header{headerIdempotencyKey: {long}}); err != nil || got != long {
			t.Fatalf("a key of %d characters: %q, %v", len(long), got, err)
		}
		if _, err := idempotencyKey(http.Header{headerIdempotencyKey: {long + "k"}}); err == nil {
			t.Fatalf("a key of %d characters was accepted", len(long)+1)
		}
	})
}

// FuzzCallerScope checks that the caller scope of a token is a fixed-size
// digest of its (issuer, subject) pair: it never shows the subject, and
// moving bytes between issuer and subject changes it.
func FuzzCallerScope(f *testing.F) {
	f.Fuzz(func(t *testing.T, iss, sub string) {
		s := callerScope(iss, sub)
		digest, ok := strings.CutPrefix(s, "sub:")
		if _, err := hex.DecodeString(digest); !ok || len(digest) != 64 || err != nil {
			t.Fatalf("callerScope(%q, %q) = %q, want sub: and 64 hex digits", iss, sub, s)
		}
		if s != callerScope(iss, sub) {
			t.Fatal("callerScope is not deterministic")
		}
		if sub != "" && callerScope(iss+sub[:1], sub[1:]) == s {
			t.Fatalf("(%q, %q) and (%q, %q) share a scope", iss, sub, iss+sub[:1], sub[1:])
		}
		if callerScope(sub, iss) == s && iss != sub {
			t.Fatalf("(%q, %q) and its swap share a scope", iss, sub)
		}
	})
}
