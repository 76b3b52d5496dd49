package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/seedwork/cli"
)

const usage = "Usage: prog [serve | echo ARG... | version]\n"

// program records which command ran, with which arguments.
func program(ran *[]string) cli.Program {
	rec := func(name string, err error) cli.Func {
		return func(_ context.Context, args []string, stdout, _ io.Writer) error {
			*ran = append(*ran, name+fmt.Sprint(args))
			return err
		}
	}
	return cli.Program{
		Name: "prog", Usage: usage, Default: "serve",
		Commands: map[string]cli.Func{
			"serve": func(_ context.Context, args []string, _, _ io.Writer) error {
				*ran = append(*ran, "serve"+fmt.Sprint(args))
				return cli.NoArgs("serve", args)
			},
			"echo":   rec("echo", nil),
			"fail":   rec("fail", errors.New("boom")),
			"misuse": rec("misuse", cli.Usagef("misuse needs an ID")),
			"version": cli.Version(func(w io.Writer, asJSON bool) error {
				_, err := fmt.Fprintf(w, "v1 json=%v\n", asJSON)
				return err
			}),
		},
	}
}

func TestProgramRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantRan    string // the commands that ran, "" for none
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no arguments run the default", args: nil, wantRan: "serve[]"},
		{name: "named command", args: []string{"echo", "a", "b"}, wantRan: "echo[a b]"},
		{name: "help", args: []string{"help"}, wantStdout: usage},
		{name: "-h", args: []string{"-h"}, wantStdout: usage},
		{name: "-help", args: []string{"-help"}, wantStdout: usage},
		{name: "--help", args: []string{"--help"}, wantStdout: usage},
		{name: "help after a command", args: []string{"serve", "--help"}, wantStdout: usage},
		{name: "help among a command's arguments", args: []string{"echo", "a", "-h"}, wantStdout: usage},
		{name: "help word as a later argument is data", args: []string{"echo", "help"}, wantRan: "echo[help]"},
		{name: "help flag after -- is data", args: []string{"echo", "--", "-h"}, wantRan: "echo[-- -h]"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: cli.ExitUsage,
			wantStderr: "prog: unknown command \"frobnicate\"\n\n" + usage},
		{name: "unknown flag as command", args: []string{"--verbose"}, wantCode: cli.ExitUsage, wantStderr: usage},
		{name: "command usage error", args: []string{"misuse"}, wantRan: "misuse[]", wantCode: cli.ExitUsage,
			wantStderr: "prog: misuse needs an ID\n\n" + usage},
		{name: "extra arguments", args: []string{"serve", "now"}, wantRan: "serve[now]", wantCode: cli.ExitUsage,
			wantStderr: `serve takes no arguments, got ["now"]`},
		{name: "failure", args: []string{"fail"}, wantRan: "fail[]", wantCode: cli.ExitError, wantStderr: "prog: boom\n"},
		{name: "version", args: []string{"version"}, wantStdout: "v1 json=false\n"},
		{name: "version -json", args: []string{"version", "-json"}, wantStdout: "v1 json=true\n"},
		{name: "version bad flag", args: []string{"version", "-yaml"}, wantCode: cli.ExitUsage,
			wantStderr: "prog: version: flag provided but not defined: -yaml\n\n" + usage},
		{name: "version extra argument", args: []string{"version", "now"}, wantCode: cli.ExitUsage, wantStderr: "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ran []string
			var stdout, stderr bytes.Buffer
			code := cli.Main(t.Context(), program(&ran), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if got := strings.Join(ran, " "); got != tt.wantRan {
				t.Errorf("ran %q, want %q", got, tt.wantRan)
			}
			if tt.wantStdout != "" && stdout.String() != tt.wantStdout || tt.wantStdout == "" && stdout.Len() > 0 {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) || tt.wantStderr == "" && stderr.Len() > 0 {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestExitCodeAndUsagef(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("outbox: %w", cli.Usagef("bad id %q", "x"))
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, cli.ExitOK}, {errors.New("x"), cli.ExitError}, {cli.ErrUsage, cli.ExitUsage}, {wrapped, cli.ExitUsage},
		{context.Canceled, cli.ExitError},
	} {
		if got := cli.ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if got, want := wrapped.Error(), `outbox: bad id "x"`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestIsHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false}, {[]string{"help"}, true}, {[]string{"outbox", "help"}, false},
		{[]string{"outbox", "list", "--help"}, true}, {[]string{"x", "--", "--help"}, false},
		{[]string{"--help=true"}, false},
	} {
		if got := cli.IsHelp(tc.args); got != tc.want {
			t.Errorf("IsHelp(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
