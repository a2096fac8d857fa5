// Package modeltest builds small GPT jobs for tests: a generated text
// corpus and a tiny GPT spec over it that trains in milliseconds.
package modeltest

import (
	"encoding/hex"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/prng"
)

var words = []string{"the", "whale", "sings", "under", "a", "grey", "sea", "and", "ice", "cracks",
	"slowly", "while", "small", "fish", "dart", "past", "old", "ships", "at", "night"}

// Corpus returns n bytes of word salad: lines of words drawn with
// spec/prng from seed, the same bytes on every machine.
func Corpus(seed uint64, n int) []byte {
	s := prng.Derive(seed, "modeltest.corpus", 0, 0)
	out := make([]byte, 0, n+16)
	for i := uint64(0); len(out) < n; i++ {
		r := s.At(i)
		out = append(out, words[r%uint64(len(words))]...)
		if r>>32%7 == 0 {
			out = append(out, ".\n"...)
		} else {
			out = append(out, ' ')
		}
	}
	return out[:n]
}

// TinyGPT returns a valid version-2 GPT spec of the given steps on corpus
// (source "text"): context 16, width 16, one block of 2 heads and MLP
// width 32, batch 4, a checkpoint every 5 steps and a digest every step;
// the last 512 bytes (at least 17) are for validation, in up to 8 windows.
// It panics if corpus is shorter than 546 bytes or the spec is invalid.
func TinyGPT(corpus []byte, steps int64) *spec.Spec {
	t, err := dataset.NewText(corpus)
	if err != nil {
		panic(err)
	}
	root := t.Root()
	s := spec.ExampleGPT()
	s.Name = "tiny-gpt"
	s.Model.Layers = []spec.Layer{
		{Op: spec.OpEmbedding, Vocab: 256, Context: 16, Dim: 16},
		{Op: spec.OpTransformer, Heads: 2, FF: 32},
		{Op: spec.OpRMSNorm},
		{Op: spec.OpLinear, Out: 256},
	}
	s.Data = spec.Data{Source: spec.SourceText, Text: &spec.TextData{
		Root: hex.EncodeToString(root[:]), Bytes: len(corpus), ValBytes: 512, EvalWindows: 8}}
	s.Steps, s.BatchSize, s.CheckpointInterval, s.DigestInterval = steps, 4, 5, 1
	// A learning rate of 10^-2 after 5 warm-up steps, decaying to 10^-3.
	s.Optimizer.LRShift = 36
	s.Optimizer.LR = []spec.LRPoint{{Step: 0, Value: 0}, {Step: 5, Value: 687194767}, {Step: max(steps, 6), Value: 68719477}}
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return s
}
