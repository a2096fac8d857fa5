package vulkan

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSPIRVCurrent fails when a committed shaders/*.spv is not what
// shaders/gen.sh (glslc) makes of the GLSL beside it: run `go generate
// ./spec/vulkan` after editing a shader. Skipped without glslc.
func TestSPIRVCurrent(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("glslc"); err != nil {
		t.Skip("glslc not installed (Debian package glslc): cannot check the committed SPIR-V")
	}
	dir := t.TempDir()
	out, err := exec.Command("sh", "shaders/gen.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("shaders/gen.sh: %v\n%s", err, out)
	}
	fresh, err := filepath.Glob(filepath.Join(dir, "*.spv"))
	if err != nil || len(fresh) == 0 {
		t.Fatalf("gen.sh wrote no SPIR-V: %v", err)
	}
	committed, _ := filepath.Glob("shaders/*.spv")
	if len(committed) != len(fresh) {
		t.Errorf("%d committed .spv files, gen.sh makes %d", len(committed), len(fresh))
	}
	for _, f := range fresh {
		want, _ := os.ReadFile(f)
		got, err := shader(filepath.Base(f[:len(f)-len(".spv")]))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("shaders/%s is stale: run go generate ./spec/vulkan", filepath.Base(f))
		}
	}
}
