package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec/catalog"
)

// TestTrainBackends: `train --backend vulkan` (lavapipe here) ends at the
// CPU's final digest and says so in its JSON, for the MLP and the GPT
// example; an unknown backend is a usage error.
func TestTrainBackends(t *testing.T) {
	t.Parallel()
	digest := map[string]string{}
	for _, b := range []string{"cpu", "vulkan"} {
		code, out, errOut := run(t, "train", "--steps", "30", "--backend", b, "--json")
		if b == "vulkan" && code != 0 && strings.Contains(errOut, "no usable Vulkan device") {
			t.Skipf("no Vulkan device: %s", errOut)
		}
		if code != 0 {
			t.Fatalf("train --backend %s: exit %d: %s", b, code, errOut)
		}
		var sum trainSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Backend != b {
			t.Fatalf("--backend %s trained on %q", b, sum.Backend)
		}
		digest[b] = sum.FinalDigest
	}
	if digest["cpu"] != digest["vulkan"] {
		t.Fatalf("final digest on vulkan %s, on cpu %s", digest["vulkan"], digest["cpu"])
	}
	// A GPT trains on vulkan to the CPU's digest too.
	_, specPath, corpusPath := tinyGPTFiles(t, 3)
	gptDigest := map[string]string{}
	for _, b := range []string{"cpu", "vulkan"} {
		code, out, errOut := run(t, "train", "--spec", specPath, "--data", corpusPath, "--backend", b, "--json", "--quiet")
		if code != 0 {
			t.Fatalf("train --example gpt --backend %s: exit %d: %s", b, code, errOut)
		}
		var sum trainSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatal(err)
		}
		if sum.Backend != b {
			t.Fatalf("GPT --backend %s trained on %q", b, sum.Backend)
		}
		gptDigest[b] = sum.FinalDigest
	}
	if gptDigest["cpu"] != gptDigest["vulkan"] {
		t.Fatalf("GPT final digest on vulkan %s, on cpu %s", gptDigest["vulkan"], gptDigest["cpu"])
	}
	if code, _, _ := run(t, "train", "--backend", "cuda"); code != exitUsage {
		t.Fatalf("--backend cuda: exit %d", code)
	}
}

// TestVulkanRunAuditsOnCPU: a run trained and committed on the Vulkan
// backend (lavapipe here) passes a replay audit, which recomputes its
// sampled segments on the CPU engine: the cross-backend audit a GPU
// solver faces.
func TestVulkanRunAuditsOnCPU(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.CheckpointInterval = 12, 4
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	id, _ := s.ID()
	specFile, runDir := filepath.Join(dir, "job.json"), filepath.Join(dir, "run")
	writeSpec(t, specFile, s)
	code, out, errs := run(t, "train", "--spec", specFile, "--out", runDir, "--commit", "--quiet", "--json", "--backend", "vulkan")
	if code != 0 && strings.Contains(errs, "no usable Vulkan device") {
		t.Skipf("no Vulkan device: %s", errs)
	}
	if code != 0 || !strings.Contains(out, `"backend":"vulkan"`) {
		t.Fatalf("train on vulkan: exit %d: %s%s", code, out, errs)
	}
	code, out, errs = run(t, "audit", "--trace", runDir, "--job", id.String(), "--samples", "3", "--beacon", "01", "--json")
	var rep map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep["verdict"] != "pass" {
		t.Fatalf("CPU audit of the Vulkan run: exit %d: %s%s", code, out, errs)
	}
}
