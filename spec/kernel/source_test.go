package kernel

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSourceRules keeps the package integer-only and its dependencies
// minimal: no non-test file may mention a floating-point type, and the
// package may import only what its kernels need.
func TestSourceRules(t *testing.T) {
	banned := []string{"flo" + "at32", "flo" + "at64", "comp" + "lex64", "comp" + "lex128"}
	allowed := map[string]bool{"errors": true, "fmt": true, "sync": true, "golang.org/x/sys/cpu": true,
		"github.com/beluga-compute/beluga/spec/par": true, // the team of goroutines Parallel splits onto
		// gen_asm.go, a go:generate program outside the build
		"bytes": true, "flag": true, "go/format": true, "log": true, "os": true}
	files, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || !(strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".s")) {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range banned {
			if strings.Contains(string(src), w) {
				t.Errorf("%s mentions %s", name, w)
			}
		}
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); !allowed[path] {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
