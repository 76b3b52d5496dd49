// Package envconfig parses a service's environment variables into typed
// values and collects every problem instead of stopping at the first, so
// that a misconfigured service reports all its mistakes at once.
//
// A Parser reads each variable through getenv, trims surrounding spaces,
// and falls back to the variable's entry of the defaults map when the
// result is empty. The typed methods record a problem, naming the variable
// and the offending value, when that value is malformed or out of range; Err
// joins the problems. Values read from files (the NAME_FILE convention of
// container secrets) are never put in an error.
//
// Both services parse their Config with it the same way: the settings every
// service has (Service: the HTTP listener and its timeouts, the admin
// listeners, auth, tracing, shutdown grace, log level) through
// Parser.Service, their own through the typed methods, cross-variable rules
// through Fail. server.go also builds and runs the API's http.Server
// (HTTPServer.Server, Serve), so that both services listen the same way.
package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Parser reads environment variables and collects their problems. Build it
// with New; it is not safe for concurrent use.
type Parser struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	defaults map[string]string
	errs     []error
}

// New returns a Parser reading variables through getenv (os.Getenv in main,
// a map in tests) and the files named by NAME_FILE variables through
// readFile (os.ReadFile in main). defaults maps a variable to the value used
// when it is unset or blank; a variable missing from it defaults to "". The
// Parser does not modify defaults.
func New(getenv func(string) string, readFile func(string) ([]byte, error), defaults map[string]string) *Parser {
	return &Parser{getenv: getenv, readFile: readFile, defaults: defaults}
}

// Fail records the problem "name msg", e.g. Fail("HTTP_ADDR", "is required").
func (p *Parser) Fail(name, msg string) { p.errs = append(p.errs, fmt.Errorf("%s %s", name, msg)) }

// Add records err, which should name its variable, as a problem; a nil err
// is ignored. It lets a caller merge a validation of the parsed values.
func (p *Parser) Add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// Err returns nil when no problem was recorded, and otherwise one error
// "invalid configuration: " followed by every problem, joined with
// errors.Join (one per line) in the order they were recorded.
func (p *Parser) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(p.errs...))
}

// IsSet reports whether the variable name is set to a non-blank value
// (its default does not count).
func (p *Parser) IsSet(name string) bool { return strings.TrimSpace(p.getenv(name)) != "" }

// Raw returns the variable name with surrounding spaces removed, or its
// default when that is empty. It records no problem.
func (p *Parser) Raw(name string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return p.defaults[name]
}

// Str returns Raw(name) and records "NAME is required" when it is empty.
func (p *Parser) Str(name string) string {
	v := p.Raw(name)
	if v == "" {
		p.Fail(name, "is required")
	}
	return v
}

// Secret returns the variable name (as Str does) or, when name+"_FILE" is
// set (or defaulted), the content of the file it names with one trailing
// newline ("\n" or "\r\n") removed. Setting both variables, an unreadable
// file and an empty file are problems, and then the default of name is
// returned. The value never appears in a problem.
func (p *Parser) Secret(name string) string {
	file := p.Raw(name + "_FILE")
	if file == "" {
		return p.Str(name)
	}
	if p.IsSet(name) {
		p.Fail(name, fmt.Sprintf("and %s_FILE are both set; set one", name))
		return p.defaults[name]
	}
	b, err := p.readFile(file)
	if err != nil {
		p.Fail(name+"_FILE", fmt.Sprintf("cannot be read: %v", err))
		return p.defaults[name]
	}
	v := TrimNewline(string(b))
	if v == "" {
		p.Fail(name+"_FILE", fmt.Sprintf("names an empty file %q", file))
		return p.defaults[name]
	}
	return v
}

// TrimNewline removes one trailing newline from s: a final "\n", then a
// final "\r" (so "\r\n" and a lone "\r" go too).
func TrimNewline(s string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}

// Addr returns the required listen address name, which must be host:port
// with a port (the host may be empty, as in ":8080").
func (p *Parser) Addr(name string) string {
	v := p.Str(name)
	if _, port, err := net.SplitHostPort(v); v != "" && (err != nil || port == "") {
		p.Fail(name, fmt.Sprintf("must be host:port, got %q", v))
	}
	return v
}

// List returns the comma-separated host:port entries of name, spaces and
// empty entries dropped. Each entry must be host:port with a port in
// 1..65535 (see HostPort), and there must be at least one.
func (p *Parser) List(name string) []string {
	var out []string
	for _, s := range SplitList(p.Str(name)) {
		if !HostPort(s) {
			p.Fail(name, fmt.Sprintf("entry %q must be host:port with a port in 1..65535", s))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		p.Fail(name, "needs at least one host:port")
	}
	return out
}

// HostPort reports whether s is host:port with a non-empty host and a
// numeric port in 1..65535: the address of a server to dial.
func HostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// SecretURL returns Secret(name), which must start with one of schemes
// (such as "postgres://"). The problem names the variable that gave the
// value (name, or name+"_FILE") and never the value, which may hold a
// password.
func (p *Parser) SecretURL(name string, schemes ...string) string {
	from := name
	if p.Raw(name+"_FILE") != "" {
		from = name + "_FILE"
	}
	v := p.Secret(name)
	if v == "" {
		return v
	}
	for _, s := range schemes {
		if strings.HasPrefix(v, s) {
			return v
		}
	}
	p.Fail(from, "must start with "+strings.Join(schemes, " or "))
	return v
}

// SplitList splits s at commas and drops spaces around entries and empty
// entries; it returns nil when no entry is left.
func SplitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Topic returns the required Kafka topic name, which must follow Kafka's
// rules: at most 249 characters of [a-zA-Z0-9._-], and not "." or "..".
func (p *Parser) Topic(name string) string {
	v := p.Str(name)
	if !ValidTopic(v) && v != "" {
		p.Fail(name, fmt.Sprintf("is not a valid Kafka topic name: %q", v))
	}
	return v
}

// ValidTopic reports whether t is a valid Kafka topic name: 1 to 249
// characters of [a-zA-Z0-9._-], and not "." or "..".
func ValidTopic(t string) bool {
	return t != "" && len(t) <= 249 && t != "." && t != ".." &&
		strings.Trim(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
}

// typed parses Raw(name) with parse. When parse fails it records
// "NAME <want>, got <value>" and returns the parsed default, or the zero T
// when the default does not parse either.
func typed[T any](p *Parser, name, want string, parse func(string) (T, bool)) T {
	v := p.Raw(name)
	if x, ok := parse(v); ok {
		return x
	}
	p.Fail(name, fmt.Sprintf("%s, got %q", want, v))
	if x, ok := parse(p.defaults[name]); ok {
		return x
	}
	var zero T
	return zero
}

// Bool returns the boolean name, as strconv.ParseBool reads it.
func (p *Parser) Bool(name string) bool {
	return typed(p, name, "must be true or false", func(s string) (bool, bool) {
		b, err := strconv.ParseBool(s)
		return b, err == nil
	})
}

// Int returns the integer name.
func (p *Parser) Int(name string) int {
	return typed(p, name, "must be an integer", func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil
	})
}

// IntRange returns the integer name, which must be in [lo, hi].
func (p *Parser) IntRange(name string, lo, hi int) int {
	return typed(p, name, fmt.Sprintf("must be an integer in [%d, %d]", lo, hi), func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= lo && n <= hi
	})
}

// Float returns the floating-point number name.
func (p *Parser) Float(name string) float64 {
	return typed(p, name, "must be a number", func(s string) (float64, bool) {
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	})
}

// Ratio returns the number name, which must be in [0, 1].
func (p *Parser) Ratio(name string) float64 {
	return typed(p, name, "must be a ratio in [0, 1]", func(s string) (float64, bool) {
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil && f >= 0 && f <= 1
	})
}

// Duration returns the duration name, as time.ParseDuration reads it.
func (p *Parser) Duration(name string) time.Duration {
	return typed(p, name, "must be a duration such as 500ms or 10s", func(s string) (time.Duration, bool) {
		d, err := time.ParseDuration(s)
		return d, err == nil
	})
}

// DurationRange returns the duration name, which must be in [lo, hi].
func (p *Parser) DurationRange(name string, lo, hi time.Duration) time.Duration {
	return typed(p, name, fmt.Sprintf("must be a duration in [%s, %s]", lo, hi), func(s string) (time.Duration, bool) {
		d, err := time.ParseDuration(s)
		return d, err == nil && d >= lo && d <= hi
	})
}

// Level returns the slog level name: debug, info, warn (or warning) or
// error, in any case, with slog's optional offset ("info+2").
func (p *Parser) Level(name string) slog.Level {
	return typed(p, name, "must be debug, info, warn or error", func(s string) (slog.Level, bool) {
		if strings.EqualFold(s, "warning") {
			return slog.LevelWarn, true
		}
		var l slog.Level
		return l, l.UnmarshalText([]byte(s)) == nil
	})
}
