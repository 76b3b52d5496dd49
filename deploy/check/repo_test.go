package check

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// service describes one of the two binaries and where the deployment files
// refer to it.
type service struct {
	name        string // short name: command or query
	configFile  string // source of its config package, relative to the repo root
	readmeTable string // header of its configuration table in README.md
	dockerfile  string // relative to the repo root
	mainPkg     string // package built by the Dockerfile
	binary      string // file name of the binary in the image
	port        int    // container port of the API
	metricsPort int    // container port of the admin listener (METRICS_ADDR, GET /metrics)
	image       string // image repository, in compose and in the kustomize images
	k8sName     string // Deployment, Service, HPA, PDB and generator name prefix
	writer      bool
}

func services() []service {
	return []service{
		{
			name: "command", configFile: "services/command/internal/config/config.go",
			readmeTable: "writer variable", dockerfile: "deploy/command.Dockerfile",
			mainPkg: "./services/command/cmd/commandd", binary: "companias-command", port: 8080, metricsPort: 9090,
			image: "propalpes/companias-command", k8sName: "companias-command", writer: true,
		},
		{
			name: "query", configFile: "services/query/internal/config/config.go",
			readmeTable: "reader variable", dockerfile: "deploy/query.Dockerfile",
			mainPkg: "./services/query/cmd/queryd", binary: "companias-query", port: 8081, metricsPort: 9091,
			image: "propalpes/companias-query", k8sName: "companias-query",
		},
	}
}

// runtimeVars are read by the Go runtime of every binary, not by a config
// package; the Kubernetes manifests may set them.
var runtimeVars = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GODEBUG": true}

// topicPartitions is the partition count of every topic (the services'
// KAFKA_TOPIC_PARTITIONS default and deploy/kafka/topics.txt).
const topicPartitions = 6

// repoRoot is the repository root: two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root %s has no go.work: %v", root, err)
	}
	return root
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

// kafkakitImport is the package whose Load reads the shared KAFKA_* variables.
const kafkakitImport = "github.com/propalpes/companias/libs/kafkakit"

// topicsImport is the package whose LoadSettings reads the shared topic
// creation variables (KAFKA_CREATE_TOPICS, KAFKA_REPLICATION_FACTOR).
const topicsImport = "github.com/propalpes/companias/libs/kafkakit/topics"

// configVars returns the environment variables a config package reads,
// parsed from its source: the keys of map literals (the command service's
// defaults map), and the first string argument of the parser's methods
// (p.str("HTTP_ADDR", …)) and of getenv calls; plus, when it imports
// kafkakit, the variables kafkakit.Load reads (kafkakitVars), and when it
// imports kafkakit/topics, those topics.LoadSettings reads (topicsVars).
func configVars(t testing.TB, file string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, imp := range f.Imports {
		var lib map[string]bool
		switch path, _ := strconv.Unquote(imp.Path.Value); path {
		case kafkakitImport:
			lib = kafkakitVars(t)
		case topicsImport:
			lib = topicsVars(t)
		}
		for v := range lib {
			vars[v] = true
		}
	}
	add := func(e ast.Expr) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
			vars[s] = true
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if _, ok := n.Type.(*ast.MapType); ok {
				for _, e := range n.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						add(kv.Key)
					}
				}
			}
		case *ast.CallExpr:
			if len(n.Args) == 0 {
				return true
			}
			switch fun := n.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := fun.X.(*ast.Ident); ok && x.Name == "p" || fun.Sel.Name == "getenv" {
					add(n.Args[0])
				}
			case *ast.Ident:
				if fun.Name == "getenv" {
					add(n.Args[0])
				}
			}
		}
		return true
	})
	return vars
}

// kafkakitVars returns the variables kafkakit.Load reads: the values of the
// string constants named *Var in libs/kafkakit/env.go.
func kafkakitVars(t testing.TB) map[string]bool {
	t.Helper()
	file := filepath.Join(repoRoot(t), "libs", "kafkakit", "env.go")
	vars := varConsts(t, file)
	if !vars["KAFKA_BROKERS"] || !vars["KAFKA_SASL_MECHANISM"] {
		t.Fatalf("%s: parsed %v, which lacks KAFKA_BROKERS or KAFKA_SASL_MECHANISM: the source changed shape; fix kafkakitVars", file, sorted(vars))
	}
	return vars
}

// topicsVars returns the variables topics.LoadSettings reads: the values of
// the string constants named *Var in libs/kafkakit/topics/env.go.
func topicsVars(t testing.TB) map[string]bool {
	t.Helper()
	file := filepath.Join(repoRoot(t), "libs", "kafkakit", "topics", "env.go")
	vars := varConsts(t, file)
	if !vars["KAFKA_CREATE_TOPICS"] || !vars["KAFKA_REPLICATION_FACTOR"] {
		t.Fatalf("%s: parsed %v, which lacks KAFKA_CREATE_TOPICS or KAFKA_REPLICATION_FACTOR: the source changed shape; fix topicsVars", file, sorted(vars))
	}
	return vars
}

// varConsts returns the values of the string constants named *Var in file
// that look like environment variable names.
func varConsts(t testing.TB, file string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasSuffix(name.Name, "Var") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if v, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(v) {
						vars[v] = true
					}
				}
			}
		}
	}
	return vars
}

// readmeVars returns the variables listed in the first column of the README
// table whose header starts with header.
func readmeVars(t testing.TB, readme, header string) map[string]bool {
	t.Helper()
	vars := map[string]bool{}
	in := false
	tick := regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
	sc := bufio.NewScanner(strings.NewReader(readme))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "| "+header):
			in = true
		case in && !strings.HasPrefix(line, "|"):
			return vars
		case in:
			cells := strings.Split(line, "|")
			if len(cells) < 3 {
				continue
			}
			for _, m := range tick.FindAllStringSubmatch(cells[1], -1) {
				vars[m[1]] = true
			}
		}
	}
	if !in {
		t.Fatalf("README.md has no table headed %q", header)
	}
	return vars
}

// serviceVars returns the variables svc reads, after checking that its
// config source and the README agree and that the parse found the core ones.
func serviceVars(t testing.TB, svc service) map[string]bool {
	t.Helper()
	root := repoRoot(t)
	vars := configVars(t, filepath.Join(root, svc.configFile))
	core := []string{"HTTP_ADDR", "KAFKA_BROKERS", "KAFKA_EVENTS_TOPIC", "KAFKA_TOPIC_PARTITIONS", "SHUTDOWN_TIMEOUT", "LOG_LEVEL",
		"KAFKA_CREATE_TOPICS", "KAFKA_REPLICATION_FACTOR"}
	if svc.writer {
		core = append(core, "DATABASE_URL")
	} else {
		core = append(core, "MONGO_URI", "KAFKA_GROUP_ID")
	}
	for _, v := range core {
		if !vars[v] {
			t.Fatalf("%s: parsed %v, which lacks %s: the config source changed shape; fix configVars", svc.configFile, sorted(vars), v)
		}
	}
	return vars
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestServiceVarsMatchREADME keeps the variable lists the other tests check
// against honest: the config source and the README's tables list the same
// variables.
func TestServiceVarsMatchREADME(t *testing.T) {
	t.Parallel()
	readme := readFile(t, filepath.Join(repoRoot(t), "README.md"))
	for _, svc := range services() {
		src := serviceVars(t, svc)
		doc := readmeVars(t, readme, svc.readmeTable)
		for _, v := range sorted(src) {
			if !doc[v] {
				t.Errorf("%s reads %s, but README's %q table does not list it", svc.configFile, v, svc.readmeTable)
			}
		}
		for _, v := range sorted(doc) {
			if !src[v] {
				t.Errorf("README's %q table lists %s, which %s does not read", svc.readmeTable, v, svc.configFile)
			}
		}
	}
}

func TestConfigVarsParser(t *testing.T) {
	t.Parallel()
	src := `package config
var defaults = map[string]string{"HTTP_ADDR": ":1", "lower": "x"}
func Load(getenv func(string) string) {
	p := parser{}
	p.str("MONGO_URI", "d")
	p.fail("not a name at all", "x")
	_ = getenv("EXTRA_VAR")
	other.str("IGNORED_VAR")
}`
	file := filepath.Join(t.TempDir(), "config.go")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(sorted(configVars(t, file)), " ")
	if want := "EXTRA_VAR HTTP_ADDR MONGO_URI"; got != want {
		t.Fatalf("configVars = %q, want %q", got, want)
	}
}

// checkEnvNames reports every name in env that svc does not read.
func checkEnvNames(t testing.TB, where string, svc service, names []string, extra map[string]bool) {
	t.Helper()
	vars := serviceVars(t, svc)
	for _, n := range names {
		if !vars[n] && !extra[n] {
			t.Errorf("%s sets %s, which %s does not read (it reads %v)", where, n, svc.configFile, sorted(vars))
		}
	}
}

// checkAuthOn reports unless env (a service's variables in a deploy file)
// turns bearer authentication on for svc: AUTH_MODE jwks with an https
// AUTH_JWKS_URL (asymmetric keys: the service cannot mint tokens) or
// hs256, AUTH_ISSUER set, AUTH_AUDIENCE the service's own
// (companias-<name>), and no AUTH_ALLOW_NONE_ON_NETWORK.
func checkAuthOn(t testing.TB, where string, svc service, env map[string]string) {
	t.Helper()
	switch mode := strings.ToLower(env["AUTH_MODE"]); mode {
	case "jwks":
		if !strings.HasPrefix(env["AUTH_JWKS_URL"], "https://") {
			t.Errorf("%s: AUTH_JWKS_URL %q, want an https URL", where, env["AUTH_JWKS_URL"])
		}
	case "hs256":
	default:
		t.Errorf("%s: AUTH_MODE %q, want jwks (or hs256): the API listens beyond loopback", where, mode)
	}
	if env["AUTH_ISSUER"] == "" {
		t.Errorf("%s: AUTH_ISSUER is not set", where)
	}
	if want := "companias-" + svc.name; env["AUTH_AUDIENCE"] != want {
		t.Errorf("%s: AUTH_AUDIENCE %q, want the service's own, %q", where, env["AUTH_AUDIENCE"], want)
	}
	if v, set := env["AUTH_ALLOW_NONE_ON_NETWORK"]; set {
		t.Errorf("%s: AUTH_ALLOW_NONE_ON_NETWORK=%q is set; a deployment keeps authentication on", where, v)
	}
}
