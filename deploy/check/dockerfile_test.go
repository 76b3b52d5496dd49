package check

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dockerStage is one stage of a Dockerfile: its FROM line and instructions
// (continuation lines joined, comments dropped).
type dockerStage struct {
	from  string // image reference, ARGs unexpanded
	name  string // AS name
	instr []string
}

func parseDockerfile(t testing.TB, path string) (args map[string]string, stages []dockerStage) {
	t.Helper()
	args = map[string]string{}
	var lines []string
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		lines = append(lines, cur+line)
		cur = ""
	}
	for _, l := range lines {
		op, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(op) {
		case "FROM":
			f := strings.Fields(rest)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case "ARG":
			if len(stages) == 0 {
				k, v, _ := strings.Cut(strings.TrimSpace(rest), "=")
				args[k] = v
			}
			fallthrough
		default:
			if len(stages) > 0 {
				stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, strings.ToUpper(op)+" "+strings.TrimSpace(rest))
			}
		}
	}
	return args, stages
}

// goVersion parses "1.26.8" into comparable numbers.
func goVersion(t testing.TB, v string) [3]int {
	t.Helper()
	var out [3]int
	for i, p := range strings.SplitN(v, ".", 3) {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("go version %q: %v", v, err)
		}
		out[i] = n
	}
	return out
}

func workspaceGo(t testing.TB) (version string, uses []string) {
	t.Helper()
	for _, line := range strings.Split(readFile(t, filepath.Join(repoRoot(t), "go.work")), "\n") {
		f := strings.Fields(strings.Trim(line, "()"))
		switch {
		case len(f) == 2 && f[0] == "go":
			version = f[1]
		case len(f) == 1 && strings.HasPrefix(f[0], "./"):
			uses = append(uses, f[0])
		case len(f) == 2 && f[0] == "use":
			uses = append(uses, f[1])
		}
	}
	if version == "" || len(uses) == 0 {
		t.Fatalf("go.work: no go line or no use directives")
	}
	return version, uses
}

func TestDockerfiles(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	workGo, _ := workspaceGo(t)
	goBuild := regexp.MustCompile(`go build .*-o (\S+) (\./\S+)`)
	for _, svc := range services() {
		path := filepath.Join(root, svc.dockerfile)
		args, stages := parseDockerfile(t, path)
		if len(stages) < 2 {
			t.Errorf("%s: %d stages, want a multi-stage build", svc.dockerfile, len(stages))
			continue
		}
		build, final := stages[0], stages[len(stages)-1]
		// The builder's Go must be able to build the workspace.
		if !strings.Contains(build.from, "golang:${GO_VERSION}") {
			t.Errorf("%s: build stage FROM %s, want golang:${GO_VERSION}-…", svc.dockerfile, build.from)
		} else if v := goVersion(t, args["GO_VERSION"]); v[0] != goVersion(t, workGo)[0] || v[1] != goVersion(t, workGo)[1] || v[2] < goVersion(t, workGo)[2] {
			t.Errorf("%s: GO_VERSION %s does not satisfy go.work's go %s", svc.dockerfile, args["GO_VERSION"], workGo)
		}
		text := strings.Join(build.instr, "\n")
		if !regexp.MustCompile(`(?m)^(ENV|RUN)\b.*\bCGO_ENABLED=0\b`).MatchString(text) {
			t.Errorf("%s: the build stage does not set CGO_ENABLED=0 (static binary for distroless/static)", svc.dockerfile)
		}
		if !strings.Contains(text, "GOTOOLCHAIN=local") {
			t.Errorf("%s: the build stage must pin GOTOOLCHAIN=local (no toolchain download during the build)", svc.dockerfile)
		}
		m := goBuild.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("%s: no `go build … -o <out> ./<pkg>` in the build stage", svc.dockerfile)
			continue
		}
		if m[2] != svc.mainPkg {
			t.Errorf("%s builds %s, want %s", svc.dockerfile, m[2], svc.mainPkg)
		}
		if !isMainPackage(t, filepath.Join(root, m[2])) {
			t.Errorf("%s: %s is not a main package in the repository", svc.dockerfile, m[2])
		}
		// The runtime stage: distroless static, the binary only, non-root.
		if !strings.HasPrefix(final.from, "gcr.io/distroless/static") || !strings.HasSuffix(final.from, ":nonroot") {
			t.Errorf("%s: runtime stage FROM %s, want gcr.io/distroless/static-…:nonroot", svc.dockerfile, final.from)
		}
		var user, entry string
		copied := false
		for _, in := range final.instr {
			op, rest, _ := strings.Cut(in, " ")
			switch op {
			case "USER":
				user = rest
			case "ENTRYPOINT":
				entry = rest
			case "COPY":
				if strings.Contains(rest, "--from="+build.name+" "+m[1]+" ") {
					copied = true
				}
			case "RUN":
				t.Errorf("%s: RUN in the runtime stage (distroless has no shell): %s", svc.dockerfile, rest)
			}
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
			t.Errorf("%s: runtime stage USER %q, want a non-root user", svc.dockerfile, user)
		}
		if !copied {
			t.Errorf("%s: runtime stage does not COPY --from=%s %s", svc.dockerfile, build.name, m[1])
		}
		if !strings.HasPrefix(entry, "[") || !strings.Contains(entry, svc.binary) {
			t.Errorf("%s: ENTRYPOINT %s, want the exec form running %s", svc.dockerfile, entry, svc.binary)
		}
		if !strings.Contains(strings.Join(final.instr, "\n"), "EXPOSE "+strconv.Itoa(svc.port)) {
			t.Errorf("%s: does not EXPOSE %d", svc.dockerfile, svc.port)
		}
	}
}

func isMainPackage(t testing.TB, dir string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		return false
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		if regexp.MustCompile(`(?m)^package main$`).MatchString(readFile(t, f)) {
			return true
		}
	}
	return false
}

// TestDockerBuildContext checks what `COPY . .` sends: every module of
// go.work (the build runs in workspace mode) and no secret.
func TestDockerBuildContext(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	ignore := map[string]bool{}
	for _, line := range strings.Split(readFile(t, filepath.Join(root, ".dockerignore")), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ignore[line] = true
		}
	}
	for _, p := range []string{".git", "**/.env", "**/*.env"} {
		if !ignore[p] {
			t.Errorf(".dockerignore lacks %s", p)
		}
	}
	_, uses := workspaceGo(t)
	for p := range ignore {
		if strings.Contains(p, "go.mod") || strings.Contains(p, "go.sum") || strings.Contains(p, "go.work") {
			t.Errorf(".dockerignore pattern %q drops module files the workspace build needs", p)
		}
		for _, u := range uses {
			if matched, _ := filepath.Match(p, strings.TrimPrefix(u, "./")); matched {
				t.Errorf(".dockerignore pattern %q drops workspace module %s", p, u)
			}
		}
	}
	for _, u := range uses {
		if _, err := os.Stat(filepath.Join(root, u, "go.mod")); err != nil {
			t.Errorf("go.work uses %s: %v", u, err)
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "Dockerfile")
	src := "# c\nARG V=1\nFROM golang:${V} AS build\nENV A=1 \\\n    CGO_ENABLED=0\nRUN go build \\\n  -o /out/x ./cmd/x\nFROM scratch\nUSER 1000\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	args, st := parseDockerfile(t, path)
	if args["V"] != "1" || len(st) != 2 || st[0].name != "build" || st[1].from != "scratch" {
		t.Fatalf("args %v stages %+v", args, st)
	}
	if got := strings.Join(st[0].instr, "|"); got != "ENV A=1  CGO_ENABLED=0|RUN go build  -o /out/x ./cmd/x" {
		t.Fatalf("build instructions %q", got)
	}
}
