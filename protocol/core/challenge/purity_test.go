package challenge

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestConsensusCodeIsIntegerOnly fails if the package's code (tests
// excepted) imports anything beyond its allowed dependencies or uses
// floating point: every party must compute the same challenge.
func TestConsensusCodeIsIntegerOnly(t *testing.T) {
	allowed := map[string]bool{
		"crypto/sha256": true, "encoding/binary": true, "errors": true, "fmt": true, "slices": true,
		"github.com/beluga-compute/beluga/spec/merkle": true,
		"github.com/beluga-compute/beluga/spec":        true,
		"github.com/beluga-compute/beluga/spec/prng":   true,
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); !allowed[p] {
				t.Errorf("%s imports %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				if n.Name == "float32" || n.Name == "float64" || n.Name == "complex64" || n.Name == "complex128" {
					t.Errorf("%s: floating point type at %v", name, fset.Position(n.Pos()))
				}
			case *ast.BasicLit:
				if n.Kind == token.FLOAT || n.Kind == token.IMAG {
					t.Errorf("%s: floating point literal at %v", name, fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}
