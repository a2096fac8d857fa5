package model_test

import (
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// TestVulkanRunnerMatchesEngine: on the vulkan backend (lavapipe here)
// the MLP runner takes the engine's steps, its State() pointer is current
// after every step, an edit to it between steps is trained on, Eval
// matches, and Close releases the device.
func TestVulkanRunnerMatchesEngine(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	d, err := model.LoadData(s, model.DataOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := model.InitState(s)
	r, err := model.NewRunner(s, d, st, model.WithBackend(model.BackendVulkan))
	if errors.Is(err, vulkan.ErrNoDevice) {
		t.Skipf("no Vulkan device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.(io.Closer).Close()
	if r.State() != st {
		t.Fatal("State() is not the state handed in")
	}
	eng, err := engine.New(s, s.Init(), engine.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	b := engine.NewBatcher(s, d.Train)
	for step := range int64(12) {
		want, err := eng.Step(b.Batch(step))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Step()
		if err != nil {
			t.Fatal(err)
		}
		if got != want/int64(s.BatchSize) || !reflect.DeepEqual(st, eng.State()) {
			t.Fatalf("step %d: loss %d (engine %d) or state differs from the engine's", step, got, want/int64(s.BatchSize))
		}
		if step == 5 { // a fault injector's edit, on both
			st.Layer(1, spec.TensorWeight)[3] += 1 << 20
			eng.State().Layer(1, spec.TensorWeight)[3] += 1 << 20
		}
	}
	want, err := model.NewRunner(s, d, eng.State(), model.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := r.Eval()
	if err != nil {
		t.Fatal(err)
	}
	wev, err := want.Eval()
	if err != nil {
		t.Fatal(err)
	}
	if ev != wev {
		t.Fatalf("eval %+v, engine %+v", ev, wev)
	}
}

// TestBackendChoice: a GPT trains on vulkan (lavapipe here) and under
// auto on a GPU or the CPU; auto never takes a CPU Vulkan device
// (lavapipe); bad names are refused.
func TestBackendChoice(t *testing.T) {
	t.Parallel()
	s, d, _ := tiny(t, 2)
	st, _ := model.InitState(s)
	r, err := model.NewRunner(s, d, st, model.WithBackend(model.BackendVulkan))
	switch {
	case errors.Is(err, vulkan.ErrNoDevice):
	case err != nil:
		t.Fatalf("GPT on vulkan: %v", err)
	default:
		if _, err := r.Step(); err != nil {
			t.Fatalf("GPT step on vulkan: %v", err)
		}
		r.(io.Closer).Close()
	}
	st, _ = model.InitState(s)
	r, err = model.NewRunner(s, d, st, model.WithBackend(model.BackendAuto))
	if err != nil {
		t.Fatalf("GPT on auto: %v", err)
	}
	if c, ok := r.(io.Closer); ok {
		c.Close() // a GPU took it
	}
	if _, err := model.ParseBackend("cuda"); err == nil {
		t.Fatal("backend cuda accepted")
	}
	c, err := model.ResolveBackend(model.BackendAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Backend == model.BackendVulkan && !c.Device.Info().GPU {
		t.Fatalf("auto chose %s", c.Describe)
	}
	t.Log("auto: " + c.Describe)
}

// TestAutoFallsBack: under auto, an MLP the chosen device cannot take
// (here: a closed device) trains on the CPU; under vulkan it fails.
func TestAutoFallsBack(t *testing.T) {
	t.Parallel()
	d, err := vulkan.Open()
	if errors.Is(err, vulkan.ErrNoDevice) {
		t.Skipf("no Vulkan device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	data, err := model.LoadData(s, model.DataOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := model.NewRunner(s, data, s.Init(), model.WithBackend(model.BackendAuto), model.WithVulkanDevice(d))
	if err != nil {
		t.Fatalf("auto on a device that cannot take the job: %v", err)
	}
	if _, ok := r.(io.Closer); ok {
		t.Fatal("auto kept a device that failed")
	}
	if _, err := model.NewRunner(s, data, s.Init(), model.WithBackend(model.BackendVulkan), model.WithVulkanDevice(d)); err == nil {
		t.Fatal("vulkan on a closed device accepted")
	}
}

// TestVulkanGPTRunnerMatchesCPU: on the vulkan backend (lavapipe here) the
// GPT runner takes the CPU runner's steps (loss and state, the int64
// second moments included), an edit to its State() between steps is
// trained on, Eval's validation loss (run on the device) matches, and
// Close releases the device.
func TestVulkanGPTRunnerMatchesCPU(t *testing.T) {
	t.Parallel()
	s, d, _ := tiny(t, 6)
	st, _ := model.InitState(s)
	r, err := model.NewRunner(s, d, st, model.WithBackend(model.BackendVulkan))
	if errors.Is(err, vulkan.ErrNoDevice) {
		t.Skipf("no Vulkan device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.(io.Closer).Close()
	cst, _ := model.InitState(s)
	cpu, err := model.NewRunner(s, d, cst, model.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	for step := range s.Steps {
		got, err := r.Step()
		if err != nil {
			t.Fatal(err)
		}
		want, err := cpu.Step()
		if err != nil {
			t.Fatal(err)
		}
		if r.State() != st || got != want || !reflect.DeepEqual(st, cpu.State()) {
			t.Fatalf("step %d: loss %d (cpu %d) or state differs from the CPU's", step, got, want)
		}
		if step == 2 { // a fault injector's edit, on both
			st.Tensors[0].Data[3] += 1 << 20
			cst.Tensors[0].Data[3] += 1 << 20
		}
	}
	ev, err := r.Eval()
	if err != nil {
		t.Fatal(err)
	}
	wev, err := cpu.Eval()
	if err != nil {
		t.Fatal(err)
	}
	if ev != wev {
		t.Fatalf("eval %+v, cpu %+v", ev, wev)
	}
}
