package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// GPTConfig is what `beluga bench train --model gpt` runs: the learning
// comparison (the integer GPT and the PyTorch float32 peer from the same
// initial weights on the same windows) and the step-time comparison.
type GPTConfig struct {
	Model       gpt.Config
	Steps       int // learning steps
	EvalEvery   int
	ValBytes    int
	EvalWindows int
	TimeSteps   int
	Warmup      int
	Threads     []int
	Python      string // empty: no peer
	Learn, Time bool
	// Corpus is the text; nil loads fortunes.
	Corpus []byte
	// Vulkan, when set, adds a step-time row for the Vulkan backend on that
	// device.
	Vulkan *vulkan.Device
	// Self is the beluga executable: each thread count's training also runs
	// as `Self train --example gpt` in a child process, whose peak memory is
	// the run's alone. Empty skips the memory measurement.
	Self string
}

// ExampleGPTModel is the built-in example's model and optimizer (SPEC.md
// §20; spec.ExampleGPT) for a run of steps steps: warm-up to 10^−3 over 30
// steps, then linear decay to 10^−4.
func ExampleGPTModel(steps int) gpt.Config {
	return gpt.Config{Context: 128, Dim: 128, Layers: 4, Heads: 4, FF: 512, Bits: 12, Batch: 16, Seed: 1,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16},
		WeightDecay: gpt.Ratio{Num: 6554, Shift: 16}, Eps: 1, LRShift: 39,
		LR: []gpt.LRPoint{{Step: 0, Value: 0}, {Step: 30, Value: 549755814}, {Step: int64(max(steps, 31)), Value: 54975581}}}
}

// DefaultGPTConfig is the example at 600 steps.
func DefaultGPTConfig() GPTConfig {
	return GPTConfig{Model: ExampleGPTModel(600), Steps: 600, EvalEvery: 100, ValBytes: 65536, EvalWindows: 64,
		TimeSteps: 10, Warmup: 2, Threads: []int{1, 2}, Python: "/usr/bin/python3", Learn: true, Time: true}
}

// GPTLearnRow is one evaluation point: validation bits per byte of both.
type GPTLearnRow struct {
	Step          int
	Beluga, Torch float64 // NaN when not measured
}

// GPTTimeRow is one step-time measurement.
type GPTTimeRow struct {
	Impl       string
	Threads    int
	MsPerStep  float64
	PeakRSSMiB float64 // 0 when not measured
}

// GPTResult is the whole comparison.
type GPTResult struct {
	Learn  []GPTLearnRow
	Time   []GPTTimeRow
	Torch  string
	BLAS   string
	Params int64
}

// gptData is the corpus and its windows.
type gptData struct {
	corpus []byte
	text   *dataset.Text
	nTrain int
	val    []int64
}

func loadGPTData(cfg GPTConfig) (*gptData, error) {
	corpus := cfg.Corpus
	if corpus == nil {
		var err error
		if corpus, err = dataset.LoadFortunes(dataset.FortunesDir); err != nil {
			return nil, err
		}
	}
	split, err := dataset.NewTextSplit(len(corpus), cfg.ValBytes, cfg.Model.Context)
	if err != nil {
		return nil, err
	}
	val := dataset.ValWindows(split.Train, cfg.ValBytes, cfg.Model.Context, cfg.EvalWindows)
	text, err := dataset.NewText(corpus)
	if err != nil {
		return nil, err
	}
	return &gptData{corpus: corpus, text: text, nTrain: split.Train, val: val}, nil
}

// gptValBPB returns the validation loss of st in bits per byte (SPEC.md
// §20.7), from the exact sum model.ValLoss computes (as a job's Eval).
func gptValBPB(tr *gpt.Trainer, st *gpt.State, d *gptData) (float64, error) {
	sum, n, err := model.ValLoss(tr, st, d.text, d.val)
	if err != nil {
		return 0, err
	}
	return float64(sum) / 65536 / float64(n) / math.Ln2, nil
}

// GPT runs the comparison.
func GPT(ctx context.Context, cfg GPTConfig) (*GPTResult, error) {
	c := cfg.Model
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d, err := loadGPTData(cfg)
	if err != nil {
		return nil, err
	}
	res := &GPTResult{Params: c.ParamCount()}
	if cfg.Learn {
		if err := gptLearn(ctx, cfg, d, res); err != nil {
			return nil, err
		}
	}
	if cfg.Time {
		if err := gptTime(ctx, cfg, d, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func gptLearn(ctx context.Context, cfg GPTConfig, d *gptData, res *GPTResult) error {
	c := cfg.Model
	st := c.Init()
	init := gptPeerInit(c, st)
	train := make([][]int64, cfg.Steps)
	for s := range train {
		train[s] = dataset.TrainWindows(c.Seed, int64(s), c.Batch, c.Context, d.nTrain, nil)
	}
	torch := map[int]float64{}
	if cfg.Python != "" {
		dir, err := os.MkdirTemp("", "beluga-gpt-peer-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		pc := gptPeerConfig(cfg, PeerModeLearn)
		if err := WriteGPTPeerDir(dir, pc, d.corpus, train, d.val, init); err != nil {
			return err
		}
		lines, err := RunGPTPeer(ctx, dir, WithPython(cfg.Python))
		if err != nil {
			return err
		}
		for _, l := range lines {
			if !l.IsTiming() {
				torch[l.Step] = l.ValBPB
			}
		}
	}
	tr, err := gpt.NewTrainer(c, kernel.Best(), 0)
	if err != nil {
		return err
	}
	for s := 0; ; s++ {
		if s%cfg.EvalEvery == 0 || s == cfg.Steps {
			v, err := gptValBPB(tr, st, d)
			if err != nil {
				return err
			}
			tv, ok := torch[s]
			if !ok {
				tv = math.NaN()
			}
			res.Learn = append(res.Learn, GPTLearnRow{Step: s, Beluga: v, Torch: tv})
		}
		if s == cfg.Steps {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := model.TextBatch(d.text, c, train[s])
		if err != nil {
			return err
		}
		if _, err := tr.Step(st, b); err != nil {
			return err
		}
	}
}

func gptPeerConfig(cfg GPTConfig, mode string) GPTPeerConfig {
	c := cfg.Model
	ratio := func(r gpt.Ratio) float64 { return float64(r.Num) / float64(int64(1)<<r.Shift) }
	var lr [][2]float64
	for _, k := range c.LR {
		lr = append(lr, [2]float64{float64(k.Step), math.Ldexp(float64(k.Value), -c.LRShift)})
	}
	steps := cfg.Steps
	if mode == PeerModeTime {
		steps = cfg.TimeSteps // the peer wraps around these windows for its warm-up
	}
	return GPTPeerConfig{Vocab: gpt.Vocab, Context: c.Context, DModel: c.Dim, Layers: c.Layers, Heads: c.Heads,
		DFF: c.FF, Batch: c.Batch, Steps: steps, LR: lr, Beta1: ratio(c.Beta1), Beta2: ratio(c.Beta2),
		Eps: math.Ldexp(float64(c.Eps), -gpt.VarFrac/2), WeightDecay: ratio(c.WeightDecay), Clip: 1,
		EvalEvery: max(cfg.EvalEvery, 1), Threads: cfg.Threads, WarmupSteps: cfg.Warmup, Mode: mode}
}

// gptPeerInit converts the integer initial weights to the float values they mean.
func gptPeerInit(c gpt.Config, st *gpt.State) []PeerTensor {
	var ts []PeerTensor
	for i, p := range c.Params() {
		v := make([]float32, len(st.W[i]))
		for j, w := range st.W[i] {
			v[j] = float32(math.Ldexp(float64(w), -gpt.MasterFrac))
		}
		ts = append(ts, PeerTensor{Name: p.Name, Shape: []int{p.Rows, p.In}, Values: v})
	}
	return ts
}

func gptTime(ctx context.Context, cfg GPTConfig, d *gptData, res *GPTResult) error {
	c := cfg.Model
	offs := make([][]int64, cfg.TimeSteps+cfg.Warmup)
	for s := range offs {
		offs[s] = dataset.TrainWindows(c.Seed, int64(s), c.Batch, c.Context, d.nTrain, nil)
	}
	for _, th := range cfg.Threads {
		ms, err := GPTStepMillis(ctx, c, d, offs, cfg.Warmup, th)
		if err != nil {
			return err
		}
		row := GPTTimeRow{Impl: "beluga " + kernel.Best().Name(), Threads: th, MsPerStep: ms}
		if cfg.Self != "" {
			if row.PeakRSSMiB, err = gptChildRSS(ctx, cfg.Self, cfg.TimeSteps+cfg.Warmup, th); err != nil {
				return err
			}
		}
		res.Time = append(res.Time, row)
	}
	if cfg.Vulkan != nil {
		ms, err := GPTVulkanStepMillis(ctx, cfg.Vulkan, c, d.text, offs, cfg.Warmup)
		if err != nil {
			return fmt.Errorf("vulkan: %w", err)
		}
		res.Time = append(res.Time, GPTTimeRow{Impl: "beluga vulkan " + cfg.Vulkan.Info().Name, MsPerStep: ms})
	}
	if cfg.Python == "" {
		return nil
	}
	dir, err := os.MkdirTemp("", "beluga-gpt-peer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pc := gptPeerConfig(cfg, PeerModeTime)
	if err := WriteGPTPeerDir(dir, pc, d.corpus, offs[:cfg.TimeSteps], d.val, gptPeerInit(c, c.Init())); err != nil {
		return err
	}
	lines, err := RunGPTPeer(ctx, dir, WithPython(cfg.Python))
	if err != nil {
		return err
	}
	for _, l := range lines {
		if l.IsTiming() {
			res.Time = append(res.Time, GPTTimeRow{Impl: "pytorch fp32", Threads: l.Threads, MsPerStep: l.StepMillis, PeakRSSMiB: l.PeakRSSMiB})
			res.Torch, res.BLAS = l.Torch, l.BLAS
		}
	}
	return nil
}

// GPTStepMillis times steps of c on offs after warmup steps, on threads
// threads, and returns the mean milliseconds per timed step.
func GPTStepMillis(ctx context.Context, c gpt.Config, d *gptData, offs [][]int64, warmup, threads int) (float64, error) {
	tr, err := gpt.NewTrainer(c, kernel.Best(), threads)
	if err != nil {
		return 0, err
	}
	st := c.Init()
	var start time.Time
	for s, o := range offs {
		if s == warmup {
			start = time.Now()
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		b, err := model.TextBatch(d.text, c, o)
		if err != nil {
			return 0, err
		}
		if _, err := tr.Step(st, b); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000 / float64(len(offs)-warmup), nil
}

// PrintGPT writes the comparison's tables.
func PrintGPT(w io.Writer, res *GPTResult, cfg GPTConfig) {
	c := cfg.Model
	fmt.Fprintf(w, "GPT %d layers, d_model %d, %d heads, d_ff %d, context %d, batch %d, %d-bit operands: %d parameters\n",
		c.Layers, c.Dim, c.Heads, c.FF, c.Context, c.Batch, c.Bits, res.Params)
	fmt.Fprintf(w, "machine: %s, %d CPUs; peer: torch %s, BLAS %s\n\n", cpuModel(), runtime.NumCPU(), res.Torch, res.BLAS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(res.Learn) > 0 {
		fmt.Fprintln(tw, "step\tbeluga val bpb\tpytorch fp32 val bpb\tbeluga / pytorch\t")
		for _, r := range res.Learn {
			fmt.Fprintf(tw, "%d\t%.4f\t%.4f\t%.4f\t\n", r.Step, r.Beluga, r.Torch, r.Beluga/r.Torch)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	if len(res.Time) > 0 {
		fmt.Fprintln(tw, "implementation\tthreads\tms/step\tpeak RSS MiB\t")
		for _, r := range res.Time {
			rss := "-"
			if r.PeakRSSMiB > 0 {
				rss = fmt.Sprintf("%.0f", r.PeakRSSMiB)
			}
			threads := "-" // a device's row
			if r.Threads > 0 {
				threads = strconv.Itoa(r.Threads)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t\n", r.Impl, threads, r.MsPerStep, rss)
		}
		tw.Flush()
	}
}

// gptChildRSS runs `self train --example gpt --steps steps` on threads
// threads of the CPU engine (--backend cpu: auto would take a GPU) in a
// child process and returns its peak resident memory in MiB.
func gptChildRSS(ctx context.Context, self string, steps, threads int) (float64, error) {
	cmd := exec.CommandContext(ctx, self, "train", "--example", "gpt", "--steps", strconv.Itoa(steps),
		"--threads", strconv.Itoa(threads), "--backend", "cpu", "--quiet", "--json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("measuring memory with %s train --example gpt: %w: %s", self, err, out.String())
	}
	return maxRSSMiB(cmd.ProcessState), nil
}
