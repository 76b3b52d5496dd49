package check

import (
	"slices"
	"testing"
)

// job is the subset of a batch/v1 Job the checks read.
type job struct {
	Spec struct {
		BackoffLimit            *int `yaml:"backoffLimit"`
		TTLSecondsAfterFinished *int `yaml:"ttlSecondsAfterFinished"`
		Template                struct {
			Spec struct {
				RestartPolicy   string             `yaml:"restartPolicy"`
				SecurityContext podSecurityContext `yaml:"securityContext"`
				Containers      []container        `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// migrateJobName is the writer's schema migration Job.
const migrateJobName = "companias-command-migrate"

// TestK8sMigrationJob checks the writer's migrations run as a Job of the
// kustomize base: `companias-command migrate` with the writer's image,
// configuration and hardening, bounded retries, cleaned up after; and that
// the writer Deployment leaves migrating to it (MIGRATE_ON_START=false).
func TestK8sMigrationJob(t *testing.T) {
	t.Parallel()
	b := loadK8s(t)
	o, ok := b.find("Job", migrateJobName)
	if !ok {
		t.Fatalf("no Job %s in deploy/k8s", migrateJobName)
	}
	if !slices.Contains(b.kust.Resources, o.file) {
		t.Errorf("kustomization.yaml resources %v do not list %s", b.kust.Resources, o.file)
	}
	var writer service
	for _, svc := range services() {
		if svc.writer {
			writer = svc
		}
	}
	wo, ok := b.find("Deployment", writer.k8sName)
	if !ok {
		t.Fatalf("no Deployment %s", writer.k8sName)
	}
	d := decodeAs[deployment](t, wo)
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", wo.file, len(d.Spec.Template.Spec.Containers))
	}
	wc := d.Spec.Template.Spec.Containers[0]

	j := decodeAs[job](t, o)
	where := o.file
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 1 || *j.Spec.BackoffLimit > 10 {
		t.Errorf("%s: backoffLimit %v, want a bound in 1..10", where, j.Spec.BackoffLimit)
	}
	if j.Spec.TTLSecondsAfterFinished == nil || *j.Spec.TTLSecondsAfterFinished <= 0 {
		t.Errorf("%s: no ttlSecondsAfterFinished: finished Jobs would pile up", where)
	}
	ps := j.Spec.Template.Spec
	if ps.RestartPolicy != "Never" && ps.RestartPolicy != "OnFailure" {
		t.Errorf("%s: restartPolicy %q, want Never or OnFailure", where, ps.RestartPolicy)
	}
	if ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext must set runAsNonRoot: true and a non-zero runAsUser", where)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", where, len(ps.Containers))
	}
	c := ps.Containers[0]
	if c.Image != wc.Image {
		t.Errorf("%s: image %q, want the writer's %q", where, c.Image, wc.Image)
	}
	// The image's ENTRYPOINT is the binary; the Job passes the subcommand.
	if len(c.Command) != 0 || !slices.Equal(c.Args, []string{"migrate"}) {
		t.Errorf("%s: command %q args %q, want the image's entrypoint with args [migrate]", where, c.Command, c.Args)
	}
	if !sameEnvFrom(c, wc) {
		t.Errorf("%s: envFrom %+v, want the writer's %+v (the same configuration and secrets)", where, c.EnvFrom, wc.EnvFrom)
	}
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: container securityContext must be read-only root FS, no privilege escalation, non-root, drop ALL", where)
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: no memory limit", where)
	}
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	checkEnvNames(t, where, writer, names, runtimeVars)

	migrateOnStart := "<unset>"
	for _, e := range wc.Env {
		if e.Name == "MIGRATE_ON_START" {
			migrateOnStart = e.Value
		}
	}
	if migrateOnStart != "false" {
		t.Errorf("%s: MIGRATE_ON_START=%s, want false: the Job %s migrates", wo.file, migrateOnStart, migrateJobName)
	}
}

// sameEnvFrom reports whether a and b take their environment from the
// same ConfigMaps and Secrets, in the same order.
func sameEnvFrom(a, b container) bool {
	names := func(c container) []string {
		var out []string
		for _, ef := range c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				out = append(out, "configmap/"+ef.ConfigMapRef.Name)
			case ef.SecretRef != nil:
				out = append(out, "secret/"+ef.SecretRef.Name)
			}
		}
		return out
	}
	return len(a.EnvFrom) > 0 && slices.Equal(names(a), names(b))
}
