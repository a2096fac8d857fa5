// Package bench measures Beluga against its named peers in one run and
// prints tables for BENCHMARKS.md. `beluga bench train` compares the integer
// engine with PyTorch float32 on the CPU for the reference MLP.
package bench

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/spectest"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

//go:embed torch_mlp.py
var torchScript string

// TrainConfig sets up `beluga bench train`.
type TrainConfig struct {
	Steps, Warmup, Repeats int
	Batch                  int
	Threads                []int
	Kernels                []kernel.Kernel
	// Python runs the PyTorch peer; empty skips it.
	Python string
	// Vulkan, when set, adds a row for the Vulkan backend on that device
	// (spec/vulkan; --backend vulkan or auto with a GPU).
	Vulkan *vulkan.Device
}

// DefaultTrainConfig measures batch 64 on 1 and 2 threads against Debian's
// python3-torch.
func DefaultTrainConfig() TrainConfig {
	ks := []kernel.Kernel{kernel.Best()}
	if ks[0].Name() != kernel.Generic().Name() {
		ks = append(ks, kernel.Generic())
	}
	return TrainConfig{Steps: 300, Warmup: 30, Repeats: 3, Batch: 64, Threads: []int{1, 2}, Kernels: ks, Python: "/usr/bin/python3"}
}

// Row is one measured configuration.
type Row struct {
	Impl       string
	Threads    int
	StepMillis float64
	GMACs      float64
	Note       string
}

// MLPSpec is the reference model, MLP 784-256-128-10 (spectest.MLP). At
// batches whose gradient sums could overflow int32 with the default
// formats (SPEC.md §10; batch 8192) it narrows the gradients, then the
// activations, until the spec is valid: the same work at the same speed,
// and NarrowedNote says what changed.
func MLPSpec(batch int) (*spec.Spec, error) {
	s, err := spectest.MLP(batch)
	for err != nil && errors.Is(err, spec.ErrOverflow) && s.Numeric.ActBits > 4 {
		if s.Numeric.GradBits > 10 {
			s.Numeric.GradBits--
		} else {
			s.Numeric.ActBits--
		}
		err = s.Validate()
	}
	return s, err
}

// NarrowedNote describes how MLPSpec narrowed s's formats, or "".
func NarrowedNote(s *spec.Spec) string {
	if s.Numeric == spectest.DefaultNumeric {
		return ""
	}
	return fmt.Sprintf("grad_bits %d, act_bits %d (int32 sums at batch %d)", s.Numeric.GradBits, s.Numeric.ActBits, s.BatchSize)
}

// MACs counts the multiply-accumulates of one training step of s: the
// forward pass, the weight gradients, and the input gradients of every layer
// but the first (PyTorch skips that one too: the input needs no gradient).
func MACs(s *spec.Spec) int64 {
	var n int64
	for _, l := range s.Plan().Linear {
		m := int64(l.In) * int64(l.Out) * int64(s.BatchSize)
		n += 2 * m
		if !l.First {
			n += m
		}
	}
	return n
}

// Train measures every kernel and thread count of cfg and the PyTorch peer.
func Train(ctx context.Context, cfg TrainConfig) ([]Row, error) {
	s, err := MLPSpec(cfg.Batch)
	if err != nil {
		return nil, err
	}
	ds, err := dataset.Synthetic(1, s.Data.Train.Count, 784, 10)
	if err != nil {
		return nil, err
	}
	macs := MACs(s)
	var rows []Row
	for _, k := range cfg.Kernels {
		for _, t := range cfg.Threads {
			ms, err := timeEngine(ctx, s, ds, k, t, cfg)
			if err != nil {
				return nil, err
			}
			rows = append(rows, Row{Impl: "beluga int16/int32 (" + k.Name() + ")", Threads: t, StepMillis: ms, GMACs: float64(macs) / ms / 1e6})
		}
	}
	if cfg.Vulkan != nil {
		v, err := vulkan.New(s, s.Init(), vulkan.WithDevice(cfg.Vulkan))
		if err != nil {
			return nil, err
		}
		ms, err := timeSteps(ctx, s, ds, v.Step, v.Steps, VulkanConfig{Steps: cfg.Steps, Warmup: cfg.Warmup, Repeats: cfg.Repeats})
		impl := vulkanImpl(v.IntegerDot())
		v.Close()
		if err != nil {
			return nil, err
		}
		rows = append(rows, Row{Impl: impl + " (" + cfg.Vulkan.Info().Name + ")", StepMillis: ms, GMACs: float64(macs) / ms / 1e6})
	}
	if cfg.Python != "" {
		peer, err := timeTorch(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("PyTorch peer (install python3-torch and libopenblas0-pthread, or pass --no-peer): %w", err)
		}
		for i := range peer {
			peer[i].GMACs = float64(macs) / peer[i].StepMillis / 1e6
		}
		rows = append(rows, peer...)
	}
	return rows, nil
}

// timeEngine returns the best of cfg.Repeats timings of cfg.Steps steps, in
// milliseconds per step.
func timeEngine(ctx context.Context, s *spec.Spec, ds *dataset.Dataset, k kernel.Kernel, threads int, cfg TrainConfig) (float64, error) {
	e, err := engine.New(s, s.Init(), engine.WithKernel(k), engine.WithThreads(threads))
	if err != nil {
		return 0, err
	}
	batches := engine.NewBatcher(s, ds)
	step := func() error {
		_, err := e.Step(batches.Batch(e.State().Step))
		return err
	}
	for range cfg.Warmup {
		if err := step(); err != nil {
			return 0, err
		}
	}
	best := time.Duration(1<<63 - 1)
	for range max(1, cfg.Repeats) {
		start := time.Now()
		for range cfg.Steps {
			if err := step(); err != nil {
				return 0, err
			}
		}
		best = min(best, time.Since(start))
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return float64(best.Microseconds()) / 1e3 / float64(cfg.Steps), nil
}

type torchResult struct {
	Threads    int     `json:"threads"`
	StepMillis float64 `json:"ms_per_step"`
	Torch      string  `json:"torch"`
	BLAS       string  `json:"blas"`
}

func timeTorch(ctx context.Context, cfg TrainConfig) ([]Row, error) {
	threads := make([]string, len(cfg.Threads))
	for i, t := range cfg.Threads {
		threads[i] = strconv.Itoa(t)
	}
	best := map[int]torchResult{}
	for range max(1, cfg.Repeats) {
		cmd := exec.CommandContext(ctx, cfg.Python, "-c", torchScript,
			strconv.Itoa(cfg.Steps), strconv.Itoa(cfg.Batch), strconv.Itoa(cfg.Warmup), strings.Join(threads, ","))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var r torchResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return nil, fmt.Errorf("bad peer output %q: %w", sc.Text(), err)
			}
			if prev, ok := best[r.Threads]; !ok || r.StepMillis < prev.StepMillis {
				best[r.Threads] = r
			}
		}
	}
	var rows []Row
	for _, t := range cfg.Threads {
		r, ok := best[t]
		if !ok {
			return nil, errors.New("peer printed no result for " + strconv.Itoa(t) + " threads")
		}
		note := "BLAS " + r.BLAS
		if !strings.Contains(r.BLAS, "openblas") {
			note += " (not OpenBLAS: apt-get install libopenblas0-pthread)"
		}
		rows = append(rows, Row{Impl: "pytorch " + r.Torch + " float32", Threads: t, StepMillis: r.StepMillis, Note: note})
	}
	return rows, nil
}

// PrintTrain writes the table with every row's speed relative to the best
// PyTorch row (>1 means faster than PyTorch).
func PrintTrain(w io.Writer, rows []Row, cfg TrainConfig) {
	fmt.Fprintf(w, "MLP 784-256-128-10, batch %d, %d steps (best of %d) — %s, %d cores, %s/%s\n\n",
		cfg.Batch, cfg.Steps, max(1, cfg.Repeats), cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	peerBest := 0.0
	for _, r := range rows {
		if strings.HasPrefix(r.Impl, "pytorch") && (peerBest == 0 || r.StepMillis < peerBest) {
			peerBest = r.StepMillis
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "implementation\tthreads\tms/step\tGMAC/s\tspeed vs best PyTorch\tnote")
	for _, r := range rows {
		ratio := "-"
		if peerBest > 0 {
			ratio = fmt.Sprintf("%.2f×", peerBest/r.StepMillis)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.1f\t%s\t%s\n", r.Impl, r.Threads, r.StepMillis, r.GMACs, ratio, r.Note)
	}
	tw.Flush()
}

// cpuModel returns the CPU's model name on Linux, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown CPU"
}
