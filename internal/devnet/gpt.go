package devnet

import (
	"encoding/hex"
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

// gptJob is the index of the devnet's GPT job. Jobs go to the solvers in
// the order of their asks (cheapest first), so the third job is the
// cheater's: a GPT, so that the referee adjudicates a GPT's dispute. With
// Confidential the first and third jobs are confidential MLPs (a GPT's
// audit is by replay only), and the GPT is the second, an honest solver's.
func gptJob(cfg Config) int {
	if cfg.Confidential {
		return 1
	}
	return 2
}

// gptCorpusBytes is the size of the GPT job's corpus, which the devnet
// writes for every solver and verifier to read (their TextFile).
const gptCorpusBytes = 8192

// gptCorpus returns the GPT job's text: word salad drawn with spec/prng
// (modeltest.Corpus), the same bytes on every machine.
func gptCorpus() []byte { return modeltest.Corpus(7, gptCorpusBytes) }

// gptSpec is the devnet's GPT job over corpus: a byte-level GPT of one
// block (context 16, width 16, 2 heads, MLP width 32) trained on 4
// windows a step with AdamW, steps long, a digest after every step and a
// checkpoint every 10, its corpus named by root and size (source "text").
func gptSpec(i int, steps int64, corpus []byte) (*spec.Spec, error) {
	t, err := dataset.NewText(corpus)
	if err != nil {
		return nil, err
	}
	root := t.Root()
	s := spec.ExampleGPT()
	s.Name = fmt.Sprintf("devnet-%d-gpt", i+1)
	s.Model.Layers = []spec.Layer{
		{Op: spec.OpEmbedding, Vocab: 256, Context: 16, Dim: 16},
		{Op: spec.OpTransformer, Heads: 2, FF: 32},
		{Op: spec.OpRMSNorm},
		{Op: spec.OpLinear, Out: 256},
	}
	s.Data = spec.Data{Source: spec.SourceText, Text: &spec.TextData{
		Root: hex.EncodeToString(root[:]), Bytes: len(corpus), ValBytes: 1024, EvalWindows: 16}}
	s.Seed = uint64(100 + i)
	s.Steps, s.BatchSize, s.CheckpointInterval, s.DigestInterval = steps, 4, 10, 1
	// 10^-2 after 5 warm-up steps, decaying to 10^-3 at the last step.
	s.Optimizer.LRShift = 36
	s.Optimizer.LR = []spec.LRPoint{{Step: 0, Value: 0}, {Step: 5, Value: 687194767}, {Step: max(steps, 6), Value: 68719477}}
	return s, s.Validate()
}

// describe says what a devnet job trains, for the timeline.
func describe(s *spec.Spec) string {
	if s.IsGPT() {
		l := s.Model.Layers
		return fmt.Sprintf("a byte-level GPT (%d block, width %d, context %d) on %d bytes of text, %d steps",
			len(l)-3, l[0].Dim, l[0].Context, s.Data.Text.Bytes, s.Steps)
	}
	kind := "an MLP"
	if s.Audit.Confidential {
		kind = "a confidential MLP"
	}
	return fmt.Sprintf("%s on %s data, %d steps", kind, s.Data.Source, s.Steps)
}
