package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"gopkg.in/yaml.v3"
)

const (
	// prometheusRuleFile is the one source of the alerting rules.
	prometheusRuleFile = "deploy/k8s/monitoring/prometheusrule.yaml"
	// plainAlertsFile is the same groups for a Prometheus without the
	// operator; UPDATE_ALERTS=1 regenerates it.
	plainAlertsFile = "deploy/prometheus/alerts.yaml"
	// runbookBase is the README every runbook_url points into.
	runbookBase = "https://github.com/propalpes/companias/blob/main/README.md#"
	// alertsSection is the README heading under which each alert has a
	// "#### <alert name>" heading of its own.
	alertsSection = "### Alerts and dashboards"
)

// severities are the values of the severity label a rule may have.
var severities = []string{"warning", "critical"}

// plainAlertsHeader opens the generated plain rules file.
const plainAlertsHeader = `# Generated from deploy/k8s/monitoring/prometheusrule.yaml (its spec): do not
# edit; edit that file and run
#   cd deploy/check && UPDATE_ALERTS=1 GOWORK=off go test -run TestPlainAlertsFile ./...
# The alerting rules of the companias system for a Prometheus without the
# operator (rule_files: [alerts.yaml]); deploy/check fails when the two
# differ. The rules expect the labels job=companias-command and
# job=companias-query on the services' targets (the Services' names, as
# the ServiceMonitors set them).
`

// ruleGroupsOf returns the spec.groups of a PrometheusRule manifest as a
// plain Prometheus rules document (groups: …), comments kept.
func ruleGroupsOf(manifest []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(manifest, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not one YAML document")
	}
	var head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	if err := doc.Content[0].Decode(&head); err != nil {
		return nil, err
	}
	if head.APIVersion != "monitoring.coreos.com/v1" || head.Kind != "PrometheusRule" {
		return nil, fmt.Errorf("%s %s, want monitoring.coreos.com/v1 PrometheusRule", head.APIVersion, head.Kind)
	}
	groups := mappingValue(mappingValue(doc.Content[0], "spec"), "groups")
	if groups == nil {
		return nil, errors.New("no spec.groups")
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "groups"}, groups}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// mappingValue returns the value of key in a mapping node, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// parseRules validates a plain rules document as Prometheus loads it
// (rulefmt, with unknown fields refused and the legacy name scheme: what
// `promtool check rules` checks, the PromQL of every expression included).
func parseRules(c *promqlChecker, content []byte) (*rulefmt.RuleGroups, error) {
	groups, errs := rulefmt.Parse(content, false, model.LegacyValidation, c.parser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if groups == nil || len(groups.Groups) == 0 {
		return nil, errors.New("no rule groups")
	}
	return groups, nil
}

// checkAlertRules checks the rules of a PrometheusRule manifest: they
// load in Prometheus, every expression names only metrics that exist
// (c.check), and every rule is an alert with a for of at least a minute, a
// severity, a summary, a description and a runbook_url to the README
// heading of its name, which must be one of anchors. It returns every
// problem found.
func checkAlertRules(c *promqlChecker, manifest []byte, anchors map[string]bool) (*rulefmt.RuleGroups, error) {
	plain, err := ruleGroupsOf(manifest)
	if err != nil {
		return nil, err
	}
	groups, err := parseRules(c, plain)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			id := g.Name + "/" + r.Alert
			if r.Alert == "" {
				errs = append(errs, fmt.Errorf("group %s: rule %q is not an alert (recording rules are not used here)", g.Name, r.Record))
				continue
			}
			if _, err := c.check(r.Expr); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
			}
			if time.Duration(r.For) < time.Minute {
				errs = append(errs, fmt.Errorf("%s: for is %v; every alert waits at least 1m", id, r.For))
			}
			if !slices.Contains(severities, r.Labels["severity"]) {
				errs = append(errs, fmt.Errorf("%s: severity label %q, want one of %v", id, r.Labels["severity"], severities))
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					errs = append(errs, fmt.Errorf("%s: no %s annotation", id, a))
				}
			}
			anchor := strings.ToLower(r.Alert)
			if u := r.Annotations["runbook_url"]; u != runbookBase+anchor {
				errs = append(errs, fmt.Errorf("%s: runbook_url %q, want %q", id, u, runbookBase+anchor))
			}
			if !anchors[anchor] {
				errs = append(errs, fmt.Errorf("%s: README.md has no heading \"#### %s\" under %q", id, r.Alert, alertsSection))
			}
		}
	}
	return groups, errors.Join(errs...)
}

// readmeAlertAnchors returns the GitHub anchors of the "####" headings in
// the README's alerts section.
func readmeAlertAnchors(t testing.TB) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(repoRoot(t), "README.md"))))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == alertsSection:
			in = true
		case strings.HasPrefix(line, "## "), strings.HasPrefix(line, "### "):
			in = false
		case in && strings.HasPrefix(line, "#### "):
			anchors[githubAnchor(strings.TrimPrefix(line, "#### "))] = true
		}
	}
	if len(anchors) == 0 {
		t.Fatalf("README.md has no \"#### \" headings under %q", alertsSection)
	}
	return anchors
}

var anchorDrop = regexp.MustCompile(`[^\p{L}\p{N}\- _]`)

// githubAnchor is the fragment GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	s := anchorDrop.ReplaceAllString(strings.ToLower(strings.TrimSpace(heading)), "")
	return strings.ReplaceAll(s, " ", "-")
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	c := newPromQLChecker(t)
	anchors := readmeAlertAnchors(t)
	manifest := []byte(readFile(t, filepath.Join(repoRoot(t), prometheusRuleFile)))
	groups, err := checkAlertRules(c, manifest, anchors)
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts[strings.ToLower(r.Alert)] = true
		}
	}
	for a := range anchors {
		if !alerts[a] {
			t.Errorf("README.md documents alert #%s under %q, which no rule raises", a, alertsSection)
		}
	}
	// What issue 12 asks the rules to watch.
	for _, m := range []string{
		"companias_outbox_oldest_unpublished_age_seconds", "companias_outbox_parked_rows", "companias_relay_leader",
		"companias_consumer_lag", "companias_projection_freshness_seconds_bucket", "companias_dlq_messages_total",
		"companias_projection_store_timeouts_total", "companias_http_requests_total",
	} {
		if !bytes.Contains(manifest, []byte(m)) {
			t.Errorf("no rule watches %s", m)
		}
	}
}

// TestAlertRulesRejectMistakes: a typo in the rules fails the same check
// TestAlertRules runs on the real file.
func TestAlertRulesRejectMistakes(t *testing.T) {
	t.Parallel()
	c := newPromQLChecker(t)
	anchors := readmeAlertAnchors(t)
	manifest := readFile(t, filepath.Join(repoRoot(t), prometheusRuleFile))
	if _, err := checkAlertRules(c, []byte(manifest), anchors); err != nil {
		t.Fatalf("the real rules fail: %v", err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"syntax", "max(companias_outbox_parked_rows) > 0", "max(companias_outbox_parked_rows > 0", "parse error"},
		{"metric typo", "(sum(companias_relay_leader)", "(sum(companias_relay_leaders)", "defined nowhere"},
		{"bucket of a gauge", "companias_projection_freshness_seconds_bucket", "companias_consumer_lag_bucket", "defined nowhere"},
		{"no severity", "severity: critical\n          annotations:\n            summary: No writer relays", "annotations:\n            summary: No writer relays", "severity label"},
		{"unknown severity", "severity: warning", "severity: page", "severity label"},
		{"no for", "          for: 2m\n", "", "for is 0s"},
		{"runbook anchor", "README.md#companiasrelaynoleader", "README.md#relaynoleader", "runbook_url"},
		{"no description", "description: >-\n              No writer replica", "descriptio: >-\n              No writer replica", "no description annotation"},
		{"template", "{{ $value | humanizeDuration }} old:", "{{ $value | humanizeDuration old:", "template"},
		{"duration", "for: 10m", "for: 10 minutes", "unknown unit"},
		{"not a PrometheusRule", "kind: PrometheusRule", "kind: PrometheusRules", "want monitoring.coreos.com/v1 PrometheusRule"},
	} {
		if !strings.Contains(manifest, tc.old) {
			t.Fatalf("%s: the rules no longer contain %q; update this test", tc.name, tc.old)
		}
		broken := strings.Replace(manifest, tc.old, tc.new, 1)
		if _, err := checkAlertRules(c, []byte(broken), anchors); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: checkAlertRules = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	delete(anchors, "companiasrelaynoleader")
	if _, err := checkAlertRules(c, []byte(manifest), anchors); err == nil || !strings.Contains(err.Error(), "no heading") {
		t.Errorf("without the README heading: checkAlertRules = %v, want an error naming the missing heading", err)
	}
}

// TestPlainAlertsFile: deploy/prometheus/alerts.yaml holds exactly the
// PrometheusRule's groups.
func TestPlainAlertsFile(t *testing.T) {
	t.Parallel()
	c := newPromQLChecker(t)
	root := repoRoot(t)
	plain, err := ruleGroupsOf([]byte(readFile(t, filepath.Join(root, prometheusRuleFile))))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, plainAlertsFile)
	if os.Getenv("UPDATE_ALERTS") == "1" {
		if err := os.WriteFile(path, append([]byte(plainAlertsHeader), plain...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := parseRules(c, plain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseRules(c, []byte(readFile(t, path)))
	if err != nil {
		t.Fatalf("%s: %v", plainAlertsFile, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s differs from the groups of %s; regenerate it: cd deploy/check && UPDATE_ALERTS=1 GOWORK=off go test -run TestPlainAlertsFile ./...",
			plainAlertsFile, prometheusRuleFile)
	}
	if !strings.HasPrefix(readFile(t, path), plainAlertsHeader) {
		t.Errorf("%s does not start with the generated header", plainAlertsFile)
	}
}
