package check

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The subset of the Kubernetes and kustomize schemas the checks read.
type (
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	k8sObject struct {
		APIVersion string  `yaml:"apiVersion"`
		Kind       string  `yaml:"kind"`
		Metadata   k8sMeta `yaml:"metadata"`
		file       string
		node       *yaml.Node
	}
	// podSecurityContext is the pod-level securityContext of a pod
	// template (a Deployment's or a Job's).
	podSecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	}
	// scaleTargetRef names what an HPA or a KEDA ScaledObject scales.
	scaleTargetRef struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Name       string `yaml:"name"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	httpProbe struct {
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"`
		} `yaml:"httpGet"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		EnvFrom []struct {
			ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
			SecretRef    *struct{ Name string } `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Env []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		ReadinessProbe *httpProbe `yaml:"readinessProbe"`
		LivenessProbe  *httpProbe `yaml:"livenessProbe"`
		StartupProbe   *httpProbe `yaml:"startupProbe"`
	}
	deployment struct {
		Spec struct {
			Selector labelSelector `yaml:"selector"`
			Template struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     struct {
					TerminationGracePeriodSeconds int                `yaml:"terminationGracePeriodSeconds"`
					SecurityContext               podSecurityContext `yaml:"securityContext"`
					Containers                    []container        `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	k8sService struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string    `yaml:"name"`
				Port       int       `yaml:"port"`
				TargetPort yaml.Node `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	hpa struct {
		Spec struct {
			ScaleTargetRef scaleTargetRef `yaml:"scaleTargetRef"`
			MinReplicas    int            `yaml:"minReplicas"`
			MaxReplicas    int            `yaml:"maxReplicas"`
			Metrics        []struct {
				Type     string `yaml:"type"`
				Resource *struct {
					Name string `yaml:"name"`
				} `yaml:"resource"`
				External *struct {
					Metric struct {
						Name string `yaml:"name"`
					} `yaml:"metric"`
				} `yaml:"external"`
				Pods *struct {
					Metric struct {
						Name string `yaml:"name"`
					} `yaml:"metric"`
				} `yaml:"pods"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	pdb struct {
		Spec struct {
			MinAvailable   yaml.Node     `yaml:"minAvailable"`
			MaxUnavailable yaml.Node     `yaml:"maxUnavailable"`
			Selector       labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	generator struct {
		Name     string   `yaml:"name"`
		Literals []string `yaml:"literals"`
		Envs     []string `yaml:"envs"`
		Files    []string `yaml:"files"`
	}
	kustomization struct {
		APIVersion       string   `yaml:"apiVersion"`
		Kind             string   `yaml:"kind"`
		Labels           any      `yaml:"labels"`
		GeneratorOptions any      `yaml:"generatorOptions"`
		Resources        []string `yaml:"resources"`
		Images           []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
		ConfigMapGenerator []generator `yaml:"configMapGenerator"`
		SecretGenerator    []generator `yaml:"secretGenerator"`
	}
)

// k8sBase is deploy/k8s, parsed.
type k8sBase struct {
	dir       string
	kust      kustomization
	objects   []k8sObject
	manifests []string // every .yaml/.yml file but kustomization.yaml, relative to dir
}

func loadK8s(t testing.TB) k8sBase {
	t.Helper()
	b := k8sBase{dir: filepath.Join(repoRoot(t), "deploy", "k8s")}
	err := filepath.WalkDir(b.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// A subdirectory with its own kustomization (strimzi/) is
			// applied on its own, not by the base.
			if _, serr := os.Stat(filepath.Join(path, "kustomization.yaml")); path != b.dir && serr == nil {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".yaml" && ext != ".yml" {
			return nil
		}
		rel, _ := filepath.Rel(b.dir, path)
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rel == "kustomization.yaml" || rel == "kustomization.yml" {
			return decodeStrict(raw, &b.kust)
		}
		b.manifests = append(b.manifests, rel)
		objs, err := decodeObjects(rel, raw)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", rel)
				continue
			}
			b.objects = append(b.objects, o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeStrict decodes YAML, failing on fields the target does not know:
// a misspelt kustomization field would otherwise be ignored by the checks.
func decodeStrict(raw []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// decodeObjects decodes every YAML document of raw as a k8sObject that keeps
// its node, and file: where raw was read, for failure messages.
func decodeObjects(file string, raw []byte) ([]k8sObject, error) {
	var objs []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		var o k8sObject
		if err := n.Decode(&o); err != nil {
			return nil, err
		}
		o.file, o.node = file, &n
		objs = append(objs, o)
	}
}

// loadKustomization decodes relDir/kustomization.yaml (relDir relative to
// the repository root) strictly as a K, and returns it with the objects of
// every manifest that resources(K) lists, each with its file relative to
// relDir. It fails the test on a file it cannot read or decode.
func loadKustomization[K any](t testing.TB, relDir string, resources func(K) []string) (K, []k8sObject) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), relDir)
	var k K
	if err := decodeStrict([]byte(readFile(t, filepath.Join(dir, "kustomization.yaml"))), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", relDir, err)
	}
	var objs []k8sObject
	for _, r := range resources(k) {
		docs, err := decodeObjects(r, []byte(readFile(t, filepath.Join(dir, r))))
		if err != nil {
			t.Fatalf("%s/%s: %v", relDir, r, err)
		}
		objs = append(objs, docs...)
	}
	return k, objs
}

func (b k8sBase) find(kind, name string) (k8sObject, bool) {
	for _, o := range b.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

func decodeAs[T any](t testing.TB, o k8sObject) T {
	t.Helper()
	var v T
	if err := o.node.Decode(&v); err != nil {
		t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
	return v
}

// generatorVars returns the key=value pairs of a generator: its literals and
// its env files (the committed .example of a git-ignored file).
func (b k8sBase) generatorVars(t testing.TB, g generator) map[string]string {
	t.Helper()
	out := map[string]string{}
	add := func(kv, where string) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Errorf("%s: %q is not KEY=value", where, kv)
			return
		}
		out[k] = v
	}
	for _, l := range g.Literals {
		add(l, "generator "+g.Name)
	}
	for _, e := range g.Envs {
		ex := filepath.Join(b.dir, e+".example")
		raw, err := os.ReadFile(ex)
		if err != nil {
			t.Errorf("generator %s reads %s, which must be git-ignored with a committed %s: %v", g.Name, e, e+".example", err)
			continue
		}
		if !bytes.Contains(raw, []byte("EXAMPLE")) {
			t.Errorf("%s is not marked as an example", ex)
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				add(line, ex)
			}
		}
	}
	if len(g.Files) > 0 {
		t.Errorf("generator %s uses files:, which these checks do not read; use literals or envs", g.Name)
	}
	return out
}

func generatorNamed(gs []generator, name string) (generator, bool) {
	for _, g := range gs {
		if g.Name == name {
			return g, true
		}
	}
	return generator{}, false
}

// TestKustomizationListsEveryManifest: a manifest missing from resources is
// silently never applied.
func TestKustomizationListsEveryManifest(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	for _, m := range b.manifests {
		if !slices.Contains(b.kust.Resources, m) {
			t.Errorf("kustomization.yaml does not list %s", m)
		}
	}
	for _, r := range b.kust.Resources {
		if !slices.Contains(b.manifests, r) {
			t.Errorf("kustomization.yaml lists %s, which is not a manifest in deploy/k8s", r)
		}
	}
	if len(b.kust.Resources) == 0 {
		t.Fatal("kustomization.yaml lists no resources")
	}
}

func portMatches(n yaml.Node, name string, number int) bool {
	return n.Value == name || n.Value == strconv.Itoa(number)
}

func TestK8sDeployments(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	for _, svc := range services() {
		o, ok := b.find("Deployment", svc.k8sName)
		if !ok {
			t.Errorf("no Deployment %s", svc.k8sName)
			continue
		}
		d := decodeAs[deployment](t, o)
		where := o.file
		sel := d.Spec.Selector.MatchLabels
		if len(sel) == 0 || !subset(sel, d.Spec.Template.Metadata.Labels) {
			t.Errorf("%s: selector %v does not match the pod labels %v", where, sel, d.Spec.Template.Metadata.Labels)
		}
		ps := d.Spec.Template.Spec
		if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext must set runAsNonRoot: true and a non-zero runAsUser", where)
		}
		if len(ps.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", where, len(ps.Containers))
			continue
		}
		c := ps.Containers[0]
		// Image: a name the kustomization maps to the image compose builds.
		mapped := false
		for _, img := range b.kust.Images {
			if img.Name == c.Image {
				mapped = img.NewName == svc.image && img.NewTag != "" && img.NewTag != "latest"
			}
		}
		if !mapped {
			t.Errorf("%s: image %q is not mapped by kustomization images to %s:<pinned tag>", where, c.Image, svc.image)
		}
		// The API on http; GET /metrics on a port of its own, which the
		// pod's scrape annotations name.
		if len(c.Ports) != 2 || c.Ports[0].ContainerPort != svc.port || c.Ports[0].Name != "http" ||
			c.Ports[1].ContainerPort != svc.metricsPort || c.Ports[1].Name != "metrics" {
			t.Errorf("%s: ports %+v, want http/%d and metrics/%d", where, c.Ports, svc.port, svc.metricsPort)
		}
		if a := d.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" ||
			a["prometheus.io/port"] != strconv.Itoa(svc.metricsPort) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s: pod annotations %v, want prometheus.io scrape true, port %d, path /metrics", where, a, svc.metricsPort)
		}
		for _, p := range []struct {
			kind  string
			probe *httpProbe
			path  string
		}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}, {"startupProbe", c.StartupProbe, "/healthz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: no httpGet %s", where, p.kind)
				continue
			}
			if p.probe.HTTPGet.Path != p.path || !portMatches(p.probe.HTTPGet.Port, "http", svc.port) {
				t.Errorf("%s: %s GET %s on port %q, want %s on http/%d", where, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.Value, p.path, svc.port)
			}
		}
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container securityContext must be read-only root FS, no privilege escalation, non-root, drop ALL", where)
		}
		for _, r := range []string{"cpu", "memory"} {
			if c.Resources.Requests[r] == "" {
				t.Errorf("%s: no %s request (the HPA's CPU utilisation needs it)", where, r)
			}
		}
		if c.Resources.Limits["memory"] == "" {
			t.Errorf("%s: no memory limit", where)
		}
		// Configuration: a generated ConfigMap and Secret whose keys, and the
		// container's own env, are variables the service reads.
		var names []string
		for _, e := range c.Env {
			names = append(names, e.Name)
		}
		config := map[string]string{}
		var cms, secrets int
		for _, ef := range c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				cms++
				g, ok := generatorNamed(b.kust.ConfigMapGenerator, ef.ConfigMapRef.Name)
				if !ok {
					t.Errorf("%s: envFrom ConfigMap %s is not generated by kustomization.yaml", where, ef.ConfigMapRef.Name)
					continue
				}
				for k, v := range b.generatorVars(t, g) {
					names = append(names, k)
					config[k] = v
				}
			case ef.SecretRef != nil:
				secrets++
				g, ok := generatorNamed(b.kust.SecretGenerator, ef.SecretRef.Name)
				if !ok {
					t.Errorf("%s: envFrom Secret %s is not generated by kustomization.yaml", where, ef.SecretRef.Name)
					continue
				}
				for k, v := range b.generatorVars(t, g) {
					names = append(names, k)
					config[k] = v
				}
			}
		}
		if cms != 1 || secrets != 1 {
			t.Errorf("%s: %d ConfigMaps and %d Secrets in envFrom, want 1 and 1", where, cms, secrets)
		}
		checkEnvNames(t, where, svc, names, runtimeVars)
		checkAuthOn(t, where, svc, config)
		if config["HTTP_ADDR"] != ":"+strconv.Itoa(svc.port) {
			t.Errorf("%s: HTTP_ADDR %q does not listen on the container port %d", where, config["HTTP_ADDR"], svc.port)
		}
		if config["METRICS_ADDR"] != ":"+strconv.Itoa(svc.metricsPort) {
			t.Errorf("%s: METRICS_ADDR %q does not listen on the metrics container port %d", where, config["METRICS_ADDR"], svc.metricsPort)
		}
		// Writer and reader alike: their principals may not create topics.
		if config["KAFKA_CREATE_TOPICS"] != "false" {
			t.Errorf("%s: KAFKA_CREATE_TOPICS=%q, want false (topics are provisioned with deploy/kafka)", where, config["KAFKA_CREATE_TOPICS"])
		}
		if st, err := time.ParseDuration(config["SHUTDOWN_TIMEOUT"]); err != nil || time.Duration(ps.TerminationGracePeriodSeconds)*time.Second <= 2*st {
			t.Errorf("%s: terminationGracePeriodSeconds %d must exceed 2 x SHUTDOWN_TIMEOUT (%q): HTTP drain, then the workers' stop",
				where, ps.TerminationGracePeriodSeconds, config["SHUTDOWN_TIMEOUT"])
		}
	}
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestK8sServicesHPAsPDBs checks that each Service, HorizontalPodAutoscaler
// and PodDisruptionBudget points at a Deployment of the base.
func TestK8sServicesHPAsPDBs(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	deps := map[string]deployment{}
	for _, o := range b.objects {
		if o.Kind == "Deployment" {
			deps[o.Metadata.Name] = decodeAs[deployment](t, o)
		}
	}
	selecting := func(sel map[string]string) []string {
		var out []string
		for name, d := range deps {
			if len(sel) > 0 && subset(sel, d.Spec.Template.Metadata.Labels) {
				out = append(out, name)
			}
		}
		return out
	}
	counts := map[string]int{}
	for _, o := range b.objects {
		counts[o.Kind]++
		switch o.Kind {
		case "Service":
			s := decodeAs[k8sService](t, o)
			sel := selecting(s.Spec.Selector)
			if len(sel) != 1 {
				t.Errorf("%s: Service %s selects Deployments %v, want exactly one", o.file, o.Metadata.Name, sel)
				continue
			}
			ports := deps[sel[0]].Spec.Template.Spec.Containers[0].Ports
			for _, p := range s.Spec.Ports {
				ok := false
				for _, port := range ports {
					ok = ok || p.Name == port.Name && portMatches(p.TargetPort, port.Name, port.ContainerPort)
				}
				if !ok {
					t.Errorf("%s: port %s targetPort %q is not the container port of that name %+v", o.file, p.Name, p.TargetPort.Value, ports)
				}
			}
		case "PodDisruptionBudget":
			p := decodeAs[pdb](t, o)
			if sel := selecting(p.Spec.Selector.MatchLabels); len(sel) != 1 {
				t.Errorf("%s: PDB %s selects Deployments %v, want exactly one", o.file, o.Metadata.Name, sel)
			}
			if (p.Spec.MinAvailable.Kind == 0) == (p.Spec.MaxUnavailable.Kind == 0) {
				t.Errorf("%s: PDB %s must set one of minAvailable and maxUnavailable", o.file, o.Metadata.Name)
			}
		case "HorizontalPodAutoscaler":
			h := decodeAs[hpa](t, o)
			ref := h.Spec.ScaleTargetRef
			if _, ok := deps[ref.Name]; !ok || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
				t.Errorf("%s: HPA %s scales %s %s (%s), which is not a Deployment of the base", o.file, o.Metadata.Name, ref.Kind, ref.Name, ref.APIVersion)
			}
			if o.APIVersion != "autoscaling/v2" {
				t.Errorf("%s: HPA apiVersion %s, want autoscaling/v2", o.file, o.APIVersion)
			}
			if h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < h.Spec.MinReplicas {
				t.Errorf("%s: replicas %d..%d; want at least 2 (the PDB keeps one) and max >= min", o.file, h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
			metrics := map[string]bool{}
			for _, m := range h.Spec.Metrics {
				switch {
				case m.Type == "Resource" && m.Resource != nil:
					metrics["resource:"+m.Resource.Name] = true
				case m.Type == "External" && m.External != nil:
					metrics["metric:"+m.External.Metric.Name] = true
				case m.Type == "Pods" && m.Pods != nil:
					metrics["metric:"+m.Pods.Metric.Name] = true
				default:
					t.Errorf("%s: HPA metric of type %s without its %s block", o.file, m.Type, strings.ToLower(m.Type))
				}
			}
			want := []string{"resource:cpu"}
			if ref.Name == "companias-query" {
				want = append(want, "metric:companias_consumer_lag")
				if h.Spec.MaxReplicas > topicPartitions {
					t.Errorf("%s: maxReplicas %d: readers beyond the %d partitions sit idle", o.file, h.Spec.MaxReplicas, topicPartitions)
				}
			}
			for _, w := range want {
				if !metrics[w] {
					t.Errorf("%s: HPA %s does not scale on %s (has %v)", o.file, o.Metadata.Name, w, metrics)
				}
			}
		}
	}
	for kind, n := range map[string]int{"Deployment": 2, "Service": 2, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 2} {
		if counts[kind] != n {
			t.Errorf("%d %s objects, want %d (writer and reader)", counts[kind], kind, n)
		}
	}
}
