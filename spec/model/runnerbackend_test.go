package model_test

import (
	"errors"
	"io"
	"testing"

	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// TestRunnerBackend: RunnerBackend says where the runner NewRunner built
// trains: the CPU by default; the device under vulkan; the CPU under auto
// when the device cannot take the job (here: a closed device), which is
// what a solver must then report instead of its hello's "vulkan".
func TestRunnerBackend(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	data, err := model.LoadData(s, model.DataOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := model.NewRunner(s, data, s.Init())
	if err != nil {
		t.Fatal(err)
	}
	if b := model.RunnerBackend(r); b != model.BackendCPU {
		t.Fatalf("default runner on %s", b)
	}
	gs, gd, _ := tiny(t, 2)
	gst, _ := model.InitState(gs)
	if r, err = model.NewRunner(gs, gd, gst); err != nil || model.RunnerBackend(r) != model.BackendCPU {
		t.Fatalf("default GPT runner: %v", err)
	}

	d, err := vulkan.Open()
	if errors.Is(err, vulkan.ErrNoDevice) {
		t.Skipf("no Vulkan device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err = model.NewRunner(s, data, s.Init(), model.WithBackend(model.BackendVulkan), model.WithVulkanDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	if b := model.RunnerBackend(r); b != model.BackendVulkan {
		t.Fatalf("MLP runner on vulkan says %s", b)
	}
	r.(io.Closer).Close()
	gst, _ = model.InitState(gs)
	r, err = model.NewRunner(gs, gd, gst, model.WithBackend(model.BackendVulkan), model.WithVulkanDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	if b := model.RunnerBackend(r); b != model.BackendVulkan {
		t.Fatalf("GPT runner on vulkan says %s", b)
	}
	r.(io.Closer).Close()
	d.Close()
	r, err = model.NewRunner(s, data, s.Init(), model.WithBackend(model.BackendAuto), model.WithVulkanDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	if b := model.RunnerBackend(r); b != model.BackendCPU {
		t.Fatalf("auto on a device that cannot take the job: the runner says %s", b)
	}
}
