package spec

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// GPT-2 blocks (SPEC.md §22): a GPT whose transformer layers carry
// "norm": "layernorm", "activation": "gelu" and "bias": true, whose final
// norm is op "layernorm" and whose linear head has "tied": true. Such a
// model is imported (beluga model import) and served; it is never trained.

// IsGPT2 reports whether s is a GPT of GPT-2 blocks (SPEC.md §22).
// Validate checks that such a spec has all of §22's fields.
func (s *Spec) IsGPT2() bool {
	return s.IsGPT() && len(s.Model.Layers) > 1 && s.Model.Layers[1].Norm == NormLayerNorm
}

// CheckTrainable refuses, with ErrUnsupported, a spec whose model is served
// and never trained: GPT-2 blocks (SPEC.md §22). Every path that starts a
// training job (the coordinator accepting a job, a trainer) asks it.
func (s *Spec) CheckTrainable() error {
	if s.IsGPT2() {
		return fmt.Errorf("%w: model.layers are GPT-2 blocks (norm layernorm, activation gelu, bias, tied head: SPEC.md §22), which are served, not trained: import such a model with beluga model import and publish it with beluga model publish", ErrUnsupported)
	}
	return nil
}

// blockField names the first of §22's fields that l sets, or "".
func (l *Layer) blockField() string {
	switch {
	case l.Norm != "":
		return "norm"
	case l.Activation != "":
		return "activation"
	case l.Bias:
		return "bias"
	case l.Tied:
		return "tied"
	}
	return ""
}

// checkBlockFields checks §22's fields of GPT layer i: norm, activation
// and bias only on a transformer, tied only on the linear head, and each
// only with its one value.
func (l *Layer) checkBlockFields(i int) error {
	if l.Op != OpTransformer && (l.Norm != "" || l.Activation != "" || l.Bias) {
		return invalid("model.layers[%d]: op %q has no field norm, activation or bias (a transformer layer's, SPEC.md §22)", i, l.Op)
	}
	if l.Op != OpLinear && l.Tied {
		return invalid("model.layers[%d]: op %q has no field tied (the linear head's, SPEC.md §22)", i, l.Op)
	}
	if l.Norm != "" && l.Norm != NormLayerNorm {
		return invalid("model.layers[%d].norm = %q: the only value is %q (omit it for §20's rmsnorm)", i, l.Norm, NormLayerNorm)
	}
	if l.Activation != "" && l.Activation != ActivationGELU {
		return invalid("model.layers[%d].activation = %q: the only value is %q (omit it for §20's silu)", i, l.Activation, ActivationGELU)
	}
	return nil
}

// blockFields reads §22's fields of document layer i into l: present only
// on the ops that have them, and then with their one value.
func (wl *gptLayer) blockFields(i int, l *Layer) error {
	onTransformer := wl.Norm != nil || wl.Activation != nil || wl.Bias != nil
	switch {
	case onTransformer && wl.Op != OpTransformer:
		return fmt.Errorf("%w: model.layers[%d]: op %q has no field norm, activation or bias (a transformer layer's, SPEC.md §22)", ErrMalformed, i, wl.Op)
	case wl.Tied != nil && wl.Op != OpLinear:
		return fmt.Errorf("%w: model.layers[%d]: op %q has no field tied (the linear head's, SPEC.md §22)", ErrMalformed, i, wl.Op)
	case wl.Bias != nil && !*wl.Bias:
		return invalid("model.layers[%d].bias = false: omit it (a §20 block has no biases; true selects GPT-2 blocks)", i)
	case wl.Tied != nil && !*wl.Tied:
		return invalid("model.layers[%d].tied = false: omit it (a §20 head is its own matrix; true ties it to the token embedding)", i)
	}
	if wl.Norm != nil {
		if *wl.Norm == "" {
			return invalid("model.layers[%d].norm is empty: the only value is %q (omit it for §20's rmsnorm)", i, NormLayerNorm)
		}
		l.Norm = *wl.Norm
	}
	if wl.Activation != nil {
		if *wl.Activation == "" {
			return invalid("model.layers[%d].activation is empty: the only value is %q (omit it for §20's silu)", i, ActivationGELU)
		}
		l.Activation = *wl.Activation
	}
	l.Bias = wl.Bias != nil
	l.Tied = wl.Tied != nil
	return l.checkBlockFields(i)
}

// setBlockFields writes §22's fields of l into the document layer.
func (wl *gptLayer) setBlockFields(l *Layer) {
	if l.Norm != "" {
		v := l.Norm
		wl.Norm = &v
	}
	if l.Activation != "" {
		v := l.Activation
		wl.Activation = &v
	}
	if l.Bias {
		wl.Bias = &l.Bias
	}
	if l.Tied {
		wl.Tied = &l.Tied
	}
}

// checkGPT2Form requires §22's fields all together or not at all: a GPT
// is §20's (none) or of GPT-2 blocks (every transformer layer with norm
// layernorm, activation gelu and bias true, op layernorm as the final
// norm, and a tied head). checkGPTModel has checked the layer sequence and
// that every block is the same.
func (s *Spec) checkGPT2Form() error {
	ls := s.Model.Layers
	t, fin, head := ls[1], ls[len(ls)-2], ls[len(ls)-1]
	parts := []struct {
		has  bool
		what string
	}{
		{t.Norm == NormLayerNorm, `"norm": "layernorm" on every transformer layer`},
		{t.Activation == ActivationGELU, `"activation": "gelu" on every transformer layer`},
		{t.Bias, `"bias": true on every transformer layer`},
		{fin.Op == OpLayerNorm, `op "layernorm" as the final norm`},
		{head.Tied, `"tied": true on the linear head`},
	}
	n := 0
	for _, p := range parts {
		if p.has {
			n++
		}
	}
	if n == 0 || n == len(parts) {
		return nil
	}
	for _, p := range parts {
		if !p.has {
			return invalid("model.layers mix §20's GPT with GPT-2 blocks (SPEC.md §22), which need all of norm layernorm, activation gelu and bias true on every transformer layer, a layernorm final norm and a tied head: this model lacks %s", p.what)
		}
	}
	return nil
}

// ServedGPT2 returns the spec of an imported model of GPT-2 blocks
// (SPEC.md §22.4): context T, width dim, layers blocks of heads heads and
// MLP width ff, bits operand bits. Its training fields are fixed
// placeholders that make it a valid version-2 spec (the fortunes corpus,
// ExampleGPT's AdamW, one step of batch 1); it is never trained
// (CheckTrainable), and its weights are the checkpoint at step 0.
func ServedGPT2(name string, context, dim, layers, heads, ff, bits int) *Spec {
	s := ExampleGPT()
	s.Name = name
	ls := []Layer{{Op: OpEmbedding, Vocab: gpt.Vocab, Context: context, Dim: dim}}
	for range layers {
		ls = append(ls, Layer{Op: OpTransformer, Heads: heads, FF: ff, Norm: NormLayerNorm, Activation: ActivationGELU, Bias: true})
	}
	s.Model.Layers = append(ls, Layer{Op: OpLayerNorm}, Layer{Op: OpLinear, Out: gpt.Vocab, Tied: true})
	s.Numeric.Bits = bits
	s.Data.Text = &TextData{Root: dataset.FortunesRoot, Bytes: dataset.FortunesBytes, ValBytes: 65536, EvalWindows: 64}
	s.Steps, s.BatchSize, s.CheckpointInterval, s.DigestInterval = 1, 1, 1, 1
	s.Optimizer.LR = []LRPoint{{Step: 0, Value: 0}}
	return s
}
