package check

import (
	"slices"
	"strings"
	"testing"
)

// grouplagFile declares the lag metric's name and label names
// (libs/kafkakit/grouplag), which the autoscalers select by.
const grouplagFile = "libs/kafkakit/grouplag/grouplag.go"

// lagMetric is the lag metric as the code exports it: its name and labels.
type lagMetric struct {
	name   string
	labels []string
}

func loadLagMetric(t testing.TB) lagMetric {
	t.Helper()
	return lagMetric{
		name: goStringConst(t, grouplagFile, "LagMetric"),
		labels: []string{
			goStringConst(t, grouplagFile, "TopicLabel"),
			goStringConst(t, grouplagFile, "GroupLabel"),
			goStringConst(t, grouplagFile, "PartitionLabel"),
		},
	}
}

// queryConfig returns the reader's ConfigMap literals of the base.
func queryConfig(t testing.TB, b k8sBase) map[string]string {
	t.Helper()
	g, ok := generatorNamed(b.kust.ConfigMapGenerator, "companias-query-config")
	if !ok {
		t.Fatal("kustomization.yaml has no configMapGenerator companias-query-config")
	}
	return b.generatorVars(t, g)
}

// TestK8sReaderHPASelectsTheLagMetricLabels checks the reader HPA's
// External lag metric against the code: the metric name, and a selector
// whose labels are ones the metric has (topic and group, both, since the
// writers export the same metric for their command group) with the
// reader's topic and group as values.
func TestK8sReaderHPASelectsTheLagMetricLabels(t *testing.T) {
	t.Parallel()
	lag := loadLagMetric(t)
	if lag.name != "companias_consumer_lag" || !slices.Equal(lag.labels, []string{"topic", "group", "partition"}) {
		// Not an error in itself, but the README, the alerts and this test
		// say these names: change them together.
		t.Errorf("%s exports %s%v; the deploy files and docs name companias_consumer_lag{topic,group,partition}", grouplagFile, lag.name, lag.labels)
	}
	b := loadK8s(t)
	env := queryConfig(t, b)
	o, ok := b.find("HorizontalPodAutoscaler", "companias-query")
	if !ok {
		t.Fatal("no HorizontalPodAutoscaler companias-query")
	}
	h := decodeAs[hpaExternal](t, o)
	found := false
	for _, m := range h.Spec.Metrics {
		if m.External == nil || m.External.Metric.Name != lag.name {
			continue
		}
		found = true
		sel := m.External.Metric.Selector.MatchLabels
		for k := range sel {
			if !slices.Contains(lag.labels, k) {
				t.Errorf("%s: the HPA selects %s by label %q, which the metric does not have (it has %v)", o.file, lag.name, k, lag.labels)
			}
		}
		want := map[string]string{lag.labels[0]: env["KAFKA_EVENTS_TOPIC"], lag.labels[1]: env["KAFKA_GROUP_ID"]}
		for k, v := range want {
			if sel[k] != v {
				t.Errorf("%s: the HPA selects %s{%s=%q}, want %q (the reader's configuration)", o.file, lag.name, k, sel[k], v)
			}
		}
		if _, ok := sel[lag.labels[2]]; ok {
			t.Errorf("%s: the HPA selects one partition; it must sum them all", o.file)
		}
		if m.External.Target.Type != "AverageValue" {
			t.Errorf("%s: lag target type %s, want AverageValue (the group's lag divided by the replicas)", o.file, m.External.Target.Type)
		}
	}
	if !found {
		t.Errorf("%s: no External metric %s", o.file, lag.name)
	}
}

// The subset of the HPA, Deployment and KEDA schemas these checks read.
type (
	hpaExternal struct {
		Spec struct {
			Metrics []struct {
				Type     string `yaml:"type"`
				External *struct {
					Metric struct {
						Name     string        `yaml:"name"`
						Selector labelSelector `yaml:"selector"`
					} `yaml:"metric"`
					Target struct {
						Type string `yaml:"type"`
					} `yaml:"target"`
				} `yaml:"external"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	namedContainer struct {
		Name string `yaml:"name"`
	}
	podSpecOf struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []namedContainer `yaml:"containers"`
					Volumes    []struct {
						Secret *struct {
							SecretName string `yaml:"secretName"`
							Items      []struct {
								Key string `yaml:"key"`
							} `yaml:"items"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	scaledObject struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			ScaleTargetRef  scaleTargetRef `yaml:"scaleTargetRef"`
			MinReplicaCount int            `yaml:"minReplicaCount"`
			MaxReplicaCount int            `yaml:"maxReplicaCount"`
			Triggers        []struct {
				Type              string            `yaml:"type"`
				MetricType        string            `yaml:"metricType"`
				Metadata          map[string]string `yaml:"metadata"`
				AuthenticationRef *struct {
					Name string `yaml:"name"`
				} `yaml:"authenticationRef"`
			} `yaml:"triggers"`
		} `yaml:"spec"`
	}
	triggerAuthentication struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		Spec       struct {
			Env []struct {
				Parameter     string `yaml:"parameter"`
				Name          string `yaml:"name"`
				ContainerName string `yaml:"containerName"`
			} `yaml:"env"`
			SecretTargetRef []struct {
				Parameter string `yaml:"parameter"`
				Name      string `yaml:"name"`
				Key       string `yaml:"key"`
			} `yaml:"secretTargetRef"`
		} `yaml:"spec"`
	}
	kustomizeComponent struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Resources  []string `yaml:"resources"`
		Patches    []struct {
			Target struct {
				Group   string `yaml:"group"`
				Version string `yaml:"version"`
				Kind    string `yaml:"kind"`
				Name    string `yaml:"name"`
			} `yaml:"target"`
			Patch string `yaml:"patch"`
		} `yaml:"patches"`
	}
)

// kedaDir is the KEDA component, relative to the repository root.
const kedaDir = "deploy/k8s/keda"

// loadKEDA decodes the component and its documents, strictly.
func loadKEDA(t testing.TB) (kustomizeComponent, []scaledObject, []triggerAuthentication) {
	t.Helper()
	k, objs := loadKustomization(t, kedaDir, func(k kustomizeComponent) []string { return k.Resources })
	var sos []scaledObject
	var tas []triggerAuthentication
	for _, o := range objs {
		switch o.Kind {
		case "ScaledObject":
			sos = append(sos, decodeAs[scaledObject](t, o))
		case "TriggerAuthentication":
			tas = append(tas, decodeAs[triggerAuthentication](t, o))
		default:
			t.Errorf("%s/%s: unexpected %s %s", kedaDir, o.file, o.Kind, o.Metadata.Name)
		}
	}
	return k, sos, tas
}

// topicPartitionsOf returns the partitions of topic in strimzi/kafka-topics.yaml.
func topicPartitionsOf(t testing.TB, topic string) int {
	t.Helper()
	for _, n := range strimziObjects(t, "KafkaTopic") {
		var kt struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				TopicName  string `yaml:"topicName"`
				Partitions int    `yaml:"partitions"`
			} `yaml:"spec"`
		}
		if err := n.Decode(&kt); err != nil {
			t.Fatal(err)
		}
		if kt.Metadata.Name == topic || kt.Spec.TopicName == topic {
			return kt.Spec.Partitions
		}
	}
	t.Fatalf("strimzi/kafka-topics.yaml has no KafkaTopic %s", topic)
	return 0
}

// TestK8sKEDAComponent checks the KEDA overlay against the base: a
// component that deletes the reader's HPA (KEDA makes its own) and adds a
// ScaledObject scaling the reader Deployment on the lag of the reader's
// group and topic, at most one replica per partition, authenticated as the
// reader with the Secrets its Deployment mounts.
func TestK8sKEDAComponent(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	env := queryConfig(t, b)
	k, sos, tas := loadKEDA(t)

	if k.APIVersion != "kustomize.config.k8s.io/v1alpha1" || k.Kind != "Component" {
		t.Errorf("%s/kustomization.yaml is %s %s, want a kustomize.config.k8s.io/v1alpha1 Component", kedaDir, k.APIVersion, k.Kind)
	}
	deletesHPA := false
	for _, p := range k.Patches {
		if p.Target.Kind == "HorizontalPodAutoscaler" && p.Target.Name == "companias-query" && strings.Contains(p.Patch, "$patch: delete") {
			deletesHPA = true
		}
	}
	if !deletesHPA {
		t.Errorf("%s does not delete the base's HPA companias-query: it and KEDA's HPA would fight over the Deployment", kedaDir)
	}

	if len(sos) != 1 {
		t.Fatalf("%s: %d ScaledObjects, want 1 (the reader's)", kedaDir, len(sos))
	}
	so := sos[0]
	if so.APIVersion != "keda.sh/v1alpha1" {
		t.Errorf("ScaledObject apiVersion %s, want keda.sh/v1alpha1", so.APIVersion)
	}
	ref := so.Spec.ScaleTargetRef
	if ref.Name != "companias-query" || (ref.Kind != "" && ref.Kind != "Deployment") || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
		t.Errorf("ScaledObject targets %s %s (%s), want the reader Deployment companias-query", ref.Kind, ref.Name, ref.APIVersion)
	}
	dep, ok := b.find("Deployment", ref.Name)
	if !ok {
		t.Fatalf("ScaledObject targets Deployment %s, which the base does not have", ref.Name)
	}
	partitions := topicPartitionsOf(t, env["KAFKA_EVENTS_TOPIC"])
	if so.Spec.MaxReplicaCount != partitions {
		t.Errorf("ScaledObject maxReplicaCount %d, want %d: the partitions of %s", so.Spec.MaxReplicaCount, partitions, env["KAFKA_EVENTS_TOPIC"])
	}
	if so.Spec.MinReplicaCount < 2 {
		t.Errorf("ScaledObject minReplicaCount %d, want at least 2 (the PDB keeps one)", so.Spec.MinReplicaCount)
	}

	var kafkaTriggers, cpu int
	for _, tr := range so.Spec.Triggers {
		switch tr.Type {
		case "cpu":
			cpu++
		case "kafka":
			kafkaTriggers++
			md := tr.Metadata
			for key, want := range map[string]string{
				"consumerGroup":    env["KAFKA_GROUP_ID"],
				"topic":            env["KAFKA_EVENTS_TOPIC"],
				"bootstrapServers": env["KAFKA_BROKERS"],
				// A never committed partition is read from its start.
				"offsetResetPolicy": "earliest",
			} {
				if md[key] != want {
					t.Errorf("kafka trigger %s = %q, want %q (the reader's configuration)", key, md[key], want)
				}
			}
			wantSASL := map[string]string{"SCRAM-SHA-512": "scram_sha512", "SCRAM-SHA-256": "scram_sha256", "PLAIN": "plaintext", "": ""}[env["KAFKA_SASL_MECHANISM"]]
			if md["sasl"] != wantSASL {
				t.Errorf("kafka trigger sasl = %q, want %q (KAFKA_SASL_MECHANISM=%s)", md["sasl"], wantSASL, env["KAFKA_SASL_MECHANISM"])
			}
			if (md["tls"] == "enable") != (env["KAFKA_TLS_ENABLED"] == "true") {
				t.Errorf("kafka trigger tls = %q, but KAFKA_TLS_ENABLED=%s", md["tls"], env["KAFKA_TLS_ENABLED"])
			}
			if md["allowIdleConsumers"] == "true" {
				t.Error("kafka trigger allowIdleConsumers: readers beyond the partitions sit idle")
			}
			if tr.AuthenticationRef == nil {
				t.Error("kafka trigger has no authenticationRef")
				continue
			}
			checkTriggerAuth(t, b, dep, env, tr.AuthenticationRef.Name, tas)
		}
	}
	if kafkaTriggers != 1 || cpu != 1 {
		t.Errorf("ScaledObject has %d kafka and %d cpu triggers, want one of each (the base HPA's metrics)", kafkaTriggers, cpu)
	}
}

// checkTriggerAuth checks that TriggerAuthentication name exists and reads
// the reader's credentials: the user name from the container's
// KAFKA_SASL_USERNAME, the password and CA from the Secrets and keys the
// Deployment mounts.
func checkTriggerAuth(t *testing.T, b k8sBase, dep k8sObject, env map[string]string, name string, tas []triggerAuthentication) {
	t.Helper()
	var ta *triggerAuthentication
	for i := range tas {
		if tas[i].Metadata.Name == name {
			ta = &tas[i]
		}
	}
	if ta == nil {
		t.Errorf("the kafka trigger references TriggerAuthentication %s, which %s does not define", name, kedaDir)
		return
	}
	d := decodeAs[podSpecOf](t, dep)
	mounted := map[string]bool{} // secret/key
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			for _, it := range v.Secret.Items {
				mounted[v.Secret.SecretName+"/"+it.Key] = true
			}
		}
	}
	params := map[string]bool{}
	for _, s := range ta.Spec.SecretTargetRef {
		params[s.Parameter] = true
		if !mounted[s.Name+"/"+s.Key] {
			t.Errorf("TriggerAuthentication %s reads %s from Secret %s key %s, which the reader Deployment does not mount (it mounts %v)", name, s.Parameter, s.Name, s.Key, mounted)
		}
	}
	for _, e := range ta.Spec.Env {
		params[e.Parameter] = true
		if _, ok := env[e.Name]; !ok {
			t.Errorf("TriggerAuthentication %s reads %s from env %s, which the reader's ConfigMap does not set", name, e.Parameter, e.Name)
		}
		if !slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c namedContainer) bool { return c.Name == e.ContainerName }) {
			t.Errorf("TriggerAuthentication %s reads env from container %q, which the reader Deployment does not have", name, e.ContainerName)
		}
	}
	want := []string{}
	if env["KAFKA_SASL_MECHANISM"] != "" {
		want = append(want, "username", "password")
	}
	if env["KAFKA_TLS_CA_FILE"] != "" {
		want = append(want, "ca")
	}
	for _, p := range want {
		if !params[p] {
			t.Errorf("TriggerAuthentication %s does not give %s, which the reader's configuration uses", name, p)
		}
	}
}
