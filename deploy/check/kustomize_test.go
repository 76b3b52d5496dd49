package check

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeMu serialises the renders of the parallel tests: Kustomizer.Run
// is not safe for concurrent use (it sets kyaml's global OpenAPI schema;
// kubernetes-sigs/kustomize#4824, #5805), which -race reports.
var kustomizeMu sync.Mutex

// kustomizeBuild renders the kustomization in dir with the kustomize Go API,
// the library `kubectl kustomize` embeds, so the render needs no kubectl.
// Files are loaded as kubectl loads them by default (LoadRestrictionsRootOnly:
// no file outside its kustomization's directory; other kustomizations, by
// relative path, are fine). where names the render in failure messages; each
// object's file is set to it.
func kustomizeBuild(t testing.TB, dir, where string) []k8sObject {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	out, err := func() ([]byte, error) {
		kustomizeMu.Lock()
		defer kustomizeMu.Unlock()
		m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			return nil, err
		}
		return m.AsYaml()
	}()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", where, err)
	}
	objs, err := decodeObjects(where, out)
	if err != nil {
		t.Fatalf("kustomize build %s: output: %v", where, err)
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize build %s rendered nothing", where)
	}
	return objs
}

// renderableBase copies deploy/k8s into a temporary directory with each
// secretGenerator env file replaced by its committed .example (the real files
// are git-ignored: absent in CI, real values on a workstation), and returns
// the copy's path.
func renderableBase(t testing.TB, b k8sBase) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "k8s")
	if err := os.CopyFS(dir, os.DirFS(b.dir)); err != nil {
		t.Fatal(err)
	}
	for _, g := range b.kust.SecretGenerator {
		for _, e := range g.Envs {
			raw, err := os.ReadFile(filepath.Join(b.dir, e+".example"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// kindCounts counts the objects of each kind.
func kindCounts(objs []k8sObject) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.Kind]++
	}
	return out
}

func findObject(objs []k8sObject, kind, name string) (k8sObject, bool) {
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

// checkPartOf: every rendered object carries the label the kustomizations
// add, which is how the whole system is selected (kubectl get -l, prune).
func checkPartOf(t testing.TB, objs []k8sObject) {
	t.Helper()
	for _, o := range objs {
		if o.Metadata.Labels["app.kubernetes.io/part-of"] != "companias" {
			t.Errorf("%s: rendered %s %s lacks label app.kubernetes.io/part-of=companias", o.file, o.Kind, o.Metadata.Name)
		}
	}
}

// checkScaleTargets: every autoscaler of the render (HPA, ScaledObject)
// scales an apps/v1 Deployment of the same render, and no Deployment has two
// autoscalers (they would fight over its replicas).
func checkScaleTargets(t testing.TB, objs []k8sObject) {
	t.Helper()
	scaledBy := map[string][]string{}
	for _, o := range objs {
		if o.Kind != "HorizontalPodAutoscaler" && o.Kind != "ScaledObject" {
			continue
		}
		// Both kinds name the target in spec.scaleTargetRef.
		ref := decodeAs[hpa](t, o).Spec.ScaleTargetRef
		if o.Kind == "ScaledObject" {
			// KEDA defaults an empty kind and apiVersion to apps/v1 Deployment.
			if ref.Kind == "" {
				ref.Kind = "Deployment"
			}
			if ref.APIVersion == "" {
				ref.APIVersion = "apps/v1"
			}
		}
		if _, ok := findObject(objs, "Deployment", ref.Name); !ok || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			t.Errorf("%s: %s %s scales %s %s (%s), which is not a Deployment of the render", o.file, o.Kind, o.Metadata.Name, ref.Kind, ref.Name, ref.APIVersion)
			continue
		}
		scaledBy[ref.Name] = append(scaledBy[ref.Name], o.Kind+" "+o.Metadata.Name)
	}
	for d, by := range scaledBy {
		if len(by) > 1 {
			t.Errorf("rendered Deployment %s is scaled by %v: two autoscalers fight over its replicas", d, by)
		}
	}
}

// baseRenderKinds is what the base renders: writer and reader each with a
// Deployment, Service, HPA, PDB and a generated ConfigMap and Secret, plus
// the writer's migration Job.
var baseRenderKinds = map[string]int{
	"Deployment": 2, "Service": 2, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 2,
	"Job": 1, "ConfigMap": 2, "Secret": 2,
}

// checkBaseRender makes the checks every render that contains the base makes:
// labels, images, generated names and the references to them, scale targets.
func checkBaseRender(t testing.TB, b k8sBase, objs []k8sObject) {
	t.Helper()
	checkPartOf(t, objs)
	checkScaleTargets(t, objs)

	// Generated ConfigMaps and Secrets: one per generator, under the
	// generator's name with a content-hash suffix (a change rolls the pods).
	generated := map[string]bool{}
	for kind, gs := range map[string][]generator{"ConfigMap": b.kust.ConfigMapGenerator, "Secret": b.kust.SecretGenerator} {
		for _, g := range gs {
			n := 0
			for _, o := range objs {
				if o.Kind == kind && strings.HasPrefix(o.Metadata.Name, g.Name+"-") && len(o.Metadata.Name) > len(g.Name)+1 {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: %d %ss named %s-<hash>, want 1 (its generator)", objs[0].file, n, kind, g.Name)
			}
		}
		for _, o := range objs {
			if o.Kind == kind {
				generated[o.Metadata.Name] = true
			}
		}
	}

	// Workloads: every envFrom reference is to a generated name (kustomize
	// substituted it), every image was mapped by images:.
	var images []string
	for _, img := range b.kust.Images {
		images = append(images, img.NewName+":"+img.NewTag)
	}
	refs := 0
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		for _, c := range decodeAs[deployment](t, o).Spec.Template.Spec.Containers {
			if !slices.Contains(images, c.Image) {
				t.Errorf("%s: rendered %s %s container %s has image %q, not one of the images: mappings %v", o.file, o.Kind, o.Metadata.Name, c.Name, c.Image, images)
			}
			for _, ef := range c.EnvFrom {
				var name string
				switch {
				case ef.ConfigMapRef != nil:
					name = ef.ConfigMapRef.Name
				case ef.SecretRef != nil:
					name = ef.SecretRef.Name
				default:
					continue
				}
				refs++
				if !generated[name] {
					t.Errorf("%s: rendered %s %s refers to %s, which the render does not generate (names %v)", o.file, o.Kind, o.Metadata.Name, name, generated)
				}
			}
		}
	}
	// The Deployments and the migration Job: a ConfigMap and a Secret each.
	if refs != 6 {
		t.Errorf("%s: %d envFrom references in the rendered workloads, want 6 (a ConfigMap and a Secret for each Deployment and the Job)", objs[0].file, refs)
	}
}

// TestK8sKustomizeBuild renders the base, with the example secret files in
// place of the git-ignored ones.
func TestK8sKustomizeBuild(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	objs := kustomizeBuild(t, renderableBase(t, b), "deploy/k8s")
	if got := kindCounts(objs); !mapsEqual(got, baseRenderKinds) {
		t.Errorf("deploy/k8s: rendered kinds %v, want %v", got, baseRenderKinds)
	}
	checkBaseRender(t, b, objs)
}

// TestK8sKEDAKustomizeBuild renders the KEDA component applied on the base,
// as the component's comment says to use it: an overlay with the base as a
// resource and deploy/k8s/keda as a component. kustomize refuses absolute
// paths to kustomization directories whatever the load restrictions, so the
// overlay sits next to the copy of deploy/k8s (keda/ included) and names
// both relatively, as an overlay next to deploy/k8s would.
func TestK8sKEDAKustomizeBuild(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	base := renderableBase(t, b)
	overlay := filepath.Join(filepath.Dir(base), "overlay")
	component := filepath.Join(base, strings.TrimPrefix(kedaDir, "deploy/k8s/"))
	if _, err := os.Stat(filepath.Join(component, "kustomization.yaml")); err != nil {
		t.Fatalf("the copy of deploy/k8s lacks %s: %v", kedaDir, err)
	}
	relBase, err := filepath.Rel(overlay, base)
	if err != nil {
		t.Fatal(err)
	}
	relComponent, err := filepath.Rel(overlay, component)
	if err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s\n", relBase, relComponent)
	if err := os.MkdirAll(overlay, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o600); err != nil {
		t.Fatal(err)
	}
	objs := kustomizeBuild(t, overlay, "an overlay of deploy/k8s with component "+kedaDir)
	where := objs[0].file

	// The base's objects but the reader's HPA, plus the component's.
	want := map[string]int{}
	for k, n := range baseRenderKinds {
		want[k] = n
	}
	want["HorizontalPodAutoscaler"]--
	want["ScaledObject"], want["TriggerAuthentication"] = 1, 1
	if got := kindCounts(objs); !mapsEqual(got, want) {
		t.Errorf("%s: rendered kinds %v, want %v", where, got, want)
	}
	if _, ok := findObject(objs, "HorizontalPodAutoscaler", "companias-query"); ok {
		t.Errorf("%s: the reader's HorizontalPodAutoscaler companias-query is still rendered; KEDA's own HPA would fight it", where)
	}
	if _, ok := findObject(objs, "HorizontalPodAutoscaler", "companias-command"); !ok {
		t.Errorf("%s: the writer's HorizontalPodAutoscaler companias-command is gone; the component must delete only the reader's", where)
	}
	// Everything else of the base renders unchanged in name (the generated
	// hashes included: the component patches no ConfigMap or Secret).
	baseObjs := kustomizeBuild(t, base, "deploy/k8s")
	for _, o := range baseObjs {
		if o.Kind == "HorizontalPodAutoscaler" && o.Metadata.Name == "companias-query" {
			continue
		}
		if _, ok := findObject(objs, o.Kind, o.Metadata.Name); !ok {
			t.Errorf("%s: the base's %s %s is not rendered", where, o.Kind, o.Metadata.Name)
		}
	}

	var so scaledObject
	if o, ok := findObject(objs, "ScaledObject", "companias-query"); !ok {
		t.Fatalf("%s: no ScaledObject companias-query", where)
	} else {
		so = decodeAs[scaledObject](t, o)
	}
	if ref := so.Spec.ScaleTargetRef; ref.Name != "companias-query" {
		t.Errorf("%s: ScaledObject scales %s, want the reader Deployment companias-query (whose HPA the component deletes)", where, ref.Name)
	}
	for _, tr := range so.Spec.Triggers {
		if tr.AuthenticationRef == nil {
			continue
		}
		if _, ok := findObject(objs, "TriggerAuthentication", tr.AuthenticationRef.Name); !ok {
			t.Errorf("%s: the %s trigger authenticates with TriggerAuthentication %s, which the render does not have", where, tr.Type, tr.AuthenticationRef.Name)
		}
	}
	// Labels, images, generated names, and the ScaledObject's target being
	// a Deployment of this render that no remaining HPA scales.
	checkBaseRender(t, b, objs)
}

// TestStrimziKustomizeBuild renders deploy/k8s/strimzi: a KafkaUser per
// service plus external, and the four topics, for one Strimzi cluster.
func TestStrimziKustomizeBuild(t *testing.T) {
	t.Parallel()
	objs := kustomizeBuild(t, filepath.Join(repoRoot(t), "deploy", "k8s", "strimzi"), "deploy/k8s/strimzi")
	want := map[string]int{"KafkaUser": len(services()) + 1, "KafkaTopic": 4}
	if got := kindCounts(objs); !mapsEqual(got, want) {
		t.Errorf("deploy/k8s/strimzi: rendered kinds %v, want %v", got, want)
	}
	checkPartOf(t, objs)
	clusters := map[string]bool{}
	for _, o := range objs {
		clusters[o.Metadata.Labels["strimzi.io/cluster"]] = true
	}
	if len(clusters) != 1 || clusters[""] {
		t.Errorf("deploy/k8s/strimzi: rendered objects name the clusters %v (label strimzi.io/cluster), want one", clusters)
	}
}
