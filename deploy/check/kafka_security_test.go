package check

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// securedPod is the part of a Deployment the secured-Kafka checks read.
type securedPod struct {
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						ReadOnly  bool   `yaml:"readOnly"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// k8sConfig returns the variables of svc's generated ConfigMap.
func k8sConfig(t testing.TB, b k8sBase, svc service) map[string]string {
	t.Helper()
	g, ok := generatorNamed(b.kust.ConfigMapGenerator, svc.k8sName+"-config")
	if !ok {
		t.Fatalf("kustomization.yaml generates no ConfigMap %s-config", svc.k8sName)
	}
	return b.generatorVars(t, g)
}

// TestK8sSecuredKafka checks that both services of the base reach Kafka
// over TLS with SASL/SCRAM-SHA-512, as their own principal, with the CA and
// the password read from files mounted read-only from Secrets (never a
// password in the ConfigMap or the secret env file).
func TestK8sSecuredKafka(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	for _, svc := range services() {
		where := "deploy/k8s " + svc.k8sName
		config := k8sConfig(t, b, svc)
		for k, want := range map[string]string{
			"KAFKA_TLS_ENABLED":    "true",
			"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
			"KAFKA_SASL_USERNAME":  svc.k8sName,
		} {
			if config[k] != want {
				t.Errorf("%s: %s=%q, want %q", where, k, config[k], want)
			}
		}
		if g, ok := generatorNamed(b.kust.SecretGenerator, svc.k8sName+"-secrets"); ok {
			if _, set := b.generatorVars(t, g)["KAFKA_SASL_PASSWORD"]; set {
				t.Errorf("%s: the Kafka password is an environment variable; mount it (KAFKA_SASL_PASSWORD_FILE)", where)
			}
		}
		if _, set := config["KAFKA_SASL_PASSWORD"]; set {
			t.Errorf("%s: KAFKA_SASL_PASSWORD in a ConfigMap", where)
		}
		o, ok := b.find("Deployment", svc.k8sName)
		if !ok {
			t.Errorf("no Deployment %s", svc.k8sName)
			continue
		}
		pod := decodeAs[securedPod](t, o).Spec.Template.Spec
		if len(pod.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", where, len(pod.Containers))
			continue
		}
		for _, v := range []string{"KAFKA_TLS_CA_FILE", "KAFKA_SASL_PASSWORD_FILE"} {
			file := config[v]
			if !filepath.IsAbs(file) {
				t.Errorf("%s: %s=%q, want an absolute path in a mounted Secret", where, v, file)
				continue
			}
			mounted := ""
			for _, m := range pod.Containers[0].VolumeMounts {
				if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
					if !m.ReadOnly {
						t.Errorf("%s: %s is mounted read-write", where, m.MountPath)
					}
					mounted = m.Name
				}
			}
			secret := ""
			for _, vol := range pod.Volumes {
				if vol.Name == mounted && vol.Secret != nil {
					secret = vol.Secret.SecretName
				}
			}
			if secret == "" {
				t.Errorf("%s: %s=%s is not in a volume mounted from a Secret", where, v, file)
			}
			if v == "KAFKA_SASL_PASSWORD_FILE" && secret != "" && secret != svc.k8sName {
				t.Errorf("%s: the password comes from Secret %s, want %s (the Secret Strimzi makes for KafkaUser %s)", where, secret, svc.k8sName, svc.k8sName)
			}
		}
	}
}

// strimziObjects returns the documents of deploy/k8s/strimzi of kind.
func strimziObjects(t testing.TB, kind string) []*yaml.Node {
	t.Helper()
	_, objs := loadKustomization(t, filepath.Join("deploy", "k8s", "strimzi"), func(k kustomization) []string { return k.Resources })
	var out []*yaml.Node
	for _, o := range objs {
		if o.Metadata.Labels["strimzi.io/cluster"] == "" {
			t.Errorf("strimzi/%s: %s %s has no strimzi.io/cluster label", o.file, o.Kind, o.Metadata.Name)
		}
		if o.Kind == kind {
			out = append(out, o.node)
		}
	}
	return out
}

// goStringConst returns the value of the string constant name declared in
// the Go file at path (relative to the repository root).
func goStringConst(t testing.TB, path, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot(t), path), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name == name && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						return v
					}
				}
			}
		}
	}
	t.Fatalf("%s declares no string constant %s", path, name)
	return ""
}

// TestStrimziKafkaUsersMatchThePrincipals checks the KafkaUser example
// against the services' configuration and the embedded broker's secured
// mode: the same three principals, SCRAM-SHA-512, and exactly these
// literal ACLs — the writer reads the command topic (in its group) and
// writes the event topic and the command DLQ; the reader reads the event
// topic (in its group) and writes its DLQ; the external principal only
// reads the event topic. So only the writer may write an event.
func TestStrimziKafkaUsersMatchThePrincipals(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	var writer, reader map[string]string
	for _, svc := range services() {
		if svc.writer {
			writer = k8sConfig(t, b, svc)
		} else {
			reader = k8sConfig(t, b, svc)
		}
	}
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	events := or(writer["KAFKA_EVENTS_TOPIC"], companiaevent.DefaultTopic)
	commands := or(writer["KAFKA_COMMANDS_TOPIC"], companiacmd.DefaultTopic)
	commandsDLQ := or(writer["KAFKA_COMMANDS_DLQ_TOPIC"], deadletter.Topic(commands))
	eventsDLQ := or(reader["KAFKA_EVENTS_DLQ_TOPIC"], deadletter.Topic(events))
	if reader["KAFKA_EVENTS_TOPIC"] != "" && reader["KAFKA_EVENTS_TOPIC"] != events {
		t.Errorf("the writer produces %s but the reader reads %s", events, reader["KAFKA_EVENTS_TOPIC"])
	}
	const brokerSrc = "libs/devinfra/kafkabroker/secure.go"
	want := map[string][]string{
		writer["KAFKA_SASL_USERNAME"]: {"topic " + commands + " Read", "topic " + commands + " Describe", "group " + or(writer["KAFKA_COMMANDS_GROUP_ID"], "companias-command") + " Read",
			"topic " + events + " Write", "topic " + events + " Describe", "topic " + commandsDLQ + " Write", "topic " + commandsDLQ + " Describe"},
		reader["KAFKA_SASL_USERNAME"]: {"topic " + events + " Read", "topic " + events + " Describe", "group " + or(reader["KAFKA_GROUP_ID"], "companias-query") + " Read",
			"topic " + eventsDLQ + " Write", "topic " + eventsDLQ + " Describe"},
		goStringConst(t, brokerSrc, "ExternalPrincipal"): {"topic " + events + " Read", "topic " + events + " Describe", "group companias-external Read"},
	}
	for _, p := range []string{"WriterPrincipal", "ReaderPrincipal"} {
		if name := goStringConst(t, brokerSrc, p); want[name] == nil {
			t.Errorf("kafkabroker.%s is %q, which is not a service's KAFKA_SASL_USERNAME in deploy/k8s", p, name)
		}
	}

	type kafkaUser struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			Authentication struct {
				Type string `yaml:"type"`
			} `yaml:"authentication"`
			Authorization struct {
				Type string `yaml:"type"`
				ACLs []struct {
					Resource struct {
						Type        string `yaml:"type"`
						Name        string `yaml:"name"`
						PatternType string `yaml:"patternType"`
					} `yaml:"resource"`
					Operations []string `yaml:"operations"`
					Operation  string   `yaml:"operation"`
				} `yaml:"acls"`
			} `yaml:"authorization"`
		} `yaml:"spec"`
	}
	seen := map[string]bool{}
	for _, n := range strimziObjects(t, "KafkaUser") {
		var u kafkaUser
		if err := n.Decode(&u); err != nil {
			t.Fatal(err)
		}
		name := u.Metadata.Name
		seen[name] = true
		wantACLs, ok := want[name]
		if !ok {
			t.Errorf("KafkaUser %s is not one of the principals %v", name, slices.Sorted(mapsKeys(want)))
			continue
		}
		if u.Spec.Authentication.Type != "scram-sha-512" || u.Spec.Authorization.Type != "simple" {
			t.Errorf("KafkaUser %s: authentication %q, authorization %q; want scram-sha-512 and simple (ACLs)", name, u.Spec.Authentication.Type, u.Spec.Authorization.Type)
		}
		var got []string
		for _, a := range u.Spec.Authorization.ACLs {
			if a.Resource.PatternType != "literal" {
				t.Errorf("KafkaUser %s: ACL on %s %s has patternType %q, want literal (a prefix would grant more)", name, a.Resource.Type, a.Resource.Name, a.Resource.PatternType)
			}
			ops := a.Operations
			if a.Operation != "" {
				ops = append(ops, a.Operation)
			}
			for _, op := range ops {
				got = append(got, a.Resource.Type+" "+a.Resource.Name+" "+op)
			}
		}
		slices.Sort(got)
		slices.Sort(wantACLs)
		if !slices.Equal(got, wantACLs) {
			t.Errorf("KafkaUser %s ACLs:\n  %s\nwant:\n  %s", name, strings.Join(got, "\n  "), strings.Join(wantACLs, "\n  "))
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no KafkaUser %s", name)
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestDeadLetterRetentionIsFinite checks that every way the deployment
// creates topics — topics.txt (compose's kafka-init, create-topics.sh) and
// the Strimzi KafkaTopics — keeps dead letters, which hold personal data,
// for a finite time, keeps the event topic forever, and agrees.
func TestDeadLetterRetentionIsFinite(t *testing.T) {
	t.Parallel()
	fromFile := map[string]topic{}
	for _, tp := range readTopics(t) {
		fromFile[tp.name] = tp
		checkRetention(t, "topics.txt: "+tp.name, tp.name, tp.configs["retention.ms"])
	}
	type kafkaTopic struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			TopicName  string            `yaml:"topicName"`
			Partitions int               `yaml:"partitions"`
			Replicas   int               `yaml:"replicas"`
			Config     map[string]string `yaml:"config"`
		} `yaml:"spec"`
	}
	seen := map[string]bool{}
	for _, n := range strimziObjects(t, "KafkaTopic") {
		var kt kafkaTopic
		if err := n.Decode(&kt); err != nil {
			t.Fatal(err)
		}
		name := kt.Metadata.Name
		if kt.Spec.TopicName != "" {
			name = kt.Spec.TopicName
		}
		seen[name] = true
		where := "strimzi KafkaTopic " + name
		tp, ok := fromFile[name]
		if !ok {
			t.Errorf("%s is not in topics.txt", where)
			continue
		}
		if kt.Spec.Partitions != tp.partitions {
			t.Errorf("%s: %d partitions, topics.txt has %d", where, kt.Spec.Partitions, tp.partitions)
		}
		if kt.Spec.Replicas < 3 {
			t.Errorf("%s: %d replicas; a production topic wants at least 3", where, kt.Spec.Replicas)
		}
		if kt.Spec.Config["retention.ms"] != tp.configs["retention.ms"] {
			t.Errorf("%s: retention.ms %q, topics.txt has %q", where, kt.Spec.Config["retention.ms"], tp.configs["retention.ms"])
		}
		checkRetention(t, where, name, kt.Spec.Config["retention.ms"])
	}
	for name := range fromFile {
		if !seen[name] {
			t.Errorf("topics.txt lists %s, which has no Strimzi KafkaTopic", name)
		}
	}
}

// checkRetention reports a dead-letter topic kept forever or for the broker
// default (unset), and an event topic not kept forever.
func checkRetention(t *testing.T, where, name, retention string) {
	t.Helper()
	switch {
	case strings.HasSuffix(name, deadletter.Topic("")):
		ms, err := strconv.ParseInt(retention, 10, 64)
		if err != nil || ms <= 0 {
			t.Errorf("%s: retention.ms %q; a dead-letter topic wants a finite retention set explicitly (KAFKA_DLQ_RETENTION, 168h by default)", where, retention)
		}
	case name == companiaevent.DefaultTopic && retention != "-1":
		t.Errorf("%s: retention.ms %q, want -1 (rebuilds replay the event topic)", where, retention)
	}
}

// TestComposeShowsSecuredKafka checks that docker-compose.yml, plaintext on
// its private network, shows both services' secured settings (commented),
// each service as its own principal.
func TestComposeShowsSecuredKafka(t *testing.T) {
	t.Parallel()
	raw := readFile(t, filepath.Join(repoRoot(t), "docker-compose.yml"))
	for _, v := range []string{"KAFKA_TLS_ENABLED", "KAFKA_TLS_CA_FILE", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD_FILE"} {
		re := regexp.MustCompile(`(?m)^\s*#\s*` + v + `:\s*\S`)
		if n := len(re.FindAllString(raw, -1)); n != 2 {
			t.Errorf("docker-compose.yml shows %s (commented) %d times, want once for the writer and once for the reader", v, n)
		}
	}
	for _, svc := range services() {
		if !regexp.MustCompile(`(?m)^\s*#\s*KAFKA_SASL_USERNAME:\s*"?` + svc.k8sName + `"?\s*$`).MatchString(raw) {
			t.Errorf("docker-compose.yml does not show principal %s for the %s service", svc.k8sName, svc.name)
		}
	}
	if !strings.Contains(raw, `# KAFKA_SASL_MECHANISM: "SCRAM-SHA-512"`) {
		t.Error("docker-compose.yml does not show SASL SCRAM-SHA-512")
	}
}

// TestCreateTopicsScriptCommandConfig checks that on a secured cluster
// (KAFKA_COMMAND_CONFIG set) create-topics.sh passes the admin client
// settings to every Kafka tool it runs.
func TestCreateTopicsScriptCommandConfig(t *testing.T) {
	t.Parallel()
	bin, log := stubKafkaBin(t, 0)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, filepath.Join(repoRoot(t), "deploy/kafka/create-topics.sh"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_BIN=" + bin, "KAFKA_BOOTSTRAP=broker:9093",
		"REPLICATION_FACTOR=3", "KAFKA_COMMAND_CONFIG=/etc/kafka/admin.properties"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-topics.sh: %v\n%s", err, out)
	}
	calls := strings.Split(strings.TrimSpace(readFile(t, log)), "\n")
	if len(calls) < len(readTopics(t))+1 {
		t.Fatalf("create-topics.sh made %d calls:\n%s", len(calls), strings.Join(calls, "\n"))
	}
	for _, c := range calls {
		if !strings.Contains(c, " --bootstrap-server broker:9093 --command-config /etc/kafka/admin.properties ") {
			t.Errorf("call without the admin client settings: %s", c)
		}
	}
}
