// Package cli is the one command-line idiom of the companias binaries: a
// program is a set of named subcommands, one of which runs when no argument
// is given (the services: serve, so that images and process managers that
// start the binary bare keep working).
//
// Help is answered before any command runs: "help", "-h", "-help" and
// "--help", alone or anywhere among a subcommand's arguments (before "--"),
// print the usage on stdout and return nil. A command never starts for
// them, so help reads no configuration and touches no database or broker.
//
// A usage error (an unknown command, a bad flag or argument) prints its
// message and the usage on stderr and is returned matching ErrUsage; main
// exits with ExitCode(err): 0 on success, 2 on a usage error, 1 otherwise.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
)

// ErrUsage is matched (errors.Is) by every usage error: the command line,
// not the world, was wrong.
var ErrUsage = errors.New("usage error")

// Exit codes returned by ExitCode.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2 // as flag.ExitOnError and most Unix tools use
)

// Func runs one subcommand with the arguments that follow its name. It
// returns an error from Usagef for a bad command line (the program prints
// it with the usage) and any other error for a failure.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Program is a binary with subcommands.
type Program struct {
	// Name is the binary's name, used in messages ("companias-command").
	Name string
	// Usage is the full help text, printed by help and after usage errors.
	Usage string
	// Default names the command run when there are no arguments; it must
	// be a key of Commands.
	Default string
	// Commands maps each subcommand name to its Func. "help" and the help
	// flags are answered by Run and need no entry.
	Commands map[string]Func
}

// helpWords ask for the usage, as a command or among a command's arguments.
var helpWords = []string{"help", "-h", "-help", "--help"}

// IsHelp reports whether args ask for help: its first element is a help
// word, or a help flag (-h, -help, --help) comes before a "--".
func IsHelp(args []string) bool {
	if len(args) > 0 && slices.Contains(helpWords, args[0]) {
		return true
	}
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// Run runs the command args names (os.Args[1:]), or Default when args is
// empty. Help (see IsHelp) prints Usage on stdout and returns nil without
// running any command. An unknown command, or a usage error a command
// returns, is printed with Usage on stderr and returned (matching
// ErrUsage).
func (p Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, rest := p.Default, []string(nil)
	if len(args) > 0 {
		name, rest = args[0], args[1:]
	}
	if IsHelp(args) {
		_, err := io.WriteString(stdout, p.Usage)
		return err
	}
	run, ok := p.Commands[name]
	if !ok {
		err := Usagef("unknown command %q", name)
		p.printUsageError(stderr, err)
		return err
	}
	err := run(ctx, rest, stdout, stderr)
	if errors.Is(err, ErrUsage) {
		p.printUsageError(stderr, err)
	}
	return err
}

func (p Program) printUsageError(stderr io.Writer, err error) {
	fmt.Fprintf(stderr, "%s: %v\n\n%s", p.Name, err, p.Usage)
}

// usageError is a command-line mistake; it matches ErrUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

// Usagef returns a usage error with the formatted message; it matches
// ErrUsage.
func Usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// NoArgs returns a usage error when a command that takes no arguments got
// some, else nil.
func NoArgs(command string, args []string) error {
	if len(args) > 0 {
		return Usagef("%s takes no arguments, got %q", command, args)
	}
	return nil
}

// NewFlagSet returns a flag set for a subcommand that reports nothing
// itself: Parse returns its error, which ParseFlags turns into a usage
// error printed once, with the usage, by Program.Run.
func NewFlagSet(command string) *flag.FlagSet {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// ParseFlags parses args with fs and returns a usage error naming the
// problem, or nil.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return Usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

// ExitCode is the process exit code for the error a Program returned:
// ExitOK for nil, ExitUsage for a usage error, ExitError otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	default:
		return ExitError
	}
}

// Main is the body of a main function: it runs p with args and reports a
// failure on stderr ("name: error"), then returns the exit code for
// os.Exit. A usage error was already printed with the usage, so it is not
// repeated.
func Main(ctx context.Context, p Program, args []string, stdout, stderr io.Writer) int {
	err := p.Run(ctx, args, stdout, stderr)
	if err != nil && !errors.Is(err, ErrUsage) {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
	}
	return ExitCode(err)
}

// Version returns the version command: "version" prints a human line and
// "version -json" a JSON object, both written by write (asJSON says which).
// It reads nothing but the binary.
func Version(write func(w io.Writer, asJSON bool) error) Func {
	return func(_ context.Context, args []string, stdout, _ io.Writer) error {
		fs := NewFlagSet("version")
		asJSON := fs.Bool("json", false, "print the build information as JSON")
		if err := ParseFlags(fs, args); err != nil {
			return err
		}
		if err := NoArgs("version", fs.Args()); err != nil {
			return err
		}
		return write(stdout, *asJSON)
	}
}

// WithConfig returns the Func of a command named name that takes no
// arguments and runs on the service's configuration: it loads the
// configuration with load (an invalid one is the command's error, every
// problem listed by load), builds the logger on stderr with logger, and
// calls cmd. load runs only when the command runs, so help and version
// never read the environment.
func WithConfig[C any](name string, load func() (C, error), logger func(stderr io.Writer, cfg C) *slog.Logger,
	cmd func(ctx context.Context, cfg C, log *slog.Logger, stderr io.Writer) error) Func {
	return func(ctx context.Context, args []string, _, stderr io.Writer) error {
		if err := NoArgs(name, args); err != nil {
			return err
		}
		cfg, err := load()
		if err != nil {
			return err
		}
		return cmd(ctx, cfg, logger(stderr, cfg), stderr)
	}
}
