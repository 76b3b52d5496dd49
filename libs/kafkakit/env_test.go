package kafkakit_test

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/kafkakit"
	"github.com/propalpes/companias/libs/seedwork/envconfig"
)

// load runs kafkakit.Load on env and files with KAFKA_BROKERS defaulted, as
// a service does, and returns the Config and the parser's error.
func load(env, files map[string]string) (kafkakit.Config, error) {
	defaults := kafkakit.Variables()
	defaults[kafkakit.BrokersVar] = "127.0.0.1:9092"
	readFile := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	p := envconfig.New(func(k string) string { return env[k] }, readFile, defaults)
	c := kafkakit.Load(p)
	return c, p.Err()
}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  kafkakit.Config
	}{
		{
			name: "defaults are plaintext without SASL",
			want: kafkakit.Config{Brokers: []string{"127.0.0.1:9092"}},
		},
		{
			name: "TLS with a CA and SCRAM-SHA-512",
			env: map[string]string{
				"KAFKA_BROKERS":        "b1:9093, b2:9093",
				"KAFKA_TLS_ENABLED":    "true",
				"KAFKA_TLS_CA_FILE":    "/etc/kafka/ca.pem",
				"KAFKA_SASL_MECHANISM": "scram-sha-512",
				"KAFKA_SASL_USERNAME":  "companias-command",
				"KAFKA_SASL_PASSWORD":  "s3cret",
			},
			want: kafkakit.Config{
				Brokers: []string{"b1:9093", "b2:9093"},
				TLS:     kafkakit.TLS{Enabled: true, CAFile: "/etc/kafka/ca.pem"},
				SASL:    kafkakit.SASL{Mechanism: kafkakit.MechanismSCRAMSHA512, Username: "companias-command", Password: "s3cret"},
			},
		},
		{
			name: "mutual TLS with a server name, PLAIN password from a file",
			env: map[string]string{
				"KAFKA_TLS_ENABLED":        "true",
				"KAFKA_TLS_CERT_FILE":      "/c.pem",
				"KAFKA_TLS_KEY_FILE":       "/k.pem",
				"KAFKA_TLS_SERVER_NAME":    "kafka.internal",
				"KAFKA_SASL_MECHANISM":     "PLAIN",
				"KAFKA_SASL_USERNAME":      "u",
				"KAFKA_SASL_PASSWORD_FILE": "/run/secrets/kafka",
			},
			files: map[string]string{"/run/secrets/kafka": "from-file\n"},
			want: kafkakit.Config{
				Brokers: []string{"127.0.0.1:9092"},
				TLS:     kafkakit.TLS{Enabled: true, CertFile: "/c.pem", KeyFile: "/k.pem", ServerName: "kafka.internal"},
				SASL:    kafkakit.SASL{Mechanism: kafkakit.MechanismPlain, Username: "u", Password: "from-file"},
			},
		},
		{
			name: "insecure skip verify alone is accepted (and warned about)",
			env:  map[string]string{"KAFKA_TLS_ENABLED": "true", "KAFKA_TLS_INSECURE_SKIP_VERIFY": "true", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
			want: kafkakit.Config{
				Brokers: []string{"127.0.0.1:9092"},
				TLS:     kafkakit.TLS{Enabled: true, InsecureSkipVerify: true},
				SASL:    kafkakit.SASL{Mechanism: kafkakit.MechanismSCRAMSHA256, Username: "u", Password: "p"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := load(tt.env, tt.files)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load:\n got %+v\nwant %+v", got, tt.want)
			}
			if got.SASL.Password != tt.want.SASL.Password {
				t.Errorf("Load: the password differs from the one given")
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate of a loaded config: %v", err)
			}
		})
	}
}

// TestLoadBadCombinations checks that each bad setting is a start-up error
// that names the variable to fix.
func TestLoadBadCombinations(t *testing.T) {
	t.Parallel()
	scram := map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tlsOn := map[string]string{"KAFKA_TLS_ENABLED": "true"}
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  []string // each must appear in the error
	}{
		{"no brokers", map[string]string{"KAFKA_BROKERS": " , "}, nil, []string{"KAFKA_BROKERS needs at least one host:port"}},
		{"broker without port", map[string]string{"KAFKA_BROKERS": "kafka"}, nil, []string{`KAFKA_BROKERS entry "kafka" must be host:port`}},
		{"TLS flag not a boolean", map[string]string{"KAFKA_TLS_ENABLED": "yes please"}, nil, []string{"KAFKA_TLS_ENABLED must be true or false"}},
		{"CA file while TLS is disabled", map[string]string{"KAFKA_TLS_CA_FILE": "/ca.pem"}, nil, []string{"KAFKA_TLS_CA_FILE is set but KAFKA_TLS_ENABLED is false"}},
		{"client files while TLS is disabled", map[string]string{"KAFKA_TLS_CERT_FILE": "/c", "KAFKA_TLS_KEY_FILE": "/k"}, nil, []string{"KAFKA_TLS_CERT_FILE is set but KAFKA_TLS_ENABLED is false", "KAFKA_TLS_KEY_FILE is set but KAFKA_TLS_ENABLED is false"}},
		{"server name while TLS is disabled", map[string]string{"KAFKA_TLS_SERVER_NAME": "k"}, nil, []string{"KAFKA_TLS_SERVER_NAME is set but KAFKA_TLS_ENABLED is false"}},
		{"skip verify while TLS is disabled", map[string]string{"KAFKA_TLS_INSECURE_SKIP_VERIFY": "true"}, nil, []string{"KAFKA_TLS_INSECURE_SKIP_VERIFY is set but KAFKA_TLS_ENABLED is false"}},
		{"certificate without key", with(tlsOn, "KAFKA_TLS_CERT_FILE", "/c"), nil, []string{"KAFKA_TLS_CERT_FILE is set without KAFKA_TLS_KEY_FILE"}},
		{"key without certificate", with(tlsOn, "KAFKA_TLS_KEY_FILE", "/k"), nil, []string{"KAFKA_TLS_KEY_FILE is set without KAFKA_TLS_CERT_FILE"}},
		{"skip verify with a CA", with(tlsOn, "KAFKA_TLS_INSECURE_SKIP_VERIFY", "true", "KAFKA_TLS_CA_FILE", "/ca"), nil, []string{"KAFKA_TLS_CA_FILE is set but KAFKA_TLS_INSECURE_SKIP_VERIFY=true"}},
		{"skip verify with a server name", with(tlsOn, "KAFKA_TLS_INSECURE_SKIP_VERIFY", "true", "KAFKA_TLS_SERVER_NAME", "k"), nil, []string{"KAFKA_TLS_SERVER_NAME is set but KAFKA_TLS_INSECURE_SKIP_VERIFY=true"}},
		{"unknown mechanism", map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}, nil, []string{`KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (or empty for none), got "GSSAPI"`}},
		{"mechanism without username or password", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN"}, nil, []string{"KAFKA_SASL_USERNAME is required with KAFKA_SASL_MECHANISM=PLAIN", "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required with KAFKA_SASL_MECHANISM=PLAIN"}},
		{"mechanism without password", scram, nil, []string{"KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required with KAFKA_SASL_MECHANISM=SCRAM-SHA-512"}},
		{"password and password file", with(scram, "KAFKA_SASL_PASSWORD", "p", "KAFKA_SASL_PASSWORD_FILE", "/pw"), map[string]string{"/pw": "q"}, []string{"KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set; set one"}},
		{"unreadable password file", with(scram, "KAFKA_SASL_PASSWORD_FILE", "/missing"), nil, []string{"KAFKA_SASL_PASSWORD_FILE cannot be read"}},
		{"empty password file", with(scram, "KAFKA_SASL_PASSWORD_FILE", "/empty"), map[string]string{"/empty": "\n"}, []string{`KAFKA_SASL_PASSWORD_FILE names an empty file "/empty"`}},
		{"username without mechanism", map[string]string{"KAFKA_SASL_USERNAME": "u"}, nil, []string{"KAFKA_SASL_USERNAME is set but KAFKA_SASL_MECHANISM is empty"}},
		{"password file without mechanism", map[string]string{"KAFKA_SASL_PASSWORD_FILE": "/pw"}, map[string]string{"/pw": "q"}, []string{"KAFKA_SASL_PASSWORD_FILE is set but KAFKA_SASL_MECHANISM is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(tt.env, tt.files)
			if err == nil {
				t.Fatalf("Load(%v): got no error, want %q", tt.env, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%v) error:\n%v\nwant it to contain %q", tt.env, err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("Load(%v): got %d problems, want %d:\n%v", tt.env, n, len(tt.want), err)
			}
		})
	}
}

// TestLoadNeverPrintsThePassword checks that neither a problem nor a printed
// Config shows the password.
func TestLoadNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-very-secret"
	c, err := load(map[string]string{"KAFKA_SASL_PASSWORD": pw, "KAFKA_TLS_CA_FILE": "/ca"}, nil)
	if err == nil {
		t.Fatal("Load: got no error, want two")
	}
	for _, s := range []string{err.Error(), fmt_(c)} {
		if strings.Contains(s, pw) {
			t.Errorf("the password appears in %q", s)
		}
	}
	if got := string(c.SASL.Password); got != pw {
		t.Errorf("SASL.Password = %q, want the value", got)
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unexpected file error: %v", err)
	}
}
