package devnet

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// TestDevnetOnVulkan: with Backend vulkan (lavapipe will do) the three
// solvers train on the Vulkan device and the verifiers replay on the CPU.
// The timeline says where each solver trains, the JSON result lists each
// solver's backend and, per job, the backend the coordinator recorded for
// the solver that ran it; the honest jobs settle across backends and the
// cheater is still caught. Skipped without a Vulkan device, unless
// BELUGA_REQUIRE_VULKAN=1.
func TestDevnetOnVulkan(t *testing.T) {
	if devs, err := vulkan.Devices(); err != nil || len(devs) == 0 {
		if os.Getenv("BELUGA_REQUIRE_VULKAN") == "1" {
			t.Fatalf("no Vulkan device (%v), and BELUGA_REQUIRE_VULKAN=1", err)
		}
		t.Skipf("no Vulkan device (%v)", err)
	}
	var log bytes.Buffer
	res, err := Run(context.Background(), Config{Steps: 20, Out: &log, Backend: model.BackendVulkan})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	b, _ := json.Marshal(res)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"solvers", "backends"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("JSON result lacks %q: %s", k, b)
		}
	}
	if len(res.Solvers) != 3 {
		t.Fatalf("%d solvers in the result: %s", len(res.Solvers), b)
	}
	for _, s := range res.Solvers {
		if !strings.HasPrefix(s.Backend, "vulkan (") || s.Peer == "" || s.Party == "" {
			t.Fatalf("solver %+v: want a vulkan backend", s)
		}
		if !strings.Contains(log.String(), "trains on "+s.Backend) {
			t.Fatalf("the timeline does not say where the solvers train:\n%s", log.String())
		}
	}
	if len(res.Backends) != len(res.Jobs) {
		t.Fatalf("%d backends for %d jobs: %s", len(res.Backends), len(res.Jobs), b)
	}
	settled := 0
	for i, o := range res.Jobs {
		if !strings.HasPrefix(res.Backends[i], "vulkan (") {
			t.Fatalf("job %d: the coordinator recorded backend %q, want vulkan (…)", i, res.Backends[i])
		}
		if o.State == lifecycle.Settled {
			settled++
		}
	}
	if settled != 2 || len(res.Slashed) != 1 || !res.LedgerBalanced || res.ReportsVerified != 3 {
		t.Fatalf("want the two honest jobs settled across backends and the cheater slashed: %s\n%s", b, log.String())
	}
}
