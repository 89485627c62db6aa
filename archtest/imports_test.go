package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// A rule constrains the direct imports of some of our packages. Patterns either name an
// import path ("net/http", "github.com/lni/dragonboat/...") or, starting with "./", a
// path inside this module ("./log", "./gateway/..."). A trailing "/..." matches the path
// and everything under it.
type rule struct {
	why    string   // shown on violation
	pkgs   []string // our packages the rule applies to
	except []string // our packages exempt from it
	forbid []string // imports they must not have
	allow  []string // imports exempt from forbid
}

var rules = []rule{
	{
		why:    "only log (and its raft transport, log/raftnet) imports dragonboat: raft stays behind log.Host and log.StateMachine",
		pkgs:   []string{"./..."},
		except: []string{"./log", "./log/raftnet"},
		forbid: []string{"github.com/lni/dragonboat/..."},
	},
	{
		why:    "only tiers/pebble imports pebble: storage stays behind the tiers",
		pkgs:   []string{"./..."},
		except: []string{"./tiers/pebble"},
		forbid: []string{"github.com/cockroachdb/pebble/..."},
	},
	{
		why:  "only the gateways import fiber and grpc: they translate, nothing else speaks HTTP frameworks or RPC",
		pkgs: []string{"./..."},
		// bench is a client: it must speak the client protocols (REST and gRPC).
		except: []string{"./gateway/...", "./bench"},
		forbid: []string{"github.com/gofiber/...", "google.golang.org/grpc/..."},
	},
	{
		why:    "the materializer is the state machine: it never reaches up into db or the gateways",
		pkgs:   []string{"./materializer/..."},
		forbid: []string{"./gateway/...", "./db/..."},
	},
	{
		why:    "meta keeps the cluster's own state: it drives the log through an interface and never reaches into data or the gateways",
		pkgs:   []string{"./meta/..."},
		forbid: []string{"./db/...", "./gateway/...", "./materializer/...", "./tiers/...", "github.com/lni/dragonboat/..."},
	},
	{
		why:    "tiers are storage: they never import the materializer, db or the gateways",
		pkgs:   []string{"./tiers/..."},
		forbid: []string{"./materializer/...", "./db/...", "./gateway/..."},
	},
	{
		why:    "log is the bottom of our stack: of ours it imports only internal/... and vclock",
		pkgs:   []string{"./log/..."},
		forbid: []string{"./..."},
		allow:  []string{"./internal/...", "./log/...", "./vclock/..."},
	},
	{
		why:    "vclock is pure: vector clocks, nothing of ours but internal/...",
		pkgs:   []string{"./vclock/..."},
		forbid: []string{"./..."},
		allow:  []string{"./internal/...", "./vclock/..."},
	},
	{
		why:    "query is pure (CEL): no package of ours with I/O, no files, processes or network",
		pkgs:   []string{"./query/..."},
		forbid: []string{"./...", "os", "os/...", "net", "net/...", "syscall"},
		allow:  []string{"./internal/...", "./query/..."},
	},
	{
		why:    "only replication imports franz-go: Kafka stays behind the replication package",
		pkgs:   []string{"./..."},
		except: []string{"./replication/..."},
		forbid: []string{"github.com/twmb/franz-go/..."},
	},
}

// pkg is what the checks need from `go list -json`.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// violation is one forbidden import.
type violation struct {
	pkg, imp, where string
	rule            *rule
}

func (v violation) String() string {
	return fmt.Sprintf("%s imports %s (%s)\n\trule: %s", v.pkg, v.imp, v.where, v.rule.why)
}

// match reports whether path matches pattern; module is this module's path, which "./"
// patterns are relative to.
func match(module, pattern, path string) bool {
	if rest, ok := strings.CutPrefix(pattern, "./"); ok {
		pattern = module + "/" + rest
		if rest == "..." {
			pattern = module + "/..."
		}
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(module string, patterns []string, path string) bool {
	for _, p := range patterns {
		if match(module, p, path) {
			return true
		}
	}
	return false
}

// check returns every import of pkgs that a rule forbids.
func check(module string, rules []rule, pkgs []pkg) []violation {
	var out []violation
	for _, p := range pkgs {
		for i := range rules {
			r := &rules[i]
			if !matchAny(module, r.pkgs, p.ImportPath) || matchAny(module, r.except, p.ImportPath) {
				continue
			}
			for _, set := range []struct {
				where string
				imps  []string
			}{{"package", p.Imports}, {"its tests", p.TestImports}, {"its external tests", p.XTestImports}} {
				for _, imp := range set.imps {
					if matchAny(module, r.forbid, imp) && !matchAny(module, r.allow, imp) {
						// A package's external test importing the package itself is not a
						// dependency of the package.
						if imp == p.ImportPath {
							continue
						}
						out = append(out, violation{pkg: p.ImportPath, imp: imp, where: set.where, rule: r})
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// goList runs the go tool from the module root (the parent of this directory).
func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	cmd := exec.Command(gobin, append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

func listPackages(t *testing.T) (string, []pkg) {
	t.Helper()
	module := strings.TrimSpace(string(goList(t, "-m")))
	// -e: a package that does not compile right now still has its imports listed.
	dec := json.NewDecoder(bytes.NewReader(goList(t, "-e", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return module, pkgs
}

func TestImportDirections(t *testing.T) {
	module, pkgs := listPackages(t)
	// Guard against passing vacuously: the packages the rules are about must be listed.
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.ImportPath] = true
	}
	for _, must := range []string{"log", "materializer", "tiers", "tiers/pebble", "tiers/memory"} {
		if !seen[module+"/"+must] {
			t.Fatalf("go list did not report %s/%s; found %d packages", module, must, len(pkgs))
		}
	}
	// A rule that applies to no package is either for a package not written yet
	// (replication, query) or misspelt: say so in the verbose output.
	for _, r := range rules {
		applies := false
		for _, p := range pkgs {
			applies = applies || matchAny(module, r.pkgs, p.ImportPath) && !matchAny(module, r.except, p.ImportPath)
		}
		if !applies {
			t.Logf("rule applies to no package yet: %s", r.why)
		}
	}
	for _, v := range check(module, rules, pkgs) {
		t.Errorf("forbidden import: %s", v)
	}
}

// TestCheckReportsViolations runs the checker on made-up packages, so a broken matcher
// cannot make TestImportDirections pass by seeing nothing.
func TestCheckReportsViolations(t *testing.T) {
	const mod = "example.com/m"
	pkgs := []pkg{
		{ImportPath: mod + "/log", Imports: []string{"github.com/lni/dragonboat/v4", mod + "/internal/wire"}},
		{ImportPath: mod + "/db", Imports: []string{"github.com/lni/dragonboat/v4/config"}},
		{ImportPath: mod + "/materializer", Imports: []string{mod + "/log"}, XTestImports: []string{mod + "/materializer", mod + "/gateway/rest"}},
		{ImportPath: mod + "/tiers/memory", TestImports: []string{mod + "/db"}},
		{ImportPath: mod + "/log/sub", Imports: []string{mod + "/tiers"}},
		{ImportPath: mod + "/gateway/grpc", Imports: []string{"google.golang.org/grpc", "github.com/gofiber/fiber/v2"}},
		{ImportPath: mod + "/gatewayx", Imports: []string{"google.golang.org/grpc/codes"}},
		{ImportPath: mod + "/query", Imports: []string{"net/http", mod + "/internal/wire", "cel.dev/cel-go/cel", "strings"}},
		{ImportPath: mod + "/bench", Imports: []string{"github.com/twmb/franz-go/pkg/kgo"}},
		{ImportPath: mod + "/replication", Imports: []string{"github.com/twmb/franz-go/pkg/kgo"}},
	}
	var got []string
	for _, v := range check(mod, rules, pkgs) {
		got = append(got, strings.TrimPrefix(v.pkg, mod+"/")+" -> "+strings.TrimPrefix(v.imp, mod+"/")+" ("+v.where+")")
	}
	want := []string{
		"bench -> github.com/twmb/franz-go/pkg/kgo (package)",
		"db -> github.com/lni/dragonboat/v4/config (package)",
		"gatewayx -> google.golang.org/grpc/codes (package)",
		"log/sub -> tiers (package)",
		"materializer -> gateway/rest (its external tests)",
		"query -> net/http (package)",
		"tiers/memory -> db (its tests)",
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMatch(t *testing.T) {
	const mod = "example.com/m"
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"./...", mod + "/log", true},
		{"./...", mod, true},
		{"./...", "example.com/mx", false},
		{"./log", mod + "/log", true},
		{"./log", mod + "/log/sub", false},
		{"./log/...", mod + "/log/sub", true},
		{"./log/...", mod + "/logx", false},
		{"github.com/lni/dragonboat/...", "github.com/lni/dragonboat/v4/statemachine", true},
		{"github.com/lni/dragonboat/...", "github.com/lni/dragonboatx", false},
		{"os", "os/exec", false},
		{"os/...", "os/exec", true},
	}
	for _, tt := range tests {
		if got := match(mod, tt.pattern, tt.path); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}
