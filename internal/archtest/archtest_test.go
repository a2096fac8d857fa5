// Package archtest holds tests of the project's structure: which packages
// may use floating point and which may import what.
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
var stepPackages = []string{"spec", "protocol/commit", "protocol/merkle", "protocol/challenge", "solver/trainer", "verifier/dispute", "circuits"}

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
// node see protocol/pb; everything else works with native types.
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
	const pb = "github.com/beluga-compute/beluga/protocol/pb"
	allowed := map[string]bool{pb: true, "github.com/beluga-compute/beluga/protocol/wire": true, "github.com/beluga-compute/beluga/protocol/p2p": true}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || allowed[f[0]] {
			continue
		}
		for _, imp := range f[1:] {
			if imp == pb {
				t.Errorf("%s imports protocol/pb: convert at the boundary (protocol/wire)", f[0])
			}
		}
	}
}
