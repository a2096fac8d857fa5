package bench

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/spectest"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

//go:embed torch_mlp_cuda.py
var torchCUDAScript string

// VulkanConfig sets up `beluga bench vulkan`: the conformance check of
// the Vulkan backend against the CPU engine, then MLP 784-256-128-10 step
// times on Vulkan, the CPU engine and (optionally) PyTorch CUDA eager.
type VulkanConfig struct {
	// Batches are the MLP batch sizes timed (and checked: CheckSteps steps
	// of the reference MLP at each).
	Batches []int
	// Steps are timed per batch after Warmup steps, best of Repeats.
	Steps, Warmup, Repeats int
	// Random is how many random specs (spectest.Random) the conformance
	// check runs; CheckSteps how many steps of the reference MLP per batch.
	Random, CheckSteps int
	// Vectors is a directory of conformance vectors (spec/testdata/vectors)
	// also checked; empty skips them.
	Vectors string
	// Threads is the CPU engine's thread count (0: all cores).
	Threads int
	// Python runs the PyTorch CUDA peer; empty skips it.
	Python string
	// NoCheck and NoTime skip a part.
	NoCheck, NoTime bool
}

// DefaultVulkanConfig is what scripts/gpu-check.sh runs.
func DefaultVulkanConfig() VulkanConfig {
	return VulkanConfig{Batches: []int{64, 1024, 8192}, Steps: 50, Warmup: 5, Repeats: 3, Random: 40, CheckSteps: 3}
}

// CheckResult counts what the conformance check compared.
type CheckResult struct {
	Specs, Steps int
}

// VulkanConformance trains every spec of the check on d and on the CPU
// engine and compares the loss and state digest after every step,
// stopping at the first difference (an error naming the spec and step).
func VulkanConformance(ctx context.Context, w io.Writer, d *vulkan.Device, cfg VulkanConfig) (CheckResult, error) {
	var res CheckResult
	type job struct {
		name  string
		s     *spec.Spec
		ds    *dataset.Dataset
		steps int64
	}
	var jobs []job
	r := rand.New(rand.NewPCG(14, 1))
	for i := range cfg.Random {
		s := spectest.Random(r, 40, 37)
		ds, err := dataset.Synthetic(s.Data.Synthetic.Seed, s.Data.Train.Count, s.Data.Train.Features, s.Data.Train.Classes)
		if err != nil {
			return res, err
		}
		jobs = append(jobs, job{fmt.Sprintf("random %d", i), s, ds, s.Steps})
	}
	if cfg.Vectors != "" {
		paths, err := filepath.Glob(filepath.Join(cfg.Vectors, "*", "spec.json"))
		if err != nil || len(paths) == 0 {
			return res, fmt.Errorf("no vectors in %s", cfg.Vectors)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return res, err
			}
			s, err := spec.Decode(data)
			if err != nil {
				return res, fmt.Errorf("%s: %w", p, err)
			}
			ds, _, err := catalog.LoadData(s, "")
			if err != nil {
				return res, fmt.Errorf("%s: %w", p, err)
			}
			jobs = append(jobs, job{"vector " + filepath.Base(filepath.Dir(p)), s, ds, s.Steps})
		}
	}
	for _, b := range cfg.Batches {
		s, err := MLPSpec(b)
		if err != nil {
			return res, err
		}
		ds, err := dataset.Synthetic(1, s.Data.Train.Count, 784, 10)
		if err != nil {
			return res, err
		}
		jobs = append(jobs, job{fmt.Sprintf("MLP 784-256-128-10 batch %d", b), s, ds, int64(cfg.CheckSteps)})
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	var h commit.Hasher
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		e, err := engine.New(j.s, j.s.Init(), engine.WithThreads(threads))
		if err != nil {
			return res, err
		}
		if err := checkOne(d, j.s, j.ds, j.steps, e, &h); err != nil {
			return res, fmt.Errorf("%s: %w", j.name, err)
		}
		res.Steps += int(j.steps)
		res.Specs++
		fmt.Fprintf(w, "  same digests: %s (%d steps)\n", j.name, j.steps)
	}
	return res, nil
}

// checkOne trains s for steps steps with e and on d, twice: the batch from
// the host (Step) and gathered from the resident data set (StepIndices).
func checkOne(d *vulkan.Device, s *spec.Spec, ds *dataset.Dataset, steps int64, e *engine.Engine, h *commit.Hasher) error {
	v, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d))
	if err != nil {
		return err
	}
	defer v.Close()
	r, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d), vulkan.WithData(ds))
	if err != nil {
		return err
	}
	defer r.Close()
	id, _ := s.ID()
	batches := engine.NewBatcher(s, ds)
	for step := range steps {
		x, y := batches.Batch(step)
		wantLoss, err := e.Step(x, y)
		if err != nil {
			return err
		}
		want := h.StateDigest(id, e.State())
		gotLoss, err := v.Step(x, y)
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		if got := h.StateDigest(id, v.State()); got != want || gotLoss != wantLoss {
			return fmt.Errorf("step %d: vulkan loss %d digest %s, CPU engine loss %d digest %s",
				step, gotLoss, hex.EncodeToString(got[:8]), wantLoss, hex.EncodeToString(want[:8]))
		}
		if !r.Resident() {
			continue
		}
		gotLoss, err = r.StepIndices(batches.Idx)
		if err != nil {
			return fmt.Errorf("step %d (resident data): %w", step, err)
		}
		if got := h.StateDigest(id, r.State()); got != want || gotLoss != wantLoss {
			return fmt.Errorf("step %d (resident data): vulkan loss %d digest %s, CPU engine loss %d digest %s",
				step, gotLoss, hex.EncodeToString(got[:8]), wantLoss, hex.EncodeToString(want[:8]))
		}
	}
	return nil
}

// VulkanRow is one timed configuration.
type VulkanRow struct {
	Batch      int
	Impl       string
	StepMillis float64
	Note       string
}

// TimeVulkan times MLP 784-256-128-10 at every batch of cfg on d, on the
// CPU engine, and on PyTorch CUDA eager when cfg.Python is set.
func TimeVulkan(ctx context.Context, d *vulkan.Device, cfg VulkanConfig) ([]VulkanRow, error) {
	threads := cfg.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	var rows []VulkanRow
	for _, b := range cfg.Batches {
		s, err := MLPSpec(b)
		if err != nil {
			return nil, err
		}
		ds, err := dataset.Synthetic(1, s.Data.Train.Count, 784, 10)
		if err != nil {
			return nil, err
		}
		v, err := vulkan.New(s, s.Init(), vulkan.WithDevice(d), vulkan.WithData(ds))
		if err != nil {
			return nil, err
		}
		// The solver's path: the training set resident on the device,
		// only the sampler's indices sent per step.
		sm, idx := s.NewSampler(), make([]int, b)
		step := func([][]uint8, []uint8) (int64, error) {
			sm.Batch(v.Steps(), idx)
			return v.StepIndices(idx)
		}
		if !v.Resident() {
			step = v.Step
		}
		ms, err := timeSteps(ctx, s, ds, step, v.Steps, cfg)
		impl := vulkanImpl(v.IntegerDot())
		v.Close()
		if err != nil {
			return nil, err
		}
		note := d.Info().Name
		if n := NarrowedNote(s); n != "" {
			note += "; " + n
		}
		rows = append(rows, VulkanRow{Batch: b, Impl: impl, StepMillis: ms, Note: note})
		e, err := engine.New(s, s.Init(), engine.WithThreads(threads))
		if err != nil {
			return nil, err
		}
		ms, err = timeSteps(ctx, s, ds, e.Step, func() int64 { return e.State().Step }, cfg)
		if err != nil {
			return nil, err
		}
		rows = append(rows, VulkanRow{Batch: b, Impl: fmt.Sprintf("beluga cpu engine (%s, %d threads)", kernel.Best().Name(), threads), StepMillis: ms, Note: cpuModel()})
	}
	if cfg.Python != "" {
		peer, err := timeTorchCUDA(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("PyTorch CUDA peer (or pass --no-peer): %w", err)
		}
		rows = append(rows, peer...)
	}
	return rows, nil
}

// timeSteps returns the best of cfg.Repeats timings of cfg.Steps steps, in
// milliseconds per step. The State() of a Vulkan trainer is not read in
// the timed loop (stepNo reads the host's step counter), so the state
// stays on the device as in training.
func timeSteps(ctx context.Context, s *spec.Spec, ds *dataset.Dataset, step func([][]uint8, []uint8) (int64, error), stepNo func() int64, cfg VulkanConfig) (float64, error) {
	batches := engine.NewBatcher(s, ds)
	one := func() error {
		_, err := step(batches.Batch(stepNo()))
		return err
	}
	for range cfg.Warmup {
		if err := one(); err != nil {
			return 0, err
		}
	}
	best := time.Duration(1<<63 - 1)
	for range max(1, cfg.Repeats) {
		start := time.Now()
		for range max(1, cfg.Steps) {
			if err := one(); err != nil {
				return 0, err
			}
		}
		best = min(best, time.Since(start))
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return float64(best.Microseconds()) / 1e3 / float64(max(1, cfg.Steps)), nil
}

type torchCUDAResult struct {
	Batch      int     `json:"batch"`
	Mode       string  `json:"mode"`
	StepMillis float64 `json:"ms_per_step"`
	Torch      string  `json:"torch"`
	Device     string  `json:"device"`
}

func timeTorchCUDA(ctx context.Context, cfg VulkanConfig) ([]VulkanRow, error) {
	batches := make([]string, len(cfg.Batches))
	for i, b := range cfg.Batches {
		batches[i] = strconv.Itoa(b)
	}
	best := map[string]torchCUDAResult{}
	var order []string
	for range max(1, cfg.Repeats) {
		cmd := exec.CommandContext(ctx, cfg.Python, "-c", torchCUDAScript,
			strconv.Itoa(max(1, cfg.Steps)), strconv.Itoa(cfg.Warmup), strings.Join(batches, ","))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var r torchCUDAResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return nil, fmt.Errorf("bad peer output %q: %w", sc.Text(), err)
			}
			key := fmt.Sprintf("%d/%s", r.Batch, r.Mode)
			prev, ok := best[key]
			if !ok {
				order = append(order, key)
			}
			if !ok || r.StepMillis < prev.StepMillis {
				best[key] = r
			}
		}
	}
	var rows []VulkanRow
	for _, k := range order {
		r := best[k]
		rows = append(rows, VulkanRow{Batch: r.Batch, Impl: "pytorch " + r.Torch + " cuda eager " + r.Mode, StepMillis: r.StepMillis, Note: r.Device})
	}
	return rows, nil
}

// PrintVulkan writes the timing table, per batch, with each row's speed
// relative to the best PyTorch row of its batch and to the CPU engine
// (>1 means faster).
func PrintVulkan(w io.Writer, rows []VulkanRow, cfg VulkanConfig) {
	fmt.Fprintf(w, "MLP 784-256-128-10, %d steps (best of %d), %s/%s\n\n", cfg.Steps, max(1, cfg.Repeats), runtime.GOOS, runtime.GOARCH)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "batch\timplementation\tms/step\tvs best PyTorch\tvs CPU engine\tnote")
	for _, b := range cfg.Batches {
		peer, cpu := 0.0, 0.0
		for _, r := range rows {
			if r.Batch != b {
				continue
			}
			if strings.HasPrefix(r.Impl, "pytorch") && (peer == 0 || r.StepMillis < peer) {
				peer = r.StepMillis
			}
			if strings.HasPrefix(r.Impl, "beluga cpu") {
				cpu = r.StepMillis
			}
		}
		ratio := func(base, ms float64) string {
			if base == 0 || ms == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f×", base/ms)
		}
		for _, r := range rows {
			if r.Batch == b {
				fmt.Fprintf(tw, "%d\t%s\t%.3f\t%s\t%s\t%s\n", b, r.Impl, r.StepMillis, ratio(peer, r.StepMillis), ratio(cpu, r.StepMillis), r.Note)
			}
		}
	}
	tw.Flush()
}

// PrintDevices lists the Vulkan devices with what the backend needs.
func PrintDevices(w io.Writer, infos []vulkan.DeviceInfo) {
	for _, i := range infos {
		fmt.Fprintf(w, "device %d: %s\n", i.Index, i)
		fmt.Fprintf(w, "  vendor 0x%04x device 0x%04x driver 0x%08x; shaderInt64 %v; %d MiB device-local; storage buffer range %d MiB; shared memory %d KiB; workgroups %v\n",
			i.VendorID, i.DeviceID, i.DriverVersion, i.ShaderInt64, i.DeviceLocalBytes>>20, i.MaxStorageBufferRange>>20, i.MaxSharedMemory>>10, i.MaxWorkGroupCount)
		dot := fmt.Sprint(i.IntegerDotProduct)
		if i.IntegerDotAccelerated {
			dot = "accelerated" // the products' default path (spec/vulkan)
		}
		fmt.Fprintf(w, "  %d extensions; integer dot: %s; cooperative matrix %v\n", i.Extensions, dot, i.CooperativeMatrix)
	}
}

// vulkanImpl names the Vulkan rows by the products' path: packed 4×8-bit
// integer dot products, or plain int32 multiply-adds.
func vulkanImpl(dot bool) string {
	if dot {
		return "beluga vulkan int8 dot"
	}
	return "beluga vulkan int32"
}
