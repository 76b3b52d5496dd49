package httpkittest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/propalpes/companias/libs/httpkit/httpkittest"
	"github.com/propalpes/companias/libs/jwtauth"
)

func TestMintHS256(t *testing.T) {
	t.Parallel()
	secret := httpkittest.HS256Key()
	v, err := jwtauth.New(jwtauth.Config{HS256Secret: secret, Audience: "aud"})
	if err != nil {
		t.Fatal(err)
	}
	tok := httpkittest.MintHS256(t, secret, map[string]any{"sub": "alice", "aud": "aud", "scope": "a b", "exp": time.Now().Add(time.Hour).Unix()})
	c, err := v.Verify(context.Background(), tok)
	if err != nil || c.Subject != "alice" || !c.HasScope("b") {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
}

func TestWantMetrics(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("a_total 1\nb_total 2\n"))
	})
	if body := httpkittest.WantMetrics(t, h, "a_total 1", "b_total 2"); body != "a_total 1\nb_total 2\n" {
		t.Errorf("body = %q", body)
	}
}
