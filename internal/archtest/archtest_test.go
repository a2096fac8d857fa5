// Package archtest holds tests of the project's structure: which packages
// may use floating point and which may import what.
//
// # Layers
//
//	spec/            the semantics: imports only spec/
//	protocol/core/   the pure, normative protocol (commitments, traces,
//	                 challenges, zk commitments, audit planning, the
//	                 dispute game, the signed audit report):
//	                 spec/ and protocol/core/
//	protocol/store/  the content-addressed checkpoint store
//	protocol/rundir/ the run directory a solver writes and auditors read
//	protocol/net/    the network: protobuf, signed envelopes, libp2p,
//	                 chunk exchange, the dispute game's transport
//	circuits/, prover/  zk statements and proving
//	solver/, verifier/, coordinator/  the roles: never each other
//	internal/devnet, internal/cli, internal/bench, cmd/  assemble roles
//
// TestLayers enforces it as an allow-list over every import, tests
// included.
package archtest

import (
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// root is the module root, two levels up from this package.
const root = "../.."

// stepPackages compute (or hash) training steps: no floating point may
// appear in their non-test source, so no step can depend on a platform's
// float behaviour.
var stepPackages = []string{"spec", "protocol/core/commit", "protocol/core/challenge", "protocol/core/dispute", "protocol/core/inferdispute", "protocol/core/trace", "protocol/core/wirecodec", "protocol/core/zkcommit", "protocol/core/zkchallenge", "solver/trainer", "circuits"}

func TestNoFloatingPointOnTheStepPath(t *testing.T) {
	banned := map[string]bool{"float32": true, "float64": true, "complex64": true, "complex128": true}
	checked := 0
	for _, dir := range stepPackages {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			checked++
			fset := token.NewFileSet()
			var s scanner.Scanner
			s.Init(fset.AddFile(path, -1, len(src)), src, nil, 0)
			for {
				pos, tok, lit := s.Scan()
				if tok == token.EOF {
					break
				}
				if tok == token.FLOAT || tok == token.IMAG || (tok == token.IDENT && banned[lit]) {
					t.Errorf("%s: floating point (%s %q) on the step path", fset.Position(pos), tok, lit)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 20 {
		t.Fatalf("scanned only %d files: is the walk broken?", checked)
	}
}

// TestSpecImportsNoInfrastructure keeps spec/... free of networking,
// storage and proving libraries: a re-implementer or verifier links only
// the semantics.
func TestSpecImportsNoInfrastructure(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not available")
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./spec/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"libp2p", "badger", "gnark", "go-nvml", "protobuf", "cobra"} {
			if strings.Contains(dep, bad) {
				t.Errorf("spec/... depends on %s", dep)
			}
		}
	}
}

// TestProtobufStaysAtTheBoundary: only the wire codec and the libp2p
// node see protocol/net/pb; everything else works with native types.
func TestProtobufStaysAtTheBoundary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not available")
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const pb = "github.com/beluga-compute/beluga/protocol/net/pb"
	allowed := map[string]bool{pb: true, "github.com/beluga-compute/beluga/protocol/net/wire": true, "github.com/beluga-compute/beluga/protocol/net/p2p": true}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || allowed[f[0]] {
			continue
		}
		for _, imp := range f[1:] {
			if imp == pb {
				t.Errorf("%s imports protocol/net/pb: convert at the boundary (protocol/net/wire)", f[0])
			}
		}
	}
}

const module = "github.com/beluga-compute/beluga/"

// allowed lists, per package prefix (longest match wins), the project
// prefixes its code may import. Third-party and standard packages are
// limited separately (TestSpecImportsNoInfrastructure, TestCoreIsPure).
var allowed = []struct {
	pkg     string
	imports []string
}{
	{"spec", []string{"spec"}},
	{"protocol/core", []string{"spec", "protocol/core"}},
	{"protocol/store", []string{"spec", "protocol/core", "protocol/store", "internal/kv"}},
	{"protocol/rundir", []string{"spec", "protocol/core", "protocol/store", "protocol/rundir"}},
	{"protocol/net", []string{"spec", "protocol/core", "protocol/store", "protocol/net"}},
	{"circuits", []string{"spec", "protocol/core", "circuits"}},
	{"prover", []string{"spec", "protocol/core", "protocol/store", "protocol/rundir", "circuits", "prover"}},
	{"solver", []string{"spec", "protocol", "circuits", "prover", "solver", "internal/kv"}},
	{"verifier", []string{"spec", "protocol", "circuits", "prover", "verifier", "internal/kv"}},
	{"coordinator", []string{"spec", "protocol", "circuits", "prover", "coordinator", "internal/kv"}},
	{"internal/kv", nil},
	{"internal/eventlog", nil},
	{"internal/archtest", nil},
	{"internal", []string{""}}, // devnet, cli, bench: they assemble the roles
	{"cmd", []string{""}},
}

// testOnly are extra imports a package's tests may use: spec's tests check
// the conformance vectors' state digests, whose format protocol/core/commit
// defines.
var testOnly = map[string][]string{
	"spec": {"protocol/core/commit"},
}

func under(pkg, prefix string) bool {
	return prefix == "" || pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

func rule(pkg string) (imports []string, ok bool) {
	best := -1
	for i, r := range allowed {
		if under(pkg, r.pkg) && (best < 0 || len(r.pkg) > len(allowed[best].pkg)) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	return allowed[best].imports, true
}

func TestLayers(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not available")
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		pkg := strings.TrimPrefix(parts[0], module)
		ok := func(imp string, test bool) bool {
			if imp == pkg {
				return true // an external test package
			}
			may, known := rule(pkg)
			if !known {
				t.Errorf("%s: no layer rule: add it to allowed", pkg)
				return true
			}
			for _, p := range may {
				if under(imp, p) {
					return true
				}
			}
			if test {
				for prefix, extra := range testOnly {
					if under(pkg, prefix) {
						for _, p := range extra {
							if under(imp, p) {
								return true
							}
						}
					}
				}
			}
			return false
		}
		for i, list := range parts[1:] {
			for _, imp := range strings.Fields(list) {
				if !strings.HasPrefix(imp, module) {
					continue
				}
				imp = strings.TrimPrefix(imp, module)
				checked++
				if !ok(imp, i == 1) {
					kind := "imports"
					if i == 1 {
						kind = "imports in its tests"
					}
					t.Errorf("%s %s %s: not allowed by its layer (internal/archtest)", pkg, kind, imp)
				}
			}
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d imports: is go list broken?", checked)
	}
}

// TestLayerRulesBite checks the allow-list catches what it must: a role
// importing another role, spec importing protocol, the coordinator
// importing a daemon.
func TestLayerRulesBite(t *testing.T) {
	for _, c := range []struct{ pkg, imp string }{
		{"solver/daemon", "verifier/audit"},
		{"verifier/daemon", "solver/store"},
		{"coordinator/node", "solver/daemon"},
		{"coordinator/node", "verifier/daemon"},
		{"spec/dataset", "protocol/core/commit"},
		{"protocol/core/dispute", "protocol/net/wire"},
		{"prover", "verifier/audit"},
	} {
		may, _ := rule(c.pkg)
		for _, p := range may {
			if under(c.imp, p) {
				t.Errorf("%s may import %s: the layer rules let it through", c.pkg, c.imp)
			}
		}
	}
}

// TestCoreIsPure keeps the normative protocol core off the network and
// storage: a re-implementer of SPEC.md needs none of them.
func TestCoreIsPure(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not available")
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./protocol/core/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"libp2p", "badger", "protobuf", "cobra", "net/http"} {
			if strings.Contains(dep, bad) {
				t.Errorf("protocol/core/... depends on %s", dep)
			}
		}
	}
}
