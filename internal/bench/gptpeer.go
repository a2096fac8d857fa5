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
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// torch_gpt.py is the float32 GPT of the design (see its header), run by
// RunGPTPeer; `--selftest` checks its math in float64.
//
//go:embed torch_gpt.py
var torchGPTScript []byte

// Peer modes of GPTPeerConfig.Mode.
const (
	// PeerModeLearn trains Steps steps on the first thread count and prints
	// the validation loss every EvalEvery steps.
	PeerModeLearn = "learn"
	// PeerModeTime times Steps steps after WarmupSteps, once per thread
	// count, each in a fresh process (so each peak RSS is its own).
	PeerModeTime = "time"
)

// Errors of RunGPTPeer that a caller may want to tell apart (errors.Is).
var (
	// ErrNoPython: no python3 executable was found.
	ErrNoPython = errors.New("no python3 found (install Debian python3, python3-torch and libopenblas0-pthread)")
	// ErrNoTorch: python3 runs but cannot import torch.
	ErrNoTorch = errors.New("python3 cannot import torch (install Debian python3-torch and libopenblas0-pthread)")
)

// GPTPeerConfig is config.json of the peer directory: the GPT's shape, the
// optimizer, and what to run.
type GPTPeerConfig struct {
	Vocab   int `json:"vocab"`   // 256: one token per byte
	Context int `json:"context"` // T
	DModel  int `json:"d_model"` // D
	Layers  int `json:"layers"`  // L
	Heads   int `json:"heads"`   // H; D must be a multiple of H
	DFF     int `json:"d_ff"`    // F
	Batch   int `json:"batch"`   // B
	Steps   int `json:"steps"`   // S: rows of the training offsets
	// LR is the schedule's knots [step, value], steps increasing: linear
	// between knots, constant outside them; step t (from 0) uses lr(t).
	LR          [][2]float64 `json:"lr"`
	Beta1       float64      `json:"beta1"`
	Beta2       float64      `json:"beta2"`
	Eps         float64      `json:"eps"` // added to sqrt(v)
	WeightDecay float64      `json:"weight_decay"`
	Clip        float64      `json:"clip"`       // global gradient-norm bound
	EvalEvery   int          `json:"eval_every"` // learn mode
	Threads     []int        `json:"threads"`    // learn mode uses the first
	WarmupSteps int          `json:"warmup_steps"`
	Mode        string       `json:"mode"` // PeerModeLearn or PeerModeTime
}

// PeerTensor is one parameter: Values in row-major order of Shape.
type PeerTensor struct {
	Name   string
	Shape  []int
	Values []float32
}

// PeerLine is one line the peer prints: a learn-mode evaluation (Step,
// ValBPB, TrainLossBPB) or a time-mode measurement (Threads > 0 and the
// fields after it).
type PeerLine struct {
	// Step is the number of training steps taken (0: the initial weights).
	Step int `json:"step"`
	// ValBPB is the mean cross-entropy over every validation position, in bits.
	ValBPB float64 `json:"val_bpb"`
	// TrainLossBPB is the mean training loss of the steps since the previous
	// line, before each step's update (at step 0: batch 0 at the initial weights).
	TrainLossBPB float64 `json:"train_loss_bpb"`

	Threads    int     `json:"threads"`
	StepMillis float64 `json:"ms_per_step"`
	// PeakRSSMiB is the timing process's peak resident memory; BaseRSSMiB
	// its peak before the model was built (Python, torch and the data).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	BaseRSSMiB float64 `json:"base_rss_mib"`
	Torch      string  `json:"torch"`
	BLAS       string  `json:"blas"` // the BLAS library mapped, resolved
}

// IsTiming reports whether l is a time-mode line.
func (l PeerLine) IsTiming() bool { return l.Threads > 0 }

// GPTPeerShapes lists the parameters of cfg's GPT in the design's state
// order, with nil Values: the order and shapes WriteGPTPeerDir requires.
func GPTPeerShapes(cfg GPTPeerConfig) []PeerTensor {
	V, T, D, F := cfg.Vocab, cfg.Context, cfg.DModel, cfg.DFF
	ts := []PeerTensor{{Name: "tok_emb", Shape: []int{V, D}}, {Name: "pos_emb", Shape: []int{T, D}}}
	for l := range cfg.Layers {
		p := "blocks." + strconv.Itoa(l) + "."
		ts = append(ts,
			PeerTensor{Name: p + "attn.qkv", Shape: []int{3 * D, D}},
			PeerTensor{Name: p + "attn.out", Shape: []int{D, D}},
			PeerTensor{Name: p + "mlp.up", Shape: []int{F, D}},
			PeerTensor{Name: p + "mlp.down", Shape: []int{D, F}})
	}
	return append(ts, PeerTensor{Name: "head", Shape: []int{V, D}})
}

func (c GPTPeerConfig) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"context", c.Context}, {"d_model", c.DModel}, {"layers", c.Layers}, {"heads", c.Heads},
		{"d_ff", c.DFF}, {"batch", c.Batch}, {"steps", c.Steps}} {
		if f.v < 1 {
			return fmt.Errorf("%s is %d, want at least 1", f.name, f.v)
		}
	}
	switch {
	case c.Vocab != 256:
		return fmt.Errorf("vocab is %d, want 256 (one token per byte)", c.Vocab)
	case c.DModel%c.Heads != 0:
		return fmt.Errorf("d_model %d is not a multiple of heads %d", c.DModel, c.Heads)
	case !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("betas %g, %g: want each in [0, 1)", c.Beta1, c.Beta2)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("eps %g: want > 0", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight decay %g: want >= 0", c.WeightDecay)
	case !(c.Clip > 0) || math.IsInf(c.Clip, 0):
		return fmt.Errorf("clip %g: want > 0", c.Clip)
	case c.Mode != PeerModeLearn && c.Mode != PeerModeTime:
		return fmt.Errorf("mode %q: want %q or %q", c.Mode, PeerModeLearn, PeerModeTime)
	case c.Mode == PeerModeLearn && c.EvalEvery < 1:
		return fmt.Errorf("eval_every is %d, want at least 1", c.EvalEvery)
	case c.WarmupSteps < 0:
		return fmt.Errorf("warmup_steps is %d, want >= 0", c.WarmupSteps)
	case len(c.Threads) == 0:
		return errors.New("no thread counts")
	case len(c.LR) == 0:
		return errors.New("no learning-rate knots")
	}
	for _, t := range c.Threads {
		if t < 1 {
			return fmt.Errorf("thread count %d, want at least 1", t)
		}
	}
	for i, k := range c.LR {
		if math.IsNaN(k[0]) || math.IsInf(k[0], 0) || !(k[1] >= 0) || math.IsInf(k[1], 0) {
			return fmt.Errorf("learning-rate knot %d (%g, %g): want a finite step and a finite value >= 0", i, k[0], k[1])
		}
		if i > 0 && !(k[0] > c.LR[i-1][0]) {
			return fmt.Errorf("learning-rate knot %d at step %g does not follow step %g", i, k[0], c.LR[i-1][0])
		}
	}
	return nil
}

// WriteGPTPeerDir writes the peer's inputs to dir (created if absent):
// config.json, corpus.bin, train_offsets.bin (train[t][b] is the start of
// step t's window b), val_offsets.bin, init.bin and init.json. Every window
// is Context+1 bytes of corpus; init must follow GPTPeerShapes(cfg). It
// checks everything before writing anything.
func WriteGPTPeerDir(dir string, cfg GPTPeerConfig, corpus []byte, train [][]int64, val []int64, init []PeerTensor) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("GPT peer config: %w", err)
	}
	last := int64(len(corpus)) - int64(cfg.Context) - 1 // the last valid window start
	if last < 0 {
		return fmt.Errorf("GPT peer: corpus of %d bytes is shorter than one %d-byte window", len(corpus), cfg.Context+1)
	}
	if len(train) != cfg.Steps {
		return fmt.Errorf("GPT peer: %d rows of training offsets, want steps = %d", len(train), cfg.Steps)
	}
	trainBin := make([]byte, 0, 8*cfg.Steps*cfg.Batch)
	for t, row := range train {
		if len(row) != cfg.Batch {
			return fmt.Errorf("GPT peer: step %d has %d training offsets, want batch = %d", t, len(row), cfg.Batch)
		}
		for b, o := range row {
			if o < 0 || o > last {
				return fmt.Errorf("GPT peer: step %d window %d starts at %d, outside [0, %d]", t, b, o, last)
			}
			trainBin = binary.LittleEndian.AppendUint64(trainBin, uint64(o))
		}
	}
	if len(val) == 0 {
		return errors.New("GPT peer: no validation windows")
	}
	valBin := make([]byte, 0, 8*len(val))
	for k, o := range val {
		if o < 0 || o > last {
			return fmt.Errorf("GPT peer: validation window %d starts at %d, outside [0, %d]", k, o, last)
		}
		valBin = binary.LittleEndian.AppendUint64(valBin, uint64(o))
	}
	want := GPTPeerShapes(cfg)
	if len(init) != len(want) {
		return fmt.Errorf("GPT peer: %d initial tensors, want %d", len(init), len(want))
	}
	type entry struct {
		Name  string `json:"name"`
		Shape []int  `json:"shape"`
	}
	var initBin []byte
	index := make([]entry, len(init))
	for i, p := range init {
		if p.Name != want[i].Name || !slices.Equal(p.Shape, want[i].Shape) {
			return fmt.Errorf("GPT peer: initial tensor %d is %s %v, want %s %v", i, p.Name, p.Shape, want[i].Name, want[i].Shape)
		}
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		if len(p.Values) != n {
			return fmt.Errorf("GPT peer: initial tensor %s holds %d values, want %d", p.Name, len(p.Values), n)
		}
		for _, v := range p.Values {
			initBin = binary.LittleEndian.AppendUint32(initBin, math.Float32bits(v))
		}
		index[i] = entry{p.Name, p.Shape}
	}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("GPT peer config: %w", err)
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("GPT peer init index: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("GPT peer directory: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"config.json", cfgJSON}, {"corpus.bin", corpus}, {"train_offsets.bin", trainBin},
		{"val_offsets.bin", valBin}, {"init.bin", initBin}, {"init.json", indexJSON}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("GPT peer: write %s: %w", f.name, err)
		}
	}
	return nil
}

// PeerOption adjusts RunGPTPeer.
type PeerOption func(*peerOptions)

type peerOptions struct {
	python string
	onLine func(PeerLine)
}

// debianPython is where Debian's python3-torch is importable.
const debianPython = "/usr/bin/python3"

// WithPython runs the peer with this Python only. By default RunGPTPeer
// tries /usr/bin/python3 (Debian's, where python3-torch installs), then
// python3 on $PATH, and uses the first that imports torch.
func WithPython(path string) PeerOption { return func(o *peerOptions) { o.python = path } }

// WithPeerLines calls f with each line as the peer prints it (progress for
// a long learn run); RunGPTPeer still returns them all.
func WithPeerLines(f func(PeerLine)) PeerOption { return func(o *peerOptions) { o.onLine = f } }

// pythonCandidates lists the interpreters RunGPTPeer tries, in order.
func pythonCandidates(o peerOptions) []string {
	if o.python != "" {
		return []string{o.python}
	}
	var ps []string
	if _, err := os.Stat(debianPython); err == nil {
		ps = append(ps, debianPython)
	}
	if p, err := exec.LookPath("python3"); err == nil && p != debianPython {
		ps = append(ps, p)
	}
	return ps
}

// noTorchExit is the script's exit status when torch cannot be imported.
const noTorchExit = 3

// RunGPTPeer writes torch_gpt.py into dir (prepared by WriteGPTPeerDir),
// runs it and returns its lines: one per evaluation in learn mode, one per
// thread count in time mode. Missing Python or torch give ErrNoPython or
// ErrNoTorch.
func RunGPTPeer(ctx context.Context, dir string, opts ...PeerOption) ([]PeerLine, error) {
	var o peerOptions
	for _, opt := range opts {
		opt(&o)
	}
	script := filepath.Join(dir, "torch_gpt.py")
	if err := os.WriteFile(script, torchGPTScript, 0o644); err != nil {
		return nil, fmt.Errorf("GPT peer: %w", err)
	}
	pythons := pythonCandidates(o)
	if len(pythons) == 0 {
		return nil, ErrNoPython
	}
	for _, py := range pythons {
		lines, err := runPeerScript(ctx, py, script, dir, o.onLine)
		if errors.Is(err, ErrNoTorch) {
			continue
		}
		return lines, err
	}
	return nil, fmt.Errorf("tried %s: %w", strings.Join(pythons, ", "), ErrNoTorch)
}

func runPeerScript(ctx context.Context, python, script, dir string, onLine func(PeerLine)) ([]PeerLine, error) {
	cmd := exec.CommandContext(ctx, python, script, dir)
	cmd.WaitDelay = 5 * time.Second // a cancelled run's timing child may hold stderr open
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("GPT peer: %w", err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", python, ErrNoPython)
		}
		return nil, fmt.Errorf("GPT peer: start %s: %w", python, err)
	}
	var lines []PeerLine
	var parseErr error
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if parseErr != nil {
			continue // drain so the script is not blocked on a full pipe
		}
		l, err := parsePeerLine(sc.Bytes())
		if err != nil {
			parseErr = err
			continue
		}
		lines = append(lines, l)
		if onLine != nil {
			onLine(l)
		}
	}
	scanErr := sc.Err()
	if scanErr != nil {
		_, _ = io.Copy(io.Discard, stdout)
	}
	waitErr := cmd.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("GPT peer: %w", err)
	}
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) && exit.ExitCode() == noTorchExit {
		return nil, fmt.Errorf("%s: %w", python, ErrNoTorch)
	}
	if waitErr != nil {
		return nil, fmt.Errorf("GPT peer (%s): %v: %s", python, waitErr, strings.TrimSpace(stderr.String()))
	}
	if parseErr != nil {
		return nil, parseErr
	}
	if scanErr != nil {
		return nil, fmt.Errorf("GPT peer output: %w", scanErr)
	}
	if len(lines) == 0 {
		return nil, errors.New("GPT peer printed nothing")
	}
	return lines, nil
}

// parsePeerLine decodes one output line, which must be a learn-mode line
// (step, val_bpb) or a time-mode line (threads, ms_per_step) with finite numbers.
func parsePeerLine(b []byte) (PeerLine, error) {
	var raw map[string]json.RawMessage
	var l PeerLine
	if err := json.Unmarshal(b, &raw); err != nil {
		return l, fmt.Errorf("bad GPT peer output %q: %w", b, err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("bad GPT peer output %q: %w", b, err)
	}
	_, hasStep := raw["step"]
	_, hasVal := raw["val_bpb"]
	_, hasThreads := raw["threads"]
	_, hasMillis := raw["ms_per_step"]
	finite := func(fs ...float64) bool {
		for _, f := range fs {
			if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
				return false
			}
		}
		return true
	}
	switch {
	case hasThreads && hasMillis && l.Threads > 0 && finite(l.StepMillis, l.PeakRSSMiB, l.BaseRSSMiB):
		return l, nil
	case hasStep && hasVal && !hasThreads && l.Step >= 0 && finite(l.ValBPB, l.TrainLossBPB):
		return l, nil
	}
	return l, fmt.Errorf("bad GPT peer output %q: neither an evaluation (step, val_bpb) nor a timing (threads, ms_per_step)", b)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
