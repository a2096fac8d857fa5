package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTrainBackends: `train --backend vulkan` (lavapipe here) ends at the
// CPU's final digest and says so in its JSON; a GPT on vulkan is refused
// as a usage error; an unknown backend too.
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
	if code, _, errOut := run(t, "train", "--example", "gpt", "--backend", "vulkan"); code != exitUsage || !strings.Contains(errOut, "MLP jobs only") {
		t.Fatalf("GPT on vulkan: exit %d: %s", code, errOut)
	}
	if code, _, _ := run(t, "train", "--backend", "cuda"); code != exitUsage {
		t.Fatalf("--backend cuda: exit %d", code)
	}
}
