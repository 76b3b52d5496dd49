package check

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// loadCompose loads docker-compose.yml as `docker compose` would, with the
// given profiles and interpolation variables from envFile only (never the
// developer's own .env or environment).
func loadCompose(t testing.TB, envFile string, profiles ...string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func exampleEnv(t testing.TB) string {
	return filepath.Join(repoRoot(t), "deploy/env/compose.env.example")
}

// serviceFor returns the binary a compose service builds, by its Dockerfile.
func serviceFor(t testing.TB, s types.ServiceConfig) (service, bool) {
	t.Helper()
	if s.Build == nil {
		return service{}, false
	}
	for _, svc := range services() {
		if s.Build.Dockerfile == svc.dockerfile {
			return svc, true
		}
	}
	t.Fatalf("compose service %s builds %s, which is not a known Dockerfile", s.Name, s.Build.Dockerfile)
	return service{}, false
}

func TestComposeProfiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		profiles []string
		want     string
	}{
		{nil, "command command-migrate kafka kafka-init mongo postgres query"},
		{[]string{"scale"}, "command command-2 command-migrate kafka kafka-init mongo postgres query query-2"},
	} {
		p, err := loadCompose(t, exampleEnv(t), tc.profiles...)
		if err != nil {
			t.Fatalf("profiles %v: %v", tc.profiles, err)
		}
		if got := strings.Join(p.ServiceNames(), " "); got != tc.want {
			t.Errorf("profiles %v: services %q, want %q", tc.profiles, got, tc.want)
		}
	}
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	p, err := loadCompose(t, exampleEnv(t), "scale")
	if err != nil {
		t.Fatal(err)
	}
	hostPorts := map[string]string{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on undefined service %s", s.Name, dep)
				continue
			}
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", s.Name, dep, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart != types.RestartPolicyNo {
					t.Errorf("%s waits for one-shot %s, whose restart policy is %q, want \"no\"", s.Name, dep, target.Restart)
				}
			default:
				t.Errorf("%s depends on %s with condition %q; want service_healthy or service_completed_successfully", s.Name, dep, d.Condition)
			}
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s:%d on host IP %q, want 127.0.0.1", s.Name, port.Published, port.Target, port.HostIP)
			}
			if other, dup := hostPorts[port.Published]; dup {
				t.Errorf("%s and %s both publish host port %s", s.Name, other, port.Published)
			}
			hostPorts[port.Published] = s.Name
		}
		if s.Build != nil {
			if s.Build.Context != root {
				t.Errorf("%s: build context %s, want the repository root %s (go.work and libs/)", s.Name, s.Build.Context, root)
			}
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: Dockerfile: %v", s.Name, err)
			}
		}
	}
}

// TestComposeApplicationServices checks the writers and readers: their
// variables, their start order and their ports.
func TestComposeApplicationServices(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, exampleEnv(t), "scale")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range p.Services {
		svc, ok := serviceFor(t, s)
		if !ok || isMigrateJob(s) { // the one-shot migration: TestComposeMigrate
			continue
		}
		count[svc.name]++
		where := "compose service " + s.Name
		env := map[string]string{}
		var names []string
		for k, v := range s.Environment {
			names = append(names, k)
			if v != nil {
				env[k] = *v
			}
		}
		checkEnvNames(t, where, svc, names, nil)
		checkAuthOn(t, where, svc, env)
		if img, _, _ := strings.Cut(s.Image, ":"); img != svc.image {
			t.Errorf("%s: image %s, want %s:<tag>", where, s.Image, svc.image)
		}
		if env["HTTP_ADDR"] != ":"+itoa(svc.port) {
			t.Errorf("%s: HTTP_ADDR %q, want %q", where, env["HTTP_ADDR"], ":"+itoa(svc.port))
		}
		if len(s.Ports) != 2 || s.Ports[0].Target != uint32(svc.port) || s.Ports[1].Target != uint32(svc.metricsPort) {
			t.Errorf("%s: ports %+v, want the API (%d) and the metrics port (%d)", where, s.Ports, svc.port, svc.metricsPort)
		}
		if env["METRICS_ADDR"] != ":"+itoa(svc.metricsPort) {
			t.Errorf("%s: METRICS_ADDR %q, want %q", where, env["METRICS_ADDR"], ":"+itoa(svc.metricsPort))
		}
		for _, b := range strings.Split(env["KAFKA_BROKERS"], ",") {
			host, _, _ := strings.Cut(b, ":")
			if _, ok := p.Services[host]; !ok {
				t.Errorf("%s: KAFKA_BROKERS entry %q is not a compose service", where, b)
			}
		}
		if _, ok := s.DependsOn["kafka-init"]; !ok {
			t.Errorf("%s does not wait for kafka-init (the topics)", where)
		}
		if !s.ReadOnly {
			t.Errorf("%s: root filesystem is writable; want read_only: true", where)
		}
		if env["KAFKA_EVENTS_TOPIC"] != companiaevent.DefaultTopic {
			t.Errorf("%s: KAFKA_EVENTS_TOPIC %q, want %q", where, env["KAFKA_EVENTS_TOPIC"], companiaevent.DefaultTopic)
		}
		// Writers and readers alike: a topic created by a service would get
		// the broker's default retention instead of kafka-init's.
		if env["KAFKA_CREATE_TOPICS"] != "false" {
			t.Errorf("%s: KAFKA_CREATE_TOPICS=%q, want false (kafka-init creates the topics)", where, env["KAFKA_CREATE_TOPICS"])
		}
		if svc.writer {
			if !strings.Contains(env["DATABASE_URL"], "@postgres:5432/") {
				t.Errorf("%s: DATABASE_URL %q does not point at the postgres service", where, env["DATABASE_URL"])
			}
			if _, ok := s.DependsOn["postgres"]; !ok {
				t.Errorf("%s does not wait for postgres", where)
			}
			for k, want := range map[string]string{"KAFKA_COMMANDS_TOPIC": companiacmd.DefaultTopic, "KAFKA_COMMANDS_DLQ_TOPIC": deadletter.Topic(companiacmd.DefaultTopic)} {
				if v, set := env[k]; set && v != want {
					t.Errorf("%s: %s=%q, want %q", where, k, v, want)
				}
			}
		} else {
			if !strings.Contains(env["MONGO_URI"], "@mongo:27017/") {
				t.Errorf("%s: MONGO_URI %q does not point at the mongo service", where, env["MONGO_URI"])
			}
			if _, ok := s.DependsOn["mongo"]; !ok {
				t.Errorf("%s does not wait for mongo", where)
			}
			if v, set := env["KAFKA_EVENTS_DLQ_TOPIC"]; set && v != deadletter.Topic(companiaevent.DefaultTopic) {
				t.Errorf("%s: KAFKA_EVENTS_DLQ_TOPIC=%q, want %q", where, v, deadletter.Topic(companiaevent.DefaultTopic))
			}
		}
	}
	if count["command"] != 2 || count["query"] != 2 {
		t.Errorf("with --profile scale: %d writers and %d readers, want 2 and 2", count["command"], count["query"])
	}
}

// isMigrateJob reports whether s runs the writer's migrate subcommand.
func isMigrateJob(s types.ServiceConfig) bool {
	return slices.Equal([]string(s.Command), []string{"migrate"})
}

// TestComposeMigrate checks the writer's one-shot schema migration: one
// service runs `companias-command migrate` with the writer's image once
// PostgreSQL is healthy, and every writer starts after it succeeded, with
// MIGRATE_ON_START=false.
func TestComposeMigrate(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, exampleEnv(t), "scale")
	if err != nil {
		t.Fatal(err)
	}
	var migrate string
	for _, s := range p.Services {
		if !isMigrateJob(s) {
			continue
		}
		if migrate != "" {
			t.Errorf("services %s and %s both run migrate", migrate, s.Name)
		}
		migrate = s.Name
		svc, ok := serviceFor(t, s)
		if img, _, _ := strings.Cut(s.Image, ":"); !ok || !svc.writer || img != svc.image {
			t.Errorf("compose service %s runs migrate with image %s, want the writer's", s.Name, s.Image)
		}
		if d, ok := s.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("compose service %s does not wait for a healthy postgres", s.Name)
		}
		if len(s.Ports) != 0 {
			t.Errorf("compose service %s publishes ports %+v; a one-shot needs none", s.Name, s.Ports)
		}
	}
	if migrate == "" {
		t.Fatal("no compose service runs the writer's migrate subcommand")
	}
	writers := 0
	for _, s := range p.Services {
		svc, ok := serviceFor(t, s)
		if !ok || !svc.writer || isMigrateJob(s) {
			continue
		}
		writers++
		if d, ok := s.DependsOn[migrate]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("writer %s does not wait for %s to complete successfully", s.Name, migrate)
		}
		if v := s.Environment["MIGRATE_ON_START"]; v == nil || *v != "false" {
			t.Errorf("writer %s: MIGRATE_ON_START %v, want false (%s migrates)", s.Name, v, migrate)
		}
	}
	if writers == 0 {
		t.Error("no writer in compose")
	}
}

// TestComposeKafkaInit checks the one-shot topic creation: it runs the
// script and topic list of deploy/kafka, mounted read-only.
func TestComposeKafkaInit(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	p, err := loadCompose(t, exampleEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := p.Services["kafka-init"]
	if !ok {
		t.Fatal("no kafka-init service")
	}
	mounted := map[string]string{} // container path -> host path
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			if !v.ReadOnly {
				t.Errorf("kafka-init mounts %s read-write", v.Source)
			}
			mounted[v.Target] = v.Source
		}
	}
	hostPath := func(container string) string {
		for target, source := range mounted {
			if rel, err := filepath.Rel(target, container); err == nil && !strings.HasPrefix(rel, "..") {
				return filepath.Join(source, rel)
			}
		}
		t.Errorf("kafka-init: %s is not inside a bind mount (%v)", container, mounted)
		return ""
	}
	script := s.Entrypoint[len(s.Entrypoint)-1]
	for _, f := range []string{script, *s.Environment["TOPICS_FILE"]} {
		h := hostPath(f)
		if h == "" {
			continue
		}
		if !strings.HasPrefix(h, filepath.Join(root, "deploy", "kafka")) {
			t.Errorf("kafka-init: %s comes from %s, want deploy/kafka", f, h)
		}
		if _, err := os.Stat(h); err != nil {
			t.Errorf("kafka-init: %v", err)
		}
	}
	if filepath.Base(script) != "create-topics.sh" {
		t.Errorf("kafka-init runs %v, want deploy/kafka/create-topics.sh", s.Entrypoint)
	}
	if *s.Environment["KAFKA_BOOTSTRAP"] != "kafka:9092" {
		t.Errorf("kafka-init: KAFKA_BOOTSTRAP %q, want kafka:9092", *s.Environment["KAFKA_BOOTSTRAP"])
	}
	if d, ok := s.DependsOn["kafka"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("kafka-init must wait for a healthy kafka, has %+v", s.DependsOn)
	}
	kafka := p.Services["kafka"]
	if v := kafka.Environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]; v == nil || *v != "false" {
		t.Errorf("kafka: KAFKA_AUTO_CREATE_TOPICS_ENABLE must be false: a topic created on first use gets broker defaults")
	}
}

// TestComposeNeedsSecrets checks that no password is committed: without the
// env file, loading fails and names the missing variables.
func TestComposeNeedsSecrets(t *testing.T) {
	t.Parallel()
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadCompose(t, empty)
	if err == nil {
		t.Fatal("docker-compose.yml loads without POSTGRES_PASSWORD and MONGO_PASSWORD: a default password is committed")
	}
	if !strings.Contains(err.Error(), "_PASSWORD") || !strings.Contains(err.Error(), "compose.env.example") {
		t.Fatalf("error %q does not say which password is missing and where to set it", err)
	}
	// Every variable that names a password, anywhere in the file, is
	// interpolated, never written out.
	secretLine := regexp.MustCompile(`(?i)^\s*-?\s*"?[A-Z_]*(PASSWORD|SECRET|TOKEN)[A-Z_]*"?\s*[:=]\s*(.*)$`)
	for i, line := range strings.Split(readFile(t, filepath.Join(repoRoot(t), "docker-compose.yml")), "\n") {
		if m := secretLine.FindStringSubmatch(line); m != nil && !strings.Contains(m[2], "${") {
			t.Errorf("docker-compose.yml:%d sets a secret literally: %s", i+1, strings.TrimSpace(line))
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
