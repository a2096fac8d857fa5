//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
)

var (
	gptDevOnce sync.Once
	gptDev     *Device
	gptDevErr  error
)

// testDevice returns the device the package's internal GPT tests share
// (lavapipe here and in CI), skipping without Vulkan unless
// BELUGA_REQUIRE_VULKAN=1.
func testDevice(t *testing.T) *Device {
	t.Helper()
	gptDevOnce.Do(func() { gptDev, gptDevErr = Open() })
	if errors.Is(gptDevErr, ErrNoDevice) && os.Getenv("BELUGA_REQUIRE_VULKAN") != "1" {
		t.Skipf("no Vulkan device: %v", gptDevErr)
	}
	if gptDevErr != nil {
		t.Fatal(gptDevErr)
	}
	return gptDev
}

// largerGPTConfig is past the shaders' tiles and workgroups: several tiles
// per product, rows longer than a workgroup, many heads.
func largerGPTConfig(r *rand.Rand) gpt.Config {
	c := gpt.RandomConfig(r)
	c.Heads, c.Dim, c.FF, c.Context, c.Batch, c.Layers = 5, 5*13, 300, 37, 2, 1
	return c
}

func randomTokens(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

// gptCase is one reference run to check kernels against: a configuration,
// its graph and every tensor of a step.
type gptCase struct {
	name string
	c    gpt.Config
	g    *gptref.Graph
	st   *gpt.State
	vals map[string]gptref.Tensor
}

// gptCases are the configurations checkGPTKind runs: random small ones
// from a state one step past Init (nonzero moments), one with weights
// anywhere in int32 (saturating sums and clamps), a larger one and one
// with a head wider than a workgroup.
func gptCases(t *testing.T, seed uint64) []gptCase {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 14))
	var cases []gptCase
	for i := range 6 {
		var c gpt.Config
		switch i {
		case 4:
			c = largerGPTConfig(r)
		case 5: // one head wider than a 64-lane workgroup
			c = gpt.RandomConfig(r)
			c.Heads, c.Dim, c.Context, c.Batch, c.Layers = 1, 72, 5, 1, 1
		default:
			c = gpt.RandomConfig(r)
		}
		g, err := gptref.NewGraph(c)
		if err != nil {
			t.Fatal(err)
		}
		st := c.Init()
		if i == 3 {
			for _, w := range st.W {
				for j := range w {
					w[j] = int32(r.Uint32())
				}
			}
		}
		n := c.Tokens()
		if st, _, err = gptref.Step(c, st, randomTokens(r, n), randomTokens(r, n)); err != nil {
			t.Fatal(err)
		}
		vals, err := g.Run(st, randomTokens(r, n), randomTokens(r, n))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, gptCase{fmt.Sprintf("config%d(L%d D%d H%d F%d T%d B%d b%d)", i, c.Layers, c.Dim, c.Heads, c.FF, c.Context, c.Batch, c.Bits), c, g, st, vals})
	}
	return cases
}

// checkGPTKind runs, for a few small random configurations, the reference
// step (gptref.Graph.Run on a random state and batch), then every op of
// the given kind on the device from the reference's input tensors, and
// fails on the first output element that differs (naming op, tensor,
// index, want, got).
func checkGPTKind(t *testing.T, kind string) {
	t.Helper()
	d := testDevice(t)
	if _, ok := gptKernels[kind]; !ok {
		t.Fatalf("no kernel for kind %q", kind)
	}
	ran := 0
	for _, tc := range gptCases(t, uint64(len(kind))*131+uint64(kind[0])) {
		for i, op := range tc.g.Ops() {
			if op.Kind != kind {
				continue
			}
			got, err := runGPTOp(d, tc.c, tc.g, op, tc.vals, tc.st.Step)
			if err != nil {
				t.Fatalf("%s: %s: %v", tc.name, op.Name, err)
			}
			for _, name := range op.Outputs {
				want := tc.vals[name].Data
				if j := firstDiff(want, got[name]); j >= 0 {
					t.Fatalf("%s: op %d %s: tensor %s %v: element %d: want %d, got %d (first of %d differences)",
						tc.name, i, op.Name, name, tc.vals[name].Shape, j, want[j], got[name][j], countDiff(want, got[name]))
				}
			}
			ran++
		}
	}
	if ran == 0 {
		t.Fatalf("no operator of kind %q in the test configurations", kind)
	}
}

func firstDiff(a, b []int64) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

func countDiff(a, b []int64) int {
	n := 0
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			n++
		}
	}
	return n
}

// runGPTOp runs op alone on the device from the inputs in vals (step t)
// and returns its outputs. Output buffers start as garbage (0xA5 bytes),
// so an element a kernel forgets to write shows, and so do input buffers
// past their tensor (0x5A bytes), so a kernel that reads padding shows.
func runGPTOp(d *Device, c gpt.Config, g *gptref.Graph, op gptref.Op, vals map[string]gptref.Tensor, t int64) (map[string][]int64, error) {
	k := newGPTKit(d, c)
	defer k.destroy()
	devMem, hostMem := &arena{d: d}, &arena{d: d, host: true}
	defer devMem.destroy()
	defer hostMem.destroy()
	bufs, stage := map[string]*buffer{}, map[string]*buffer{}
	for _, name := range slices.Concat(op.Inputs, op.Outputs) {
		info, _ := g.Tensor(name)
		var err error
		if bufs[name], err = devMem.add(name, tensorBytes(info)); err != nil {
			return nil, err
		}
		if stage[name], err = hostMem.add(name, tensorBytes(info)); err != nil {
			return nil, err
		}
	}
	scratch, err := devMem.add("scratch", k.scratchBytes(op))
	if err != nil {
		return nil, err
	}
	if k.step, err = devMem.add("step", 16); err != nil {
		return nil, err
	}
	stepHost, err := hostMem.add("step", 16)
	if err != nil {
		return nil, err
	}
	if err := devMem.commit(); err != nil {
		return nil, err
	}
	if err := hostMem.commit(); err != nil {
		return nil, err
	}
	for _, name := range op.Inputs {
		// Past the tensor, a buffer's padding holds garbage, as device
		// memory does: a kernel must not read it.
		s := stage[name].int64s()
		copy(s, vals[name].Data)
		for i := len(vals[name].Data); i < len(s); i++ {
			s[i] = 0x5A5A5A5A5A5A5A5A
		}
	}
	stepHost.int64s()[0], stepHost.int64s()[1] = t, c.LRAt(t)
	pool, err := d.newCommandPool()
	if err != nil {
		return nil, err
	}
	defer call(d.fn.destroyCommandPool, d.handle, pool, 0)
	r, err := d.newCommandBuffer(pool)
	if err != nil {
		return nil, err
	}
	for _, name := range op.Inputs {
		r.copy(stage[name], bufs[name], 0, 0, stage[name].size)
	}
	r.copy(stepHost, k.step, 0, 0, 16)
	for _, name := range op.Outputs {
		r.fill(bufs[name], 0xA5A5A5A5)
	}
	r.fill(scratch, 0x5A5A5A5A)
	r.barrier()
	if err := k.record(r, op, bufs, scratch); err != nil {
		return nil, err
	}
	r.barrier()
	for _, name := range op.Outputs {
		r.copy(bufs[name], stage[name], 0, 0, stage[name].size)
	}
	r.hostBarrier()
	if err := r.end(); err != nil {
		return nil, err
	}
	if err := d.submit(r.cb); err != nil {
		return nil, err
	}
	out := map[string][]int64{}
	for _, name := range op.Outputs {
		info, _ := g.Tensor(name)
		out[name] = slices.Clone(stage[name].int64s()[:tensorBytes(info)/8])
	}
	return out, nil
}

// TestGPTRefusesMissingKinds: without a kernel for some operator kind,
// NewGPT fails before touching a device, naming the kind. Not parallel:
// it takes a kind out of gptKernels while no other test runs.
func TestGPTRefusesMissingKinds(t *testing.T) {
	c := gpt.RandomConfig(rand.New(rand.NewPCG(1, 1)))
	for _, kind := range []string{"attn", "adamw"} {
		kern, ok := gptKernels[kind]
		delete(gptKernels, kind)
		_, err := NewGPT(c, c.Init())
		if ok {
			gptKernels[kind] = kern
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), kind) {
			t.Fatalf("without a %s kernel: %v, want ErrUnsupported naming it", kind, err)
		}
	}
}
