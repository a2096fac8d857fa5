package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec/spectest"
)

// tinyGPT is the test's peer setup: a 2-layer GPT small enough to train 30
// steps in well under a second.
func tinyGPT(t *testing.T, mode string) (GPTPeerConfig, []byte, [][]int64, []int64, []PeerTensor) {
	t.Helper()
	cfg := GPTPeerConfig{Vocab: 256, Context: 16, DModel: 32, Layers: 2, Heads: 2, DFF: 64, Batch: 4, Steps: 30,
		LR: [][2]float64{{0, 0}, {5, 3e-3}, {30, 1e-3}}, Beta1: 58982.0 / 65536, Beta2: 62259.0 / 65536,
		Eps: math.Ldexp(1, -22), WeightDecay: 0.1, Clip: 1, EvalEvery: 10, Threads: []int{1, 2}, WarmupSteps: 1, Mode: mode}
	sentences := []string{"The quick brown fox jumps over the lazy dog. ", "A stitch in time saves nine. ",
		"All that glitters is not gold. ", "Where there is smoke there is fire. "}
	rng := rand.New(rand.NewPCG(1, 2))
	var corpus []byte
	for len(corpus) < 8192 {
		corpus = append(corpus, sentences[rng.IntN(len(sentences))]...)
	}
	nTrain := int64(len(corpus) - 1024)
	train := make([][]int64, cfg.Steps)
	for s := range train {
		train[s] = make([]int64, cfg.Batch)
		for b := range train[s] {
			train[s][b] = rng.Int64N(nTrain - int64(cfg.Context))
		}
	}
	var val []int64
	for o := nTrain; o+int64(cfg.Context)+1 <= int64(len(corpus)); o += int64(cfg.Context) {
		val = append(val, o)
	}
	init := GPTPeerShapes(cfg)
	for i := range init {
		bound := 0.0346 // embeddings
		if strings.HasPrefix(init[i].Name, "blocks.") || init[i].Name == "head" {
			bound = 1 / math.Sqrt(float64(init[i].Shape[1])) // nn.Linear's default: ±1/sqrt(in)
		}
		n := init[i].Shape[0] * init[i].Shape[1]
		init[i].Values = make([]float32, n)
		for j := range init[i].Values {
			init[i].Values[j] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	return cfg, corpus, train, val, init
}

// runTiny runs the tiny peer in mode, skipping when no python3 with torch is here.
func runTiny(t *testing.T, mode string) []PeerLine {
	t.Helper()
	cfg, corpus, train, val, init := tinyGPT(t, mode)
	dir := t.TempDir()
	if err := WriteGPTPeerDir(dir, cfg, corpus, train, val, init); err != nil {
		t.Fatal(err)
	}
	lines, err := RunGPTPeer(context.Background(), dir)
	if errors.Is(err, ErrNoPython) || errors.Is(err, ErrNoTorch) {
		t.Skipf("PyTorch peer unavailable (Debian packages python3-torch, libopenblas0-pthread): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestGPTPeerLearns: in learn mode the peer evaluates at steps 0, 10, 20 and
// 30 and the validation loss falls, so the model, the data windows and the
// optimizer are wired together.
func TestGPTPeerLearns(t *testing.T) {
	t.Parallel()
	lines := runTiny(t, PeerModeLearn)
	var steps []int
	for _, l := range lines {
		steps = append(steps, l.Step)
		if l.IsTiming() {
			t.Fatalf("learn mode printed a timing line %+v", l)
		}
	}
	if got, want := steps, []int{0, 10, 20, 30}; !slices.Equal(got, want) {
		t.Fatalf("evaluated at steps %v, want %v", got, want)
	}
	first, last := lines[0], lines[len(lines)-1]
	if first.ValBPB < 7 || first.ValBPB > 9 {
		t.Errorf("initial val_bpb %.3f, want near log2(256) = 8", first.ValBPB)
	}
	if last.ValBPB > first.ValBPB-1 {
		t.Errorf("val_bpb went %.3f -> %.3f in 30 steps, want a drop of at least 1 bit", first.ValBPB, last.ValBPB)
	}
	t.Logf("val_bpb by step: %+v", lines)
}

// TestGPTPeerTimes: time mode prints one timing per thread count, each from
// its own process (peak RSS above the process's base).
func TestGPTPeerTimes(t *testing.T) {
	t.Parallel()
	spectest.Slow(t) // three processes that each import torch: ~5 s
	lines := runTiny(t, PeerModeTime)
	if len(lines) != 2 {
		t.Fatalf("time mode printed %d lines, want 2: %+v", len(lines), lines)
	}
	for i, l := range lines {
		if l.Threads != i+1 || !(l.StepMillis > 0) || !(l.PeakRSSMiB >= l.BaseRSSMiB) || l.BaseRSSMiB <= 0 || l.Torch == "" || l.BLAS == "" {
			t.Errorf("timing line %d: %+v", i, l)
		}
	}
}

// TestGPTPeerSelftest runs the script's float64 self-check: autograd agrees
// with finite differences (gradcheck), the batched forward pass equals a
// loop-by-loop transcription of the design, and one optimizer step (clipped
// and not) equals the design's formulas. Without it the peer's numbers
// would be trusted on faith.
func TestGPTPeerSelftest(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "torch_gpt.py")
	if err := os.WriteFile(script, torchGPTScript, 0o644); err != nil {
		t.Fatal(err)
	}
	pythons := pythonCandidates(peerOptions{})
	for _, py := range pythons {
		out, err := exec.Command(py, script, "--selftest").CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == noTorchExit {
			continue
		}
		if err != nil {
			t.Fatalf("%s --selftest: %v\n%s", py, err, out)
		}
		var r struct{ Selftest string }
		if err := json.Unmarshal(out, &r); err != nil || r.Selftest != "ok" {
			t.Fatalf("selftest printed %q", out)
		}
		return
	}
	t.Skipf("no python3 with torch among %v (Debian packages python3-torch, libopenblas0-pthread)", pythons)
}

// TestWriteGPTPeerDir: the files hold exactly the inputs in the documented
// layout (the script reads them with numpy.fromfile).
func TestWriteGPTPeerDir(t *testing.T) {
	t.Parallel()
	cfg, corpus, train, val, init := tinyGPT(t, PeerModeLearn)
	dir := t.TempDir()
	if err := WriteGPTPeerDir(dir, cfg, corpus, train, val, init); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if string(read("corpus.bin")) != string(corpus) {
		t.Error("corpus.bin differs from the corpus")
	}
	tb := read("train_offsets.bin")
	if len(tb) != 8*cfg.Steps*cfg.Batch || int64(binary.LittleEndian.Uint64(tb[8*(cfg.Batch+1):])) != train[1][1] {
		t.Errorf("train_offsets.bin: %d bytes, [1][1] wrong or missing", len(tb))
	}
	vb := read("val_offsets.bin")
	if len(vb) != 8*len(val) || int64(binary.LittleEndian.Uint64(vb[8*(len(val)-1):])) != val[len(val)-1] {
		t.Errorf("val_offsets.bin: %d bytes, want %d ending in %d", len(vb), 8*len(val), val[len(val)-1])
	}
	ib := read("init.bin")
	n := 0
	for _, p := range init {
		n += len(p.Values)
	}
	head := init[len(init)-1]
	if len(ib) != 4*n || math.Float32frombits(binary.LittleEndian.Uint32(ib[len(ib)-4:])) != head.Values[len(head.Values)-1] {
		t.Errorf("init.bin: %d bytes, want %d ending in the head's last weight", len(ib), 4*n)
	}
	var index []struct {
		Name  string
		Shape []int
	}
	if err := json.Unmarshal(read("init.json"), &index); err != nil || len(index) != 3+4*cfg.Layers || index[2].Name != "blocks.0.attn.qkv" || !slices.Equal(index[2].Shape, []int{96, 32}) {
		t.Errorf("init.json = %s (%v)", read("init.json"), err)
	}
	var back GPTPeerConfig
	if err := json.Unmarshal(read("config.json"), &back); err != nil || back.DFF != 64 || back.LR[1] != [2]float64{5, 3e-3} || back.Mode != "learn" {
		t.Errorf("config.json = %s (%v)", read("config.json"), err)
	}
}

// TestWriteGPTPeerDirRejects: every malformed input is refused before any
// file is written.
func TestWriteGPTPeerDirRejects(t *testing.T) {
	t.Parallel()
	for name, spoil := range map[string]func(*GPTPeerConfig, *[]byte, *[][]int64, *[]int64, *[]PeerTensor){
		"vocab":       func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { c.Vocab = 128 },
		"heads":       func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { c.Heads = 3 },
		"zero layers": func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { c.Layers = 0 },
		"mode":        func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { c.Mode = "fast" },
		"beta":        func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { c.Beta2 = 1 },
		"nan eps":     func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { c.Eps = math.NaN() },
		"knots out of order": func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) {
			c.LR = [][2]float64{{5, 1e-3}, {5, 1e-4}}
		},
		"no threads":   func(c *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { c.Threads = nil },
		"short corpus": func(_ *GPTPeerConfig, b *[]byte, _ *[][]int64, _ *[]int64, _ *[]PeerTensor) { *b = (*b)[:16] },
		"train rows":   func(_ *GPTPeerConfig, _ *[]byte, tr *[][]int64, _ *[]int64, _ *[]PeerTensor) { *tr = (*tr)[:29] },
		"train window past end": func(_ *GPTPeerConfig, b *[]byte, tr *[][]int64, _ *[]int64, _ *[]PeerTensor) {
			(*tr)[3][2] = int64(len(*b) - 16)
		},
		"negative val": func(_ *GPTPeerConfig, _ *[]byte, _ *[][]int64, v *[]int64, _ *[]PeerTensor) { (*v)[0] = -1 },
		"no val":       func(_ *GPTPeerConfig, _ *[]byte, _ *[][]int64, v *[]int64, _ *[]PeerTensor) { *v = nil },
		"init order": func(_ *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, p *[]PeerTensor) {
			(*p)[0], (*p)[1] = (*p)[1], (*p)[0]
		},
		"init values": func(_ *GPTPeerConfig, _ *[]byte, _ *[][]int64, _ *[]int64, p *[]PeerTensor) {
			(*p)[4].Values = (*p)[4].Values[1:]
		},
	} {
		cfg, corpus, train, val, init := tinyGPT(t, PeerModeLearn)
		spoil(&cfg, &corpus, &train, &val, &init)
		dir := filepath.Join(t.TempDir(), "peer")
		if err := WriteGPTPeerDir(dir, cfg, corpus, train, val, init); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: wrote %s before refusing", name, dir)
		}
	}
}

// TestParsePeerLine: learn and time lines decode; anything else (including
// a NaN loss or a line of neither kind) is an error, not a zero row.
func TestParsePeerLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		line   string
		timing bool
		ok     bool
	}{
		{`{"step": 0, "val_bpb": 8.01, "train_loss_bpb": 8.0}`, false, true},
		{`{"threads": 2, "ms_per_step": 12.5, "peak_rss_mib": 300, "base_rss_mib": 250, "torch": "1.13", "blas": "/x/libopenblas.so"}`, true, true},
		{`{"step": 10, "val_bpb": NaN, "train_loss_bpb": 8.0}`, false, false},
		{`{"selftest": "ok"}`, false, false},
		{`{"threads": 0, "ms_per_step": 1}`, false, false},
		{`{"step": -1, "val_bpb": 1}`, false, false},
		{`not json`, false, false},
	} {
		l, err := parsePeerLine([]byte(c.line))
		if (err == nil) != c.ok || (c.ok && l.IsTiming() != c.timing) {
			t.Errorf("parsePeerLine(%s) = %+v, %v", c.line, l, err)
		}
	}
}

// FuzzParsePeerLine: the peer's output is outside bytes; parsing never
// panics and accepts only lines of one kind with non-negative finite numbers.
func FuzzParsePeerLine(f *testing.F) {
	f.Add([]byte(`{"step": 0, "val_bpb": 8.01, "train_loss_bpb": 8.0}`))
	f.Add([]byte(`{"threads": 1, "ms_per_step": 3.5, "peak_rss_mib": 300, "base_rss_mib": 250}`))
	f.Add([]byte(`{"step": 1e400}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parsePeerLine(b)
		if err != nil {
			return
		}
		if l.IsTiming() && !(l.StepMillis >= 0) || !l.IsTiming() && (l.Step < 0 || !(l.ValBPB >= 0) || math.IsInf(l.ValBPB, 0)) {
			t.Fatalf("accepted %q as %+v", b, l)
		}
	})
}

// TestRunGPTPeerErrors: a missing interpreter, one without torch (exit 3),
// a failing script, garbage output and cancellation each give a clear error.
func TestRunGPTPeerErrors(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for the fake interpreters")
	}
	cfg, corpus, train, val, init := tinyGPT(t, PeerModeLearn)
	dir := t.TempDir()
	if err := WriteGPTPeerDir(dir, cfg, corpus, train, val, init); err != nil {
		t.Fatal(err)
	}
	fake := func(body string) string {
		p := filepath.Join(t.TempDir(), "python3")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	if _, err := RunGPTPeer(ctx, dir, WithPython(filepath.Join(dir, "absent"))); !errors.Is(err, ErrNoPython) {
		t.Errorf("absent python: %v, want ErrNoPython", err)
	}
	if _, err := RunGPTPeer(ctx, dir, WithPython(fake("exit 3"))); !errors.Is(err, ErrNoTorch) {
		t.Errorf("python without torch: %v, want ErrNoTorch", err)
	}
	if _, err := RunGPTPeer(ctx, dir, WithPython(fake(`echo "init.bin holds 3 floats" >&2; exit 2`))); err == nil || !strings.Contains(err.Error(), "init.bin holds 3 floats") {
		t.Errorf("failing script: %v, want its stderr in the error", err)
	}
	if _, err := RunGPTPeer(ctx, dir, WithPython(fake(`echo '{"step": 0, "val_bpb": NaN}'`))); err == nil || !strings.Contains(err.Error(), "bad GPT peer output") {
		t.Errorf("garbage output: %v", err)
	}
	if _, err := RunGPTPeer(ctx, dir, WithPython(fake("true"))); err == nil {
		t.Error("silent script accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	var seen []PeerLine
	_, err := RunGPTPeer(cctx, dir, WithPython(fake(`echo '{"step": 0, "val_bpb": 8, "train_loss_bpb": 8}'; exec sleep 30`)),
		WithPeerLines(func(l PeerLine) { seen = append(seen, l); cancel() }))
	if !errors.Is(err, context.Canceled) || len(seen) != 1 {
		t.Errorf("cancelled run: %v after %d lines, want context.Canceled after 1", err, len(seen))
	}
}
