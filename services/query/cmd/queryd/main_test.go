package main

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/propalpes/companias/libs/seedwork/cli"
	"github.com/propalpes/companias/libs/telemetry/buildinfo"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // as main sets release mode: no route listing
	os.Exit(m.Run())
}

func createTemp(t *testing.T) (*os.File, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

// envFrom reads m; METRICS_ADDR, unless m sets it, is a free loopback port
// (the default 127.0.0.1:9091 would collide between parallel tests).
func envFrom(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok || k != "METRICS_ADDR" {
			return v
		}
		return "127.0.0.1:0"
	}
}

func TestRunCommandLine(t *testing.T) {
	t.Parallel()
	badEnv := map[string]string{"KAFKA_BROKERS": closedAddr(t), "MONGO_URI": "nope", "HTTP_ADDR": "not an address"}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantErr    string // "" means success
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"help"}, wantStdout: "Usage: companias-query"},
		{name: "--help", args: []string{"--help"}, wantStdout: "rebuild"},
		// Help reads no configuration (here invalid) and starts nothing.
		{name: "serve --help", args: []string{"serve", "--help"}, env: badEnv, wantStdout: "Usage: companias-query"},
		{name: "rebuild -h", args: []string{"rebuild", "-h"}, env: badEnv, wantStdout: "Usage: companias-query"},
		{name: "version", args: []string{"version"}, env: badEnv, wantStdout: "companias-query: " + buildinfo.Read().String()},
		{name: "version -json", args: []string{"version", "-json"}, env: badEnv, wantStdout: `"go_version":"` + buildinfo.Read().GoVersion},
		{name: "unknown command", args: []string{"migrate"}, wantErr: `unknown command "migrate"`, wantStderr: "Usage:"},
		{name: "unknown flag", args: []string{"--verbose"}, wantErr: `unknown command "--verbose"`, wantStderr: "Usage:"},
		{name: "extra arguments", args: []string{"serve", "now"}, wantErr: "takes no arguments", wantStderr: "Usage:"},
		{name: "rebuild extra arguments", args: []string{"rebuild", "all"}, wantErr: "takes no arguments", wantStderr: "Usage:"},
		{name: "version bad flag", args: []string{"version", "-yaml"}, wantErr: "-yaml", wantStderr: "Usage:"},
		{name: "bad configuration, serve", args: nil, env: map[string]string{"KAFKA_TOPIC_PARTITIONS": "x", "MONGO_URI": "nope"},
			wantErr: "KAFKA_TOPIC_PARTITIONS"},
		{name: "bad configuration, rebuild", args: []string{"rebuild"}, env: map[string]string{"LOG_LEVEL": "chatty"},
			wantErr: "LOG_LEVEL"},
		{name: "bad auth configuration", args: []string{"serve"}, env: map[string]string{"AUTH_MODE": "jwks"},
			wantErr: "AUTH_JWKS_URL"},
		{name: "open API beyond loopback", args: []string{"serve"}, env: map[string]string{"HTTP_ADDR": ":8081"},
			wantErr: `AUTH_MODE is not set and HTTP_ADDR ":8081" listens beyond loopback`},
		{name: "unreachable kafka, rebuild", args: []string{"rebuild"}, env: map[string]string{"KAFKA_BROKERS": closedAddr(t)},
			wantErr: "ensure topics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, envFrom(tt.env), &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run(%q) = %v, want nil", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			if tt.name == "bad configuration, serve" && !strings.Contains(err.Error(), "MONGO_URI") {
				t.Errorf("error %q does not report every configuration problem", err)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
			// Usage errors exit 2, other failures 1.
			wantCode := cli.ExitOK
			switch {
			case tt.wantStderr == "Usage:":
				wantCode = cli.ExitUsage
			case tt.wantErr != "":
				wantCode = cli.ExitError
			}
			if code := cli.ExitCode(err); code != wantCode {
				t.Errorf("exit code = %d, want %d", code, wantCode)
			}
		})
	}
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
