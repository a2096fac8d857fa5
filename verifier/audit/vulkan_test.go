package audit

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// TestReplaysOnVulkan: a verifier that replays on a Vulkan device (the
// `beluga verifier --backend` path; lavapipe will do) reaches the CPU's
// verdicts: an honest run trained on the CPU passes, with every sampled
// segment matching, and a solver that skips steps is caught. Skipped
// without a Vulkan device unless BELUGA_REQUIRE_VULKAN=1.
func TestReplaysOnVulkan(t *testing.T) {
	dev, err := vulkan.Open()
	if errors.Is(err, vulkan.ErrNoDevice) && os.Getenv("BELUGA_REQUIRE_VULKAN") != "1" {
		t.Skipf("no Vulkan device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	onVulkan := []model.Option{model.WithBackend(model.BackendVulkan), model.WithVulkanDevice(dev)}

	const n = 120
	s, ds := jobSpec(t, n)
	data := &model.Data{Train: ds}
	honest := runScripted(t, s, ds, nil, nil)
	bad := map[int64]bool{}
	for i := int64(n / 2); i < n; i++ {
		bad[i] = true // the second half skipped: its state is stale from then on
	}
	cheater := runScripted(t, s, ds, bad, cheaters["skips the step (reuses the old state)"])
	for i := range 3 {
		rep, err := Run(context.Background(), Config{Spec: s, Data: data, Beacon: beacon(i), Samples: 4, Model: onVulkan}, honest)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Pass {
			t.Fatalf("beacon %d: an honest CPU run fails its audit on Vulkan: %s", i, rep.Reason)
		}
		for _, seg := range rep.Segments {
			if seg.Outcome != "match" {
				t.Fatalf("beacon %d: segment %+v", i, seg)
			}
		}
		rep, err = Run(context.Background(), Config{Spec: s, Data: data, Beacon: beacon(i), Samples: 4, Model: onVulkan}, cheater)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Fail {
			t.Fatalf("beacon %d: a solver skipping half its steps passes on Vulkan", i)
		}
	}
}
