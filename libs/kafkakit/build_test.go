package kafkakit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/propalpes/companias/libs/kafkakit"
)

// writeSelfSigned writes a self-signed ECDSA certificate and its key as PEM
// files in dir and returns their paths.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kafkakit test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("disabled gives nil", func(t *testing.T) {
		t.Parallel()
		got, err := kafkakit.Config{TLS: kafkakit.TLS{CAFile: cert}}.TLSConfig()
		if got != nil || err != nil {
			t.Errorf("TLSConfig() = %v, %v; want nil, nil", got, err)
		}
	})
	t.Run("CA, client pair and server name", func(t *testing.T) {
		t.Parallel()
		got, err := kafkakit.Config{TLS: kafkakit.TLS{Enabled: true, CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "kafka.internal"}}.TLSConfig()
		if err != nil {
			t.Fatalf("TLSConfig: %v", err)
		}
		if got.RootCAs == nil || len(got.Certificates) != 1 || got.ServerName != "kafka.internal" || got.InsecureSkipVerify || got.MinVersion == 0 {
			t.Errorf("TLSConfig() = RootCAs %v, %d certificates, ServerName %q, InsecureSkipVerify %v, MinVersion %x",
				got.RootCAs != nil, len(got.Certificates), got.ServerName, got.InsecureSkipVerify, got.MinVersion)
		}
	})
	bad := []struct {
		name string
		tls  kafkakit.TLS
		want string
	}{
		{"missing CA file", kafkakit.TLS{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}, "KAFKA_TLS_CA_FILE: open"},
		{"CA file without PEM", kafkakit.TLS{Enabled: true, CAFile: notPEM}, "KAFKA_TLS_CA_FILE: " + notPEM + " holds no PEM certificate"},
		{"key that is not a key", kafkakit.TLS{Enabled: true, CertFile: cert, KeyFile: notPEM}, "KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE:"},
		{"certificate without key", kafkakit.TLS{Enabled: true, CertFile: cert}, "KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE must be set together"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := kafkakit.Config{TLS: tt.tls}.TLSConfig()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("TLSConfig: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSASLMechanism(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mech     kafkakit.Mechanism
		wantName string // "" for no mechanism
		wantErr  bool
	}{
		{kafkakit.MechanismNone, "", false},
		{kafkakit.MechanismPlain, "PLAIN", false},
		{kafkakit.MechanismSCRAMSHA256, "SCRAM-SHA-256", false},
		{kafkakit.MechanismSCRAMSHA512, "SCRAM-SHA-512", false},
		{"OAUTHBEARER", "", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.mech), func(t *testing.T) {
			t.Parallel()
			m, err := kafkakit.Config{SASL: kafkakit.SASL{Mechanism: tt.mech, Username: "u", Password: "p"}}.SASLMechanism()
			if (err != nil) != tt.wantErr {
				t.Fatalf("SASLMechanism: error %v, want error %v", err, tt.wantErr)
			}
			name := ""
			if m != nil {
				name = m.Name()
			}
			if name != tt.wantName {
				t.Errorf("SASLMechanism().Name() = %q, want %q", name, tt.wantName)
			}
		})
	}
}

// firstByte accepts one connection on a loopback listener and returns a
// channel that receives the first byte the client sends.
func firstByte(t *testing.T) (addr string, got <-chan byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ch := make(chan byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		b := make([]byte, 1)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(b); err == nil {
			ch <- b[0]
		}
	}()
	return ln.Addr().String(), ch
}

// TestDialWrapperIsBelowTLS checks that Transport and Dialer use the dial
// wrapper, and that what it dials is the raw connection: the first byte the
// broker sees is a TLS handshake record (0x16), sent by the client on top
// of the wrapped connection.
func TestDialWrapperIsBelowTLS(t *testing.T) {
	t.Parallel()
	const tlsHandshake = 0x16
	cfg := kafkakit.Config{ClientID: "kit-test", TLS: kafkakit.TLS{Enabled: true, InsecureSkipVerify: true}}
	for _, kind := range []string{"Transport", "Dialer"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			addr, first := firstByte(t)
			var dialed atomic.Value
			wrap := kafkakit.WithDialWrapper(func(next kafkakit.DialFunc) kafkakit.DialFunc {
				return func(ctx context.Context, network, address string) (net.Conn, error) {
					dialed.Store(address)
					return next(ctx, network, address)
				}
			})
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			switch kind {
			case "Transport":
				tr, err := cfg.Transport(wrap, kafkakit.WithDialTimeout(2*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				defer tr.CloseIdleConnections()
				client := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
				_, _ = client.Metadata(ctx, &kafka.MetadataRequest{}) // the server never answers the handshake
			case "Dialer":
				d, err := cfg.Dialer(wrap, kafkakit.WithDialTimeout(2*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				if conn, err := d.DialContext(ctx, "tcp", addr); err == nil {
					_ = conn.Close()
				}
			}
			if got, _ := dialed.Load().(string); got != addr {
				t.Errorf("the wrapper dialed %q, want %q", got, addr)
			}
			select {
			case b := <-first:
				if b != tlsHandshake {
					t.Errorf("first byte on the wire = %#x, want a TLS handshake record %#x", b, tlsHandshake)
				}
			case <-ctx.Done():
				t.Fatal("the listener saw no byte")
			}
		})
	}
}

func TestBuildersRejectAnUnknownMechanism(t *testing.T) {
	t.Parallel()
	cfg := kafkakit.Config{SASL: kafkakit.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}
	if _, err := cfg.Transport(); err == nil || !strings.Contains(err.Error(), "KAFKA_SASL_MECHANISM") {
		t.Errorf("Transport: %v, want an error naming KAFKA_SASL_MECHANISM", err)
	}
	if _, err := cfg.Dialer(); err == nil || !strings.Contains(err.Error(), "KAFKA_SASL_MECHANISM") {
		t.Errorf("Dialer: %v, want an error naming KAFKA_SASL_MECHANISM", err)
	}
}
