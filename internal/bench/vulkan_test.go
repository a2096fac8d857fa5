package bench

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec/vulkan"
)

// TestVulkanBench: the conformance check passes on this machine's device
// (lavapipe) and the timing gives a Vulkan and a CPU row per batch.
func TestVulkanBench(t *testing.T) {
	t.Parallel()
	d, err := vulkan.Open()
	if errors.Is(err, vulkan.ErrNoDevice) {
		t.Skipf("no Vulkan device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := VulkanConfig{Batches: []int{4}, Steps: 2, Warmup: 1, Repeats: 1, Random: 3, CheckSteps: 2, Threads: 1}
	res, err := VulkanConformance(context.Background(), io.Discard, d, cfg)
	if err != nil || res.Specs != 4 {
		t.Fatalf("conformance: %+v, %v", res, err)
	}
	rows, err := TimeVulkan(context.Background(), d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !strings.Contains(rows[0].Impl, "vulkan") || rows[0].StepMillis <= 0 || rows[1].StepMillis <= 0 {
		t.Fatalf("rows %+v", rows)
	}
	var b strings.Builder
	PrintVulkan(&b, rows, cfg)
	if !strings.Contains(b.String(), "beluga vulkan") {
		t.Fatalf("table:\n%s", b.String())
	}
}

// TestMLPSpecAtLargeBatch: MLP 784-256-128-10 at batch 8192 is valid
// (its formats narrowed so every sum fits int32) and says so; batch 64
// keeps the default formats.
func TestMLPSpecAtLargeBatch(t *testing.T) {
	t.Parallel()
	s, err := MLPSpec(8192)
	if err != nil {
		t.Fatal(err)
	}
	if NarrowedNote(s) == "" {
		t.Fatal("batch 8192 with the default formats: its weight-gradient sums can overflow int32")
	}
	small, err := MLPSpec(64)
	if err != nil || NarrowedNote(small) != "" {
		t.Fatalf("batch 64: %v, %q", err, NarrowedNote(small))
	}
	t.Log(NarrowedNote(s))
}
