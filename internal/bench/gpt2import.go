package bench

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/beluga-compute/beluga/internal/modelimport"
	"github.com/beluga-compute/beluga/internal/safetensors"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// torch_gpt2_import.py trains a float32 GPT-2 and writes its checkpoint
// and validation logits (see its header); `beluga bench import` runs it.
//
//go:embed torch_gpt2_import.py
var torchGPT2Script []byte

// ImportConfig is a fidelity measurement of the GPT-2 import (SPEC.md
// §22): a GPT-2-architecture model of these sizes trained in PyTorch for
// Seconds on the corpus's training bytes, imported, and both run on the
// validation windows (§20.6).
type ImportConfig struct {
	Context, Dim, Layers, Heads, FF int
	// Bits is the imported model's operand bits.
	Bits int
	// Seconds of PyTorch training; Batch windows per step at LR.
	Seconds, Batch int
	LR             float64
	Seed           int64
	// Threads for the integer forward passes (0: all) and for PyTorch
	// (TorchThreads, default 1: PyTorch's fastest on the 2-core VM of
	// BENCHMARKS.md, where two threads spin on OpenBLAS barriers).
	Threads, TorchThreads int
	// Corpus is the text (nil: the fortunes corpus); ValBytes and
	// EvalWindows its validation split (§20.4, §20.6).
	Corpus                []byte
	ValBytes, EvalWindows int
	// Dir keeps the checkpoint and logits ("" : a temporary directory).
	Dir string
	// Reuse compares again the checkpoint and logits a previous run kept
	// in Dir (same sizes, corpus and windows), without training: e.g. at
	// other Bits.
	Reuse bool
	// Python is the interpreter ("" : /usr/bin/python3, then python3).
	Python string
}

// DefaultImportConfig is the measurement BENCHMARKS.md records: 4 layers,
// width 128, 4 heads, MLP 512, context 128, 12-bit operands, a minute of
// training, 64 validation windows of the fortunes corpus.
func DefaultImportConfig() ImportConfig {
	return ImportConfig{Context: 128, Dim: 128, Layers: 4, Heads: 4, FF: 512, Bits: 12, Seconds: 60, Batch: 16, LR: 3e-3, Seed: 1,
		ValBytes: 65536, EvalWindows: 64}
}

// ImportResult is the comparison of the float32 model and its import.
type ImportResult struct {
	Config ImportConfig `json:"-"`
	// Positions compared (windows × context).
	Positions int `json:"positions"`
	// Top1Agreement is the fraction of positions where both models'
	// likeliest next byte is the same.
	Top1Agreement float64 `json:"top1_agreement"`
	// MeanKL is the mean over positions of KL(float ‖ integer) in nats;
	// MaxKL the largest.
	MeanKL float64 `json:"mean_kl_nats"`
	MaxKL  float64 `json:"max_kl_nats"`
	// FloatBPB and IntBPB are the validation bits per byte of each.
	FloatBPB float64 `json:"float_bpb"`
	IntBPB   float64 `json:"int_bpb"`
	// TrainSteps and TrainSeconds describe the PyTorch training.
	TrainSteps   int     `json:"train_steps"`
	TrainSeconds float64 `json:"train_seconds"`
	// Digest is the imported model's digest; ForwardMillis the integer
	// forward pass per window.
	Digest        string  `json:"digest"`
	ForwardMillis float64 `json:"forward_ms_per_window"`
	Torch         string  `json:"torch"`
	Dir           string  `json:"dir,omitempty"`
}

// RunImport trains the float model in PyTorch, imports it and compares the
// two on the validation windows. Missing Python or torch give ErrNoPython
// or ErrNoTorch.
func RunImport(ctx context.Context, c ImportConfig) (*ImportResult, error) {
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	corpus := c.Corpus
	if corpus == nil {
		var err error
		if corpus, err = dataset.LoadFortunes(dataset.FortunesDir); err != nil {
			return nil, err
		}
	}
	split, err := dataset.NewTextSplit(len(corpus), c.ValBytes, c.Context)
	if err != nil {
		return nil, err
	}
	val := dataset.ValWindows(split.Train, split.Val, c.Context, c.EvalWindows)
	if len(val) == 0 {
		return nil, errors.New("bench import: no validation windows")
	}
	dir := c.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "beluga-import-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	job, _ := json.Marshal(map[string]any{"context": c.Context, "dim": c.Dim, "layers": c.Layers, "heads": c.Heads, "ff": c.FF,
		"seconds": c.Seconds, "seed": c.Seed, "batch": c.Batch, "lr": c.LR, "n_train": split.Train, "threads": max(1, c.TorchThreads)})
	offs := make([]byte, 0, 8*len(val))
	for _, o := range val {
		offs = binary.LittleEndian.AppendUint64(offs, uint64(o))
	}
	for name, b := range map[string][]byte{"job.json": job, "corpus.bin": corpus, "val_offsets.bin": offs, "torch_gpt2_import.py": torchGPT2Script} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	line := &importLine{}
	if c.Reuse {
		if c.Dir == "" {
			return nil, errors.New("bench import: reuse needs the directory a previous run kept")
		}
		b, err := os.ReadFile(filepath.Join(dir, "train.json"))
		if err != nil {
			return nil, fmt.Errorf("bench import: nothing to reuse in %s: %w", dir, err)
		}
		if err := json.Unmarshal(b, line); err != nil {
			return nil, fmt.Errorf("bench import: %s/train.json: %w", dir, err)
		}
	} else {
		if line, err = runImportScript(ctx, c.Python, dir); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(line)
		if err := os.WriteFile(filepath.Join(dir, "train.json"), b, 0o644); err != nil {
			return nil, err
		}
	}
	res := &ImportResult{Config: c, TrainSteps: line.Steps, TrainSeconds: line.TrainSeconds, Torch: line.Torch}
	if c.Dir != "" {
		res.Dir = c.Dir
	}
	raw, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Parse(raw)
	if err != nil {
		return nil, err
	}
	cj, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	hc, err := modelimport.ParseConfig(cj)
	if err != nil {
		return nil, err
	}
	m, err := modelimport.Import(f, hc, modelimport.Options{Bits: c.Bits, Name: "bench-import"})
	if err != nil {
		return nil, err
	}
	ref, err := os.ReadFile(filepath.Join(dir, "reference.bin"))
	if err != nil {
		return nil, err
	}
	if len(ref) != 4*len(val)*c.Context*gpt.Vocab {
		return nil, fmt.Errorf("bench import: reference.bin holds %d bytes, want %d", len(ref), 4*len(val)*c.Context*gpt.Vocab)
	}
	reference := make([]float64, len(ref)/4)
	for i := range reference {
		reference[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(ref[4*i:])))
	}
	if err := Compare(res, m, corpus, val, reference, c.Threads); err != nil {
		return nil, err
	}
	run := filepath.Join(dir, "run")
	if c.Reuse {
		run = filepath.Join(dir, fmt.Sprintf("run-%dbits", c.Bits))
		if err := os.RemoveAll(run); err != nil {
			return nil, err
		}
	}
	rm, err := modelimport.Write(ctx, run, m)
	if err != nil {
		return nil, err
	}
	res.Digest = fmt.Sprintf("%x", rm.Digest)
	return res, nil
}

// Compare runs the integer model m on each window (T + 1 bytes of corpus
// from each start in val) and compares it with the float logits reference
// ([windows, T, 256], row-major): top-1 agreement, KL(float ‖ integer) and
// both models' bits per byte, into res.
func Compare(res *ImportResult, m *modelimport.Model, corpus []byte, val []int64, reference []float64, threads int) error {
	T := m.Config.Context
	g, err := gpt.NewGenerator(m.Config, m.State, kernel.Best(), threads)
	if err != nil {
		return err
	}
	var agree, n int
	var kl, maxKL, fNLL, iNLL float64
	zi := make([]float64, gpt.Vocab)
	start := time.Now()
	for k, s := range val {
		w := corpus[s : s+int64(T)+1]
		err := g.Positions(w[:T], 0, func(r int, z []int64, e int) error {
			for c, v := range z {
				zi[c] = math.Ldexp(float64(v), e)
			}
			zf := reference[(k*T+r)*gpt.Vocab:][:gpt.Vocab]
			if argmax(zf) == argmax(zi) {
				agree++
			}
			d := klNats(zf, zi)
			kl += d
			maxKL = max(maxKL, d)
			y := int(w[r+1])
			fNLL += logSumExp(zf) - zf[y]
			iNLL += logSumExp(zi) - zi[y]
			n++
			return nil
		})
		if err != nil {
			return err
		}
	}
	res.ForwardMillis = float64(time.Since(start).Milliseconds()) / float64(len(val))
	res.Positions = n
	res.Top1Agreement = float64(agree) / float64(n)
	res.MeanKL, res.MaxKL = kl/float64(n), maxKL
	res.FloatBPB, res.IntBPB = fNLL/float64(n)/math.Ln2, iNLL/float64(n)/math.Ln2
	return nil
}

func argmax(z []float64) int {
	k := 0
	for i, v := range z {
		if v > z[k] {
			k = i
		}
	}
	return k
}

func logSumExp(z []float64) float64 {
	m := z[argmax(z)]
	var s float64
	for _, v := range z {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// klNats is KL(softmax(p) ‖ softmax(q)) in nats.
func klNats(p, q []float64) float64 {
	lp, lq := logSumExp(p), logSumExp(q)
	var kl float64
	for i := range p {
		a := p[i] - lp
		kl += math.Exp(a) * (a - (q[i] - lq))
	}
	return max(kl, 0)
}

type importLine struct {
	Steps        int     `json:"steps"`
	TrainSeconds float64 `json:"train_seconds"`
	Torch        string  `json:"torch"`
}

// runImportScript runs the script in dir with the first Python that
// imports torch.
func runImportScript(ctx context.Context, python, dir string) (*importLine, error) {
	pythons := pythonCandidates(peerOptions{python: python})
	if len(pythons) == 0 {
		return nil, ErrNoPython
	}
	for _, py := range pythons {
		cmd := exec.CommandContext(ctx, py, filepath.Join(dir, "torch_gpt2_import.py"), dir)
		var stdout bytes.Buffer
		stderr := &tailBuffer{max: 8 << 10}
		cmd.Stdout, cmd.Stderr = &stdout, stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == noTorchExit {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bench import: %s: %v: %s", py, err, strings.TrimSpace(stderr.String()))
		}
		sc := bufio.NewScanner(&stdout)
		var line importLine
		for sc.Scan() {
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				return nil, fmt.Errorf("bench import: the script printed %q: %v", sc.Text(), err)
			}
		}
		return &line, nil
	}
	return nil, fmt.Errorf("tried %s: %w", strings.Join(pythons, ", "), ErrNoTorch)
}
