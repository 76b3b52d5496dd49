package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	// monitoringDir holds the operator resources and the dashboard.
	monitoringDir = "deploy/k8s/monitoring"
	// dashboardFile is the Grafana dashboard of the pipeline.
	dashboardFile = "companias-pipeline.json"
	// dashboardConfigMap is the generated ConfigMap holding it.
	dashboardConfigMap = "companias-dashboards"
)

// The subset of the monitoring kustomization and ServiceMonitor the checks read.
type (
	monitoringKustomization struct {
		APIVersion         string   `yaml:"apiVersion"`
		Kind               string   `yaml:"kind"`
		Labels             any      `yaml:"labels"`
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Name    string   `yaml:"name"`
			Files   []string `yaml:"files"`
			Options struct {
				DisableNameSuffixHash bool              `yaml:"disableNameSuffixHash"`
				Labels                map[string]string `yaml:"labels"`
			} `yaml:"options"`
		} `yaml:"configMapGenerator"`
	}
	serviceMonitor struct {
		Spec struct {
			JobLabel          string        `yaml:"jobLabel"`
			Selector          labelSelector `yaml:"selector"`
			NamespaceSelector any           `yaml:"namespaceSelector"`
			Endpoints         []struct {
				Port       string `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
				Path       string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
)

// loadMonitoring reads deploy/k8s/monitoring: its kustomization (strictly)
// and the objects of the manifests it lists.
func loadMonitoring(t testing.TB) (monitoringKustomization, []k8sObject) {
	t.Helper()
	return loadKustomization(t, monitoringDir, func(k monitoringKustomization) []string { return k.Resources })
}

// TestMonitoringKustomization: the monitoring directory lists every
// manifest, holds the PrometheusRule and a ServiceMonitor per service on
// the Service port the admin listener is exposed on, and generates the
// dashboard ConfigMap for Grafana's sidecar.
func TestMonitoringKustomization(t *testing.T) {
	t.Parallel()
	k, objs := loadMonitoring(t)
	dir := filepath.Join(repoRoot(t), monitoringDir)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s/kustomization.yaml is %s %s", monitoringDir, k.APIVersion, k.Kind)
	}
	yamls, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, y := range yamls {
		if b := filepath.Base(y); b != "kustomization.yaml" && !slices.Contains(k.Resources, b) {
			t.Errorf("%s/kustomization.yaml does not list %s", monitoringDir, b)
		}
	}
	if !slices.Contains(k.Resources, filepath.Base(prometheusRuleFile)) {
		t.Errorf("%s/kustomization.yaml does not list %s", monitoringDir, filepath.Base(prometheusRuleFile))
	}
	// The base must not need the operator's CRDs.
	if slices.ContainsFunc(loadK8s(t).objects, func(o k8sObject) bool { return strings.HasPrefix(o.APIVersion, "monitoring.coreos.com/") }) {
		t.Error("the base deploy/k8s holds a monitoring.coreos.com resource; it belongs in deploy/k8s/monitoring")
	}

	base := loadK8s(t)
	monitored := map[string]bool{} // Service names
	for _, o := range objs {
		switch o.Kind {
		case "PrometheusRule":
		case "ServiceMonitor":
			if o.APIVersion != "monitoring.coreos.com/v1" {
				t.Errorf("%s: ServiceMonitor %s has apiVersion %s", o.file, o.Metadata.Name, o.APIVersion)
			}
			for _, err := range checkServiceMonitor(t, base, decodeAs[serviceMonitor](t, o), monitored) {
				t.Errorf("%s: ServiceMonitor %s: %v", o.file, o.Metadata.Name, err)
			}
		default:
			t.Errorf("%s: unexpected %s %s", o.file, o.Kind, o.Metadata.Name)
		}
	}
	for _, svc := range services() {
		if !monitored[svc.k8sName] {
			t.Errorf("no ServiceMonitor scrapes Service %s", svc.k8sName)
		}
	}

	if len(k.ConfigMapGenerator) != 1 {
		t.Fatalf("%d configMapGenerators, want 1 (the dashboards)", len(k.ConfigMapGenerator))
	}
	g := k.ConfigMapGenerator[0]
	if g.Name != dashboardConfigMap || !slices.Equal(g.Files, []string{dashboardFile}) ||
		g.Options.Labels["grafana_dashboard"] != "1" || !g.Options.DisableNameSuffixHash {
		t.Errorf("configMapGenerator %+v, want %s with files [%s], label grafana_dashboard=1 and a stable name",
			g, dashboardConfigMap, dashboardFile)
	}
}

// checkServiceMonitor checks a ServiceMonitor against the base: it selects
// exactly one Service of a service in services(), in its own namespace,
// with the Service's name as job (the rules use it), on the Service port
// that reaches the Deployment's metrics container port (METRICS_ADDR),
// path /metrics. It records the Service in monitored.
func checkServiceMonitor(t testing.TB, base k8sBase, sm serviceMonitor, monitored map[string]bool) []error {
	t.Helper()
	var errs []error
	if sm.Spec.JobLabel != "" || sm.Spec.NamespaceSelector != nil {
		errs = append(errs, errors.New("sets jobLabel or namespaceSelector; the rules expect job = the Service's name in the same namespace"))
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 {
		return append(errs, errors.New("no selector.matchLabels"))
	}
	var matched []k8sObject
	for _, o := range base.objects {
		if o.Kind == "Service" && subset(sm.Spec.Selector.MatchLabels, o.Metadata.Labels) {
			matched = append(matched, o)
		}
	}
	if len(matched) != 1 {
		return append(errs, fmt.Errorf("selector %v matches %d Services of the base, want 1", sm.Spec.Selector.MatchLabels, len(matched)))
	}
	svcObj := matched[0]
	i := slices.IndexFunc(services(), func(s service) bool { return s.k8sName == svcObj.Metadata.Name })
	if i < 0 {
		return append(errs, fmt.Errorf("selects Service %s, which is not a companias service", svcObj.Metadata.Name))
	}
	want := services()[i]
	monitored[want.k8sName] = true
	svc := decodeAs[k8sService](t, svcObj)
	dep, ok := base.find("Deployment", want.k8sName)
	if !ok {
		return append(errs, fmt.Errorf("no Deployment %s", want.k8sName))
	}
	var containerPort string // name of the container port of METRICS_ADDR
	for _, c := range decodeAs[deployment](t, dep).Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.ContainerPort == want.metricsPort {
				containerPort = p.Name
			}
		}
	}
	if containerPort == "" {
		return append(errs, fmt.Errorf("Deployment %s has no named container port %d (METRICS_ADDR)", want.k8sName, want.metricsPort))
	}
	if len(sm.Spec.Endpoints) != 1 {
		return append(errs, fmt.Errorf("%d endpoints, want 1 (the metrics port)", len(sm.Spec.Endpoints)))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.TargetPort != nil || ep.Path != "/metrics" {
		errs = append(errs, fmt.Errorf("endpoint %+v: want port by name and path /metrics", ep))
	}
	found := false
	for _, p := range svc.Spec.Ports {
		if p.Name != ep.Port {
			continue
		}
		found = true
		if !portMatches(p.TargetPort, containerPort, want.metricsPort) {
			errs = append(errs, fmt.Errorf("Service %s port %s targets %s, not the metrics container port %s/%d",
				want.k8sName, p.Name, p.TargetPort.Value, containerPort, want.metricsPort))
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("endpoint port %q is not a port name of Service %s", ep.Port, want.k8sName))
	}
	return errs
}

// TestServiceMonitorRejectsMistakes: checkServiceMonitor fails on a port
// name the Service lacks, the API port, and a selector matching nothing.
func TestServiceMonitorRejectsMistakes(t *testing.T) {
	t.Parallel()
	base := loadK8s(t)
	good := func() serviceMonitor {
		var sm serviceMonitor
		sm.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "companias-query"}
		sm.Spec.Endpoints = append(sm.Spec.Endpoints, struct {
			Port       string `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
			Path       string `yaml:"path"`
		}{Port: "metrics", Path: "/metrics"})
		return sm
	}
	if errs := checkServiceMonitor(t, base, good(), map[string]bool{}); len(errs) > 0 {
		t.Fatalf("a correct ServiceMonitor: %v", errs)
	}
	for name, mutate := range map[string]func(*serviceMonitor){
		"port typo":     func(sm *serviceMonitor) { sm.Spec.Endpoints[0].Port = "metric" },
		"API port":      func(sm *serviceMonitor) { sm.Spec.Endpoints[0].Port = "http" },
		"no Service":    func(sm *serviceMonitor) { sm.Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "companias-queries" },
		"job relabeled": func(sm *serviceMonitor) { sm.Spec.JobLabel = "app.kubernetes.io/name" },
	} {
		sm := good()
		mutate(&sm)
		if errs := checkServiceMonitor(t, base, sm, map[string]bool{}); len(errs) == 0 {
			t.Errorf("%s: checkServiceMonitor found nothing wrong", name)
		}
	}
}

// TestMonitoringKustomizeBuild renders deploy/k8s/monitoring.
func TestMonitoringKustomizeBuild(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(repoRoot(t), monitoringDir)
	objs := kustomizeBuild(t, dir, monitoringDir)
	checkPartOf(t, objs)
	for _, o := range objs {
		if o.Kind != "ConfigMap" {
			continue
		}
		if o.Metadata.Name != dashboardConfigMap || o.Metadata.Labels["grafana_dashboard"] != "1" {
			t.Errorf("rendered ConfigMap %s labels %v, want %s with grafana_dashboard=1", o.Metadata.Name, o.Metadata.Labels, dashboardConfigMap)
		}
		cm := decodeAs[struct {
			Data map[string]string `yaml:"data"`
		}](t, o)
		if cm.Data[dashboardFile] != readFile(t, filepath.Join(dir, dashboardFile)) {
			t.Errorf("rendered ConfigMap key %s is not the dashboard file", dashboardFile)
		}
	}
	if got, want := kindCounts(objs), map[string]int{"PrometheusRule": 1, "ServiceMonitor": len(services()), "ConfigMap": 1}; !mapsEqual(got, want) {
		t.Errorf("rendered kinds %v, want %v", got, want)
	}
}

// The subset of a Grafana dashboard the checks read.
type (
	grafanaTarget struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	grafanaPanel struct {
		ID      int             `json:"id"`
		Type    string          `json:"type"`
		Title   string          `json:"title"`
		Targets []grafanaTarget `json:"targets"`
		Panels  []grafanaPanel  `json:"panels"` // a row's, when collapsed
	}
	grafanaDashboard struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []grafanaPanel `json:"panels"`
	}
)

// grafanaRanges are Grafana's built-in interval variables, replaced by a
// duration before an expression is parsed as PromQL.
var grafanaRanges = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}`)

// grafanaVar is a reference to a dashboard variable in an expression.
var grafanaVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// checkDashboard checks a Grafana dashboard's JSON: it decodes, has a uid
// and a title, its panels have unique ids, every non-row panel has
// targets, and every target's expression, with Grafana's interval
// variables replaced by 5m, passes c.check and uses only the dashboard's
// own variables. It returns the number of expressions and every problem.
func checkDashboard(c *promqlChecker, raw []byte) (int, error) {
	var d grafanaDashboard
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&d); err != nil {
		return 0, fmt.Errorf("decode: %w", err)
	}
	var errs []error
	if d.UID == "" || d.Title == "" {
		errs = append(errs, errors.New("no uid or title"))
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		errs = append(errs, errors.New("no datasource variable (type datasource) to pick the Prometheus with"))
	}
	ids := map[int]bool{}
	exprs := 0
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				errs = append(errs, fmt.Errorf("panel id %d used twice", p.ID))
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Errorf("panel %q has no targets", p.Title))
			}
			for _, tg := range p.Targets {
				exprs++
				e := grafanaRanges.ReplaceAllString(tg.Expr, "5m")
				for _, m := range grafanaVar.FindAllStringSubmatch(e, -1) {
					if _, ok := vars[m[1]]; !ok {
						errs = append(errs, fmt.Errorf("panel %q target %s: variable $%s is not a dashboard variable", p.Title, tg.RefID, m[1]))
					}
				}
				if _, err := c.check(e); err != nil {
					errs = append(errs, fmt.Errorf("panel %q target %s: %w", p.Title, tg.RefID, err))
				}
			}
		}
	}
	walk(d.Panels)
	return exprs, errors.Join(errs...)
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	c := newPromQLChecker(t)
	raw := []byte(readFile(t, filepath.Join(repoRoot(t), monitoringDir, dashboardFile)))
	n, err := checkDashboard(c, raw)
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Errorf("the dashboard has %d expressions; the pipeline needs more", n)
	}
	// Each stage of the pipeline shows on it.
	for _, m := range []string{
		"companias_http_requests_total", "companias_http_request_duration_seconds_bucket",
		"companias_outbox_backlog_rows", "companias_outbox_oldest_unpublished_age_seconds", "companias_outbox_parked_rows",
		"companias_relay_published_rows_total", "companias_relay_leader", "companias_consumer_lag",
		"companias_projection_freshness_seconds_bucket", "companias_events_applied_total",
		"companias_projection_store_timeouts_total",
	} {
		if !bytes.Contains(raw, []byte(m)) {
			t.Errorf("the dashboard shows no %s", m)
		}
	}
	// Its job variables default to the jobs the ServiceMonitors give.
	var d struct {
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]string{}
	for _, v := range d.Templating.List {
		jobs[v.Name] = v.Query
	}
	for _, svc := range services() {
		v := "reader_job"
		if svc.writer {
			v = "writer_job"
		}
		if jobs[v] != svc.k8sName {
			t.Errorf("dashboard variable %s = %q, want the Service name %q (the job the ServiceMonitor gives)", v, jobs[v], svc.k8sName)
		}
	}
}

// TestDashboardRejectsMistakes: checkDashboard fails on broken JSON, a
// PromQL typo, an unknown metric and an unknown variable.
func TestDashboardRejectsMistakes(t *testing.T) {
	t.Parallel()
	c := newPromQLChecker(t)
	raw := readFile(t, filepath.Join(repoRoot(t), monitoringDir, dashboardFile))
	for _, tc := range []struct{ name, old, new, want string }{
		{"json", `"panels": [`, `"panels": [,`, "decode"},
		{"syntax", `"expr": "max(companias_outbox_backlog_rows)"`, `"expr": "max(companias_outbox_backlog_rows"`, "parse"},
		{"metric", `"expr": "max(companias_outbox_backlog_rows)"`, `"expr": "max(companias_outbox_backlog_row)"`, "defined nowhere"},
		{"variable", `job=~\"$reader_job\"`, `job=~\"$reader\"`, "not a dashboard variable"},
		{"duplicate id", `"id": 2,`, `"id": 1,`, "used twice"},
	} {
		if !strings.Contains(raw, tc.old) {
			t.Fatalf("%s: the dashboard no longer contains %q; update this test", tc.name, tc.old)
		}
		if _, err := checkDashboard(c, []byte(strings.Replace(raw, tc.old, tc.new, 1))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: checkDashboard = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
