package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/propalpes/companias/libs/contracts/companiacmd"
	"github.com/propalpes/companias/libs/contracts/companiaevent"
	"github.com/propalpes/companias/libs/contracts/deadletter"
)

// topic is one line of deploy/kafka/topics.txt.
type topic struct {
	name       string
	partitions int
	configs    map[string]string
	rawConfigs string // as written: key=value[,key=value…]
}

func readTopics(t testing.TB) []topic {
	t.Helper()
	var out []topic
	for i, line := range strings.Split(readFile(t, filepath.Join(repoRoot(t), "deploy/kafka/topics.txt")), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 || len(f) > 3 {
			t.Fatalf("topics.txt:%d: want `name partitions [k=v,…]`, got %q", i+1, line)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("topics.txt:%d: partitions %q: %v", i+1, f[1], err)
		}
		tp := topic{name: f[0], partitions: n, configs: map[string]string{}}
		if len(f) == 3 {
			tp.rawConfigs = f[2]
			for _, kv := range strings.Split(f[2], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("topics.txt:%d: config %q is not key=value", i+1, kv)
				}
				tp.configs[k] = v
			}
		}
		out = append(out, tp)
	}
	return out
}

// wantTopics are the topics of the contracts, which the deployment creates.
func wantTopics() []string {
	return []string{
		companiaevent.DefaultTopic, deadletter.Topic(companiaevent.DefaultTopic),
		companiacmd.DefaultTopic, deadletter.Topic(companiacmd.DefaultTopic),
	}
}

func TestTopicsFile(t *testing.T) {
	t.Parallel()
	got := map[string]topic{}
	for _, tp := range readTopics(t) {
		if _, dup := got[tp.name]; dup {
			t.Errorf("topic %s listed twice", tp.name)
		}
		got[tp.name] = tp
	}
	for _, name := range wantTopics() {
		tp, ok := got[name]
		if !ok {
			t.Errorf("topics.txt lacks %s", name)
			continue
		}
		if tp.partitions != topicPartitions {
			t.Errorf("%s: %d partitions, want %d (KAFKA_TOPIC_PARTITIONS of the services)", name, tp.partitions, topicPartitions)
		}
		delete(got, name)
	}
	for name := range got {
		t.Errorf("topics.txt lists %s, which no contract defines", name)
	}
	for _, tp := range readTopics(t) {
		if tp.name == companiaevent.DefaultTopic && tp.configs["retention.ms"] != "-1" {
			t.Errorf("%s must be kept forever (retention.ms=-1: rebuilds replay it), has configs %v", tp.name, tp.configs)
		}
	}
}

// stubKafkaBin writes kafka-topics.sh and kafka-configs.sh stand-ins that
// append their arguments to a log file and exit with code.
func stubKafkaBin(t *testing.T, code int) (bin, log string) {
	t.Helper()
	bin = t.TempDir()
	log = filepath.Join(bin, "calls.log")
	for _, tool := range []string{"kafka-topics.sh", "kafka-configs.sh"} {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> '" + log + "'\nexit " + strconv.Itoa(code) + "\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return bin, log
}

func runCreateTopics(t *testing.T, bin string) ([]byte, error) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh on PATH: %v", err)
	}
	cmd := exec.Command(sh, filepath.Join(repoRoot(t), "deploy/kafka/create-topics.sh"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_BIN=" + bin, "KAFKA_BOOTSTRAP=broker:9092", "REPLICATION_FACTOR=1"}
	return cmd.CombinedOutput()
}

// TestCreateTopicsScript runs deploy/kafka/create-topics.sh against a stub
// Kafka CLI and checks the commands it issues.
func TestCreateTopicsScript(t *testing.T) {
	t.Parallel()
	bin, log := stubKafkaBin(t, 0)
	if out, err := runCreateTopics(t, bin); err != nil {
		t.Fatalf("create-topics.sh: %v\n%s", err, out)
	}
	calls := strings.Split(strings.TrimSpace(readFile(t, log)), "\n")
	want := []string{}
	for _, tp := range readTopics(t) {
		create := "kafka-topics.sh --bootstrap-server broker:9092 --create --if-not-exists --topic " + tp.name +
			" --partitions " + strconv.Itoa(tp.partitions) + " --replication-factor 1"
		if tp.rawConfigs != "" {
			for _, kv := range strings.Split(tp.rawConfigs, ",") {
				create += " --config " + kv
			}
		}
		want = append(want, create)
		if tp.rawConfigs != "" {
			want = append(want, "kafka-configs.sh --bootstrap-server broker:9092 --alter --entity-type topics --entity-name "+
				tp.name+" --add-config "+tp.rawConfigs)
		}
	}
	want = append(want, "kafka-topics.sh --bootstrap-server broker:9092 --describe --exclude-internal")
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("create-topics.sh calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(strings.Join(calls, "\n"), "--topic "+companiaevent.DefaultTopic+" --partitions 6 --replication-factor 1 --config retention.ms=-1") {
		t.Fatalf("the event topic is not created with retention.ms=-1:\n%s", strings.Join(calls, "\n"))
	}
}

func TestCreateTopicsScriptFailsWhenKafkaFails(t *testing.T) {
	t.Parallel()
	bin, log := stubKafkaBin(t, 3)
	out, err := runCreateTopics(t, bin)
	if err == nil {
		t.Fatalf("create-topics.sh succeeded although kafka-topics.sh failed:\n%s", out)
	}
	if calls := strings.Count(readFile(t, log), "\n"); calls != 1 {
		t.Fatalf("create-topics.sh went on after the first failure: %d calls", calls)
	}
}
