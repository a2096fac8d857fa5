package vulkan_test

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/spectest"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// gptDigest is the state digest of SPEC.md §16 under a fixed job ID.
func gptDigest(c gpt.Config, st *gpt.State) string {
	var h commit.Hasher
	d := h.StateDigest(spec.JobID{}, spec.GPTTensors(c, st))
	return hex.EncodeToString(d[:])
}

// gptTrainers returns a Vulkan trainer of c from st on the shared device,
// closed when the test ends, and the CPU engine's trainer of c.
func gptTrainers(t *testing.T, c gpt.Config, st *gpt.State) (*vulkan.GPTTrainer, *gpt.Trainer) {
	t.Helper()
	v, err := vulkan.NewGPT(c, st, vulkan.WithDevice(device(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	e, err := gpt.NewTrainer(c, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return v, e
}

// compareGPT runs steps steps of c from st with the Vulkan trainer, the
// CPU engine (spec/gpt) and the reference (spec/gptref), failing at the
// first step whose loss, gradient norm or state digest differs.
func compareGPT(t *testing.T, c gpt.Config, st *gpt.State, steps int, r *rand.Rand) {
	t.Helper()
	v, e := gptTrainers(t, c, st.Clone())
	cpu, ref := st.Clone(), st.Clone()
	for step := range steps {
		b := gpt.RandomBatch(r, c)
		got, err := v.Step(b)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		want, err := e.Step(cpu, b)
		if err != nil {
			t.Fatal(err)
		}
		var refLoss int64
		if ref, refLoss, err = gptref.Step(c, ref, b.Tokens, b.Targets); err != nil {
			t.Fatal(err)
		}
		gd, wd, rd := gptDigest(c, v.State()), gptDigest(c, cpu), gptDigest(c, ref)
		if got != want || want.LossQ16 != refLoss || gd != wd || wd != rd {
			t.Fatalf("step %d: vulkan loss %d norm %d digest %.12s; engine loss %d norm %d digest %.12s; reference loss %d digest %.12s",
				step, got.LossQ16, got.NormQ15, gd, want.LossQ16, want.NormQ15, wd, refLoss, rd)
		}
	}
}

// TestGPTMatchesCPU: on random small configurations (and states with
// weights anywhere in int32, which saturate the residual stream and the
// clamps), every step on the device gives the CPU engine's and the
// reference's loss, gradient norm and state digest.
func TestGPTMatchesCPU(t *testing.T) {
	t.Parallel()
	device(t)
	for i := range 6 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(20, uint64(i)))
			c, st := randomGPT(r, i%3 == 2)
			compareGPT(t, c, st, 3, r)
		})
	}
}

// TestGPTRandomSpecs: 24 more random configurations, two steps each, on
// the device and the CPU (BELUGA_SLOW=1: five steps each).
func TestGPTRandomSpecs(t *testing.T) {
	t.Parallel()
	device(t)
	steps := 2
	if spectest.IsSlow() {
		steps = 5
	}
	for i := range 24 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(21, uint64(i)))
			c := gpt.RandomConfig(r)
			compareGPT(t, c, c.Init(), steps, r)
		})
	}
}

// TestGPTStateEdited: a state changed between steps (through State) is
// uploaded by the next step.
func TestGPTStateEdited(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(22, 1))
	c := gpt.RandomConfig(r)
	v, e := gptTrainers(t, c, c.Init())
	cpu := c.Init()
	for step := range 3 {
		b := gpt.RandomBatch(r, c)
		got, err := v.Step(b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := e.Step(cpu, b)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || gptDigest(c, v.State()) != gptDigest(c, cpu) {
			t.Fatalf("step %d: vulkan %+v, engine %+v", step, got, want)
		}
		for _, st := range []*gpt.State{v.State(), cpu} {
			st.W[0][step] = 12345 << step
			st.V[1][0] = 77
		}
	}
}

// TestGPTLoss: the device's forward pass gives gpt.Trainer.Loss for every
// number of windows, and leaves the state alone.
func TestGPTLoss(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(23, 1))
	c := gpt.RandomConfig(r)
	c.Batch = 3
	v, e := gptTrainers(t, c, c.Init())
	b := gpt.RandomBatch(r, c)
	for w := range c.Batch + 1 {
		got, err := v.Loss(b, w)
		if err != nil {
			t.Fatal(err)
		}
		want, err := e.Loss(c.Init(), b, w)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%d windows: vulkan loss %d, engine %d", w, got, want)
		}
	}
	if gptDigest(c, v.State()) != gptDigest(c, c.Init()) || v.Steps() != 0 {
		t.Fatal("Loss changed the state")
	}
}

// TestGPTBadInput: a bad configuration, state or batch is refused with an
// error, and a refused batch leaves the trainer usable.
func TestGPTBadInput(t *testing.T) {
	t.Parallel()
	d := device(t)
	r := rand.New(rand.NewPCG(24, 1))
	c := gpt.RandomConfig(r)
	bad := c
	bad.Bits = 3
	if _, err := vulkan.NewGPT(bad, c.Init(), vulkan.WithDevice(d)); err == nil {
		t.Fatal("a configuration with 3-bit operands was accepted")
	}
	st := c.Init()
	st.V[0][0] = -1
	if _, err := vulkan.NewGPT(c, st, vulkan.WithDevice(d)); err == nil {
		t.Fatal("a negative second moment was accepted")
	}
	if _, err := vulkan.NewGPT(c, &gpt.State{}, vulkan.WithDevice(d)); err == nil {
		t.Fatal("an empty state was accepted")
	}
	v, err := vulkan.NewGPT(c, c.Init(), vulkan.WithDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Step(gpt.Batch{Tokens: []byte{1}}); err == nil {
		t.Fatal("a short batch was accepted")
	}
	if _, err := v.Loss(gpt.RandomBatch(r, c), c.Batch+1); err == nil {
		t.Fatal("more windows than the batch were accepted")
	}
	if v.Steps() != 0 || gptDigest(c, v.State()) != gptDigest(c, c.Init()) {
		t.Fatal("a refused batch changed the state")
	}
	compareAfter := c.Init()
	e, _ := gpt.NewTrainer(c, kernel.Generic(), 1)
	b := gpt.RandomBatch(r, c)
	got, err := v.Step(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := e.Step(compareAfter, b)
	if got != want || gptDigest(c, v.State()) != gptDigest(c, compareAfter) {
		t.Fatal("the step after a refused batch differs from the engine's")
	}
	v.Close()
	if _, err := v.Step(b); !errors.Is(err, vulkan.ErrClosed) {
		t.Fatalf("step after Close: %v, want ErrClosed", err)
	}
}

// TestGPTDeviceGone: a GPT trainer whose device went away (here: closed
// under it) returns errors from then on, as Trainer does (TestDeviceGone),
// never a state it did not copy back.
func TestGPTDeviceGone(t *testing.T) {
	t.Parallel()
	d := ownDevice(t)
	r := rand.New(rand.NewPCG(25, 1))
	c := gpt.RandomConfig(r)
	v, err := vulkan.NewGPT(c, c.Init(), vulkan.WithDevice(d))
	if err != nil {
		t.Fatal(err)
	}
	b := gpt.RandomBatch(r, c)
	if _, err := v.Step(b); err != nil {
		t.Fatal(err)
	}
	checkDeviceGone(t, d, v, func() error {
		if _, err := v.Loss(b, 1); !errors.Is(err, vulkan.ErrClosed) {
			t.Fatalf("Loss on a closed device: %v, want ErrClosed", err)
		}
		_, err := v.Step(b)
		return err
	}, func() int64 { return v.State().Step })
	last := c.Init() // the tensors last copied back, at the step count
	last.Step = 1
	if gptDigest(c, v.State()) != gptDigest(c, last) {
		t.Fatal("the state after the device went is not the one last copied back")
	}
}

// TestGPTVectors: every GPT conformance vector (spec/testdata/gptvectors)
// gives, step by step on the device, the loss and state digest its
// steps.txt pins (the reference's).
func TestGPTVectors(t *testing.T) {
	t.Parallel()
	device(t)
	forEachVector(t, "gptvectors", func(t *testing.T, dir string, s *spec.Spec, want []record) {
		text, err := os.ReadFile(filepath.Join(dir, "corpus.txt"))
		if err != nil {
			t.Fatal(err)
		}
		tx, err := dataset.NewText(text)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.GPT()
		if err != nil {
			t.Fatal(err)
		}
		split, err := s.TextSplit()
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.ID()
		if err != nil {
			t.Fatal(err)
		}
		v, err := vulkan.NewGPT(c, c.Init(), vulkan.WithDevice(device(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		var h commit.Hasher
		steps := s.Steps
		if !spectest.IsSlow() && c.Dim > 64 {
			// lavapipe takes over a second a step of the 384-wide vector:
			// its first step by default, all with BELUGA_SLOW=1.
			steps = min(steps, 1)
		}
		for step := range steps {
			offs := dataset.TrainWindows(c.Seed, step, c.Batch, c.Context, split.Train, nil)
			b, err := model.TextBatch(tx, c, offs)
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Step(b)
			if err != nil {
				t.Fatal(err)
			}
			d := h.StateDigest(id, spec.GPTTensors(c, v.State()))
			got := record{res.LossQ16, hex.EncodeToString(d[:])}
			if int(step) >= len(want) || got != want[step] {
				t.Fatalf("step %d: loss %d digest %.12s, vector %+v", step, got.loss, got.digest, want[min(int(step), len(want)-1)])
			}
		}
	})
}

// randomGPT is a random small GPT configuration at its initial state or,
// wild, with weights anywhere in int32 (saturating the residual stream,
// the clamps and the quantised operands).
func randomGPT(r *rand.Rand, wild bool) (gpt.Config, *gpt.State) {
	c := gpt.RandomConfig(r)
	st := c.Init()
	if wild {
		for _, w := range st.W {
			for j := range w {
				w[j] = int32(r.Uint32())
			}
		}
	}
	return c, st
}
