package conformance

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
)

// GPT vectors (SPEC.md §20, §16): spec/testdata/gptvectors/NAME holds
//
//	spec.json   a version-2 GPT spec on the "text" source
//	corpus.txt  the corpus its data.text commits to
//	steps.txt   per step: "step window-starts loss-q16 digest-hex"; step -1 is the initial state
const gptVectorsDir = "../testdata/gptvectors"

// gptCorpus is the vectors' text: plain English, a few hundred bytes.
const gptCorpus = `It was a bright cold day in April, and the clocks were striking thirteen.
Every honest ledger balances; every audit is a replay of what was claimed.
The quick brown fox jumps over the lazy dog, then checks the digest twice.
A solver trains, a verifier replays, and the coordinator keeps the books.
Integers add the same way on every machine, so the bits agree everywhere.
`

// gptDefinitions are the vectors -update writes.
func gptDefinitions(t *testing.T) map[string]*spec.Spec {
	text := []byte(gptCorpus)
	tx, err := dataset.NewText(text)
	if err != nil {
		t.Fatal(err)
	}
	root := tx.Root()
	mk := func(name string, context, dim, heads, ff, layers, bits, batch int, steps int64, opt spec.Optimizer) *spec.Spec {
		ls := []spec.Layer{{Op: spec.OpEmbedding, Vocab: gpt.Vocab, Context: context, Dim: dim}}
		for range layers {
			ls = append(ls, spec.Layer{Op: spec.OpTransformer, Heads: heads, FF: ff})
		}
		ls = append(ls, spec.Layer{Op: spec.OpRMSNorm}, spec.Layer{Op: spec.OpLinear, Out: gpt.Vocab})
		s := &spec.Spec{
			Version: spec.Version2, Name: name,
			Model:     spec.Model{Layers: ls, Loss: spec.LossNextTokenCrossEntropy},
			Numeric:   spec.Numeric{Bits: bits},
			Optimizer: opt,
			Data: spec.Data{Source: spec.SourceText, Text: &spec.TextData{
				Root: hex.EncodeToString(root[:]), Bytes: len(text), ValBytes: 3*context + 1, EvalWindows: 3}},
			Seed: 7, Steps: steps, BatchSize: batch, CheckpointInterval: steps, DigestInterval: 1,
			Audit: spec.Audit{CheatFractionPPM: 10_000, ConfidencePPM: 990_000},
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("GPT vector %s: %v", name, err)
		}
		return s
	}
	adam := func(b1, b2, wd int64, eps int64, lrShift int, lr []spec.LRPoint) spec.Optimizer {
		return spec.Optimizer{Kind: spec.OptimizerAdamW, Beta1: spec.Ratio{Num: b1, Shift: 16}, Beta2: spec.Ratio{Num: b2, Shift: 16},
			WeightDecay: spec.Ratio{Num: wd, Shift: 16}, Eps: eps, LRShift: lrShift, LR: lr}
	}
	// Wide (width 384) with saturated weights: the SiLU input leaves int32
	// (it needs a row of weights aligned with the normalised input, which
	// one sign-like AdamW step at this rate makes), and seed 15 makes the
	// attention gradients' NormParts round up to its clamp (found by trying
	// seeds 1–24 with the reference's saturation report).
	wide := mk("gpt-saturating-wide", 3, 384, 4, 4, 1, 8, 2, 5,
		adam(0, 65535, 65535, 1, 0, []spec.LRPoint{{Step: 0, Value: 1<<30 - 1}}))
	wide.Seed = 15
	if err := wide.Validate(); err != nil {
		t.Fatal(err)
	}
	return map[string]*spec.Spec{
		"gpt-saturating-wide": wide,
		// A small model across a warm-up knot.
		"gpt-tiny": mk("gpt-tiny", 8, 16, 2, 24, 2, 12, 3, 8,
			adam(58982, 62259, 6554, 1, 39, []spec.LRPoint{{Step: 0, Value: 0}, {Step: 4, Value: 1 << 29}, {Step: 8, Value: 1 << 27}})),
		// Odd sizes, 8-bit operands, β1 = 0, β2 ≈ 1, the largest weight
		// decay and a rate that saturates the weights: every clamp of
		// §20.11–§20.14 fires (see TestGPTVectorClamps).
		"gpt-saturating": mk("gpt-saturating", 5, 6, 3, 5, 2, 8, 2, 8,
			adam(0, 65535, 65535, 1, 0, []spec.LRPoint{{Step: 0, Value: 1<<30 - 1}})),
	}
}

// gptRun runs s from its initial state on the given kernel and threads
// (nil: the reference graph, spec/gptref) and returns its step records.
func gptRun(t *testing.T, s *spec.Spec, text []byte, k kernel.Kernel, threads int) []StepRecord {
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	split, err := s.TextSplit()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.ID()
	var tr *gpt.Trainer
	if k != nil {
		if tr, err = gpt.NewTrainer(c, k, threads); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Init()
	var h commit.Hasher
	digest := func() string {
		d := h.StateDigest(id, spec.GPTTensors(c, st))
		return hex.EncodeToString(d[:])
	}
	recs := []StepRecord{{Step: -1, Digest: digest()}}
	tx := newText(t, text)
	for step := range s.Steps {
		b, offs := gptStepBatch(t, tx, c, split.Train, step)
		var starts []int
		for _, o := range offs {
			starts = append(starts, int(o))
		}
		var loss int64
		if tr != nil {
			r, err := tr.Step(st, b)
			if err != nil {
				t.Fatal(err)
			}
			loss = r.LossQ16
		} else if st, loss, err = gptref.Step(c, st, b.Tokens, b.Targets); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, StepRecord{Step: step, Batch: starts, LossQ16: loss, Digest: digest()})
	}
	return recs
}

func TestUpdateGPTVectors(t *testing.T) {
	if !*update {
		t.Skip("pass -update to regenerate the vectors")
	}
	for name, s := range gptDefinitions(t) {
		dir := filepath.Join(gptVectorsDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		js, err := s.JSON()
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "spec.json"), js)
		write(t, filepath.Join(dir, "corpus.txt"), []byte(gptCorpus))
		write(t, filepath.Join(dir, "steps.txt"), []byte(Format(gptRun(t, s, []byte(gptCorpus), nil, 0))))
	}
}

// TestGPTVectors checks the reference graph and the GPT engine on every
// kernel and several thread counts against every GPT vector.
func TestGPTVectors(t *testing.T) {
	t.Parallel()
	dirs, err := filepath.Glob(filepath.Join(gptVectorsDir, "*", "spec.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no GPT vectors in %s: %v", gptVectorsDir, err)
	}
	for _, specPath := range dirs {
		dir := filepath.Dir(specPath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			s, text, want := loadGPTVector(t, dir)
			for _, v := range []struct {
				k       kernel.Kernel
				threads int
			}{{nil, 0}, {kernel.Generic(), 1}, {kernel.Best(), 1}, {kernel.Best(), 2}, {kernel.Best(), 3}} {
				got := gptRun(t, s, text, v.k, v.threads)
				name := "reference (spec/gptref)"
				if v.k != nil {
					name = fmt.Sprintf("%s/%d", v.k.Name(), v.threads)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d records, vector has %d", name, len(got), len(want))
				}
				for i, w := range want {
					g := got[i]
					if g.Step != w.Step || g.LossQ16 != w.LossQ16 || g.Digest != w.Digest || fmt.Sprint(g.Batch) != fmt.Sprint(w.Batch) {
						t.Fatalf("%s: step %d: got loss %d digest %s windows %v; vector: loss %d digest %s windows %v",
							name, w.Step, g.LossQ16, g.Digest, g.Batch, w.LossQ16, w.Digest, w.Batch)
					}
				}
			}
		})
	}
}

func loadGPTVector(t *testing.T, dir string) (*spec.Spec, []byte, []StepRecord) {
	data, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(dir, "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := dataset.NewText(text)
	if err != nil {
		t.Fatal(err)
	}
	if root := tx.Root(); hex.EncodeToString(root[:]) != s.Data.Text.Root || len(text) != s.Data.Text.Bytes {
		t.Fatalf("%s: corpus.txt does not match the spec's commitment", dir)
	}
	f, err := os.Open(filepath.Join(dir, "steps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []StepRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 {
			t.Fatalf("%s: bad steps line %q", dir, sc.Text())
		}
		var r StepRecord
		r.Step, _ = strconv.ParseInt(fs[0], 10, 64)
		if fs[1] != "-" {
			for _, p := range strings.Split(fs[1], ",") {
				v, err := strconv.Atoi(p)
				if err != nil {
					t.Fatalf("%s: bad windows %q", dir, fs[1])
				}
				r.Batch = append(r.Batch, v)
			}
		}
		r.LossQ16, _ = strconv.ParseInt(fs[2], 10, 64)
		r.Digest = fs[3]
		recs = append(recs, r)
	}
	return s, text, recs
}

// TestGPTVectorClamps: the gpt-saturating vector drives the reference into
// the saturations SPEC.md §16 says it does — weights clamped at ±(2^31 − 1)
// by AdamW, the residual stream saturated at the int32 range, and the
// gradient clipped (ν > 2^15) — and gpt-tiny into none of them.
func TestGPTVectorClamps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		saturates bool
	}{{"gpt-saturating", true}, {"gpt-tiny", false}} {
		s, text, _ := loadGPTVector(t, filepath.Join(gptVectorsDir, tc.name))
		c, err := s.GPT()
		if err != nil {
			t.Fatal(err)
		}
		split, _ := s.TextSplit()
		g, err := gptref.NewGraph(c)
		if err != nil {
			t.Fatal(err)
		}
		st := c.Init()
		var weights, residual, clipped bool
		tx := newText(t, text)
		for step := range s.Steps {
			b, _ := gptStepBatch(t, tx, c, split.Train, step)
			tokens, targets := b.Tokens, b.Targets
			vals, err := g.Run(st, tokens, targets)
			if err != nil {
				t.Fatal(err)
			}
			for name, v := range vals {
				for _, x := range v.Data {
					switch {
					case strings.HasPrefix(name, "next.") && !strings.HasSuffix(name, ".m") && !strings.HasSuffix(name, ".v") &&
						(x == 1<<31-1 || x == -(1<<31-1)):
						weights = true
					case strings.HasPrefix(name, "act.") && strings.HasSuffix(name, ".x") && (x == 1<<31-1 || x == -(1<<31)):
						residual = true
					}
				}
			}
			if vals["adamw.norm"].Data[0] > 1<<15 {
				clipped = true
			}
			if st, _, err = gptref.Step(c, st, tokens, targets); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: weights clamped %v, residual saturated %v, gradient clipped %v", tc.name, weights, residual, clipped)
		if tc.saturates && !(weights && residual && clipped) {
			t.Errorf("%s: weights clamped %v, residual saturated %v, gradient clipped %v; want all", tc.name, weights, residual, clipped)
		}
		if !tc.saturates && (weights || residual) {
			t.Errorf("%s saturates (weights %v, residual %v)", tc.name, weights, residual)
		}
	}
}

func newText(t *testing.T, text []byte) *dataset.Text {
	tx, err := dataset.NewText(text)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// gptStepBatch is step step's batch of a GPT vector (SPEC.md §20.5) and
// its window starts, built as every trainer builds it (model.TextBatch).
func gptStepBatch(t *testing.T, tx *dataset.Text, c gpt.Config, nTrain int, step int64) (gpt.Batch, []int64) {
	offs := dataset.TrainWindows(c.Seed, step, c.Batch, c.Context, nTrain, nil)
	b, err := model.TextBatch(tx, c, offs)
	if err != nil {
		t.Fatal(err)
	}
	return b, offs
}
