package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/strictjson"
)

// Version 2 (SPEC.md §2–§4): a spec is an MLP, read exactly as version 1,
// or a GPT. The two forms have different field sets, so each has its own
// JSON type below; strictjson reads a document against the one its form
// selects, and Canonical writes a spec through the same type.

// Bounds of a GPT spec beyond those of spec/gpt (gpt.Config.Validate).
const (
	// MaxEvalWindows bounds data.text.eval_windows.
	MaxEvalWindows = 1 << 16
	// maxAdamShift bounds the shift of AdamW's ratios (gpt.Config.Validate).
	maxAdamShift = 16
	// maxEps and maxGPTLR bound AdamW's ε and a GPT's learning-rate knots.
	maxEps   = 1 << 30
	maxGPTLR = 1<<30 - 1
)

// IsGPT reports whether s is a GPT: its first layer is an embedding. Any
// other spec is an MLP (Validate refuses a GPT unless it is version 2).
func (s *Spec) IsGPT() bool {
	return len(s.Model.Layers) > 0 && s.Model.Layers[0].Op == OpEmbedding
}

// GPT returns the model and training configuration of a GPT spec. It
// validates s first, so the configuration is inside gpt's bounds; a spec
// that is not a GPT is refused with ErrUnsupported.
func (s *Spec) GPT() (gpt.Config, error) {
	if !s.IsGPT() {
		return gpt.Config{}, fmt.Errorf("%w: the spec is an MLP, not a GPT (its first layer is not an embedding)", ErrUnsupported)
	}
	if err := s.Validate(); err != nil {
		return gpt.Config{}, err
	}
	return s.gptConfig(), nil
}

// TextSplit returns how a GPT spec splits its corpus: training bytes
// [0, Train) and validation bytes [Train, Train+Val) (dataset.NewTextSplit
// for data.text.bytes, data.text.val_bytes and the context). Its
// validation windows are dataset.ValWindows(Train, Val, context,
// data.text.eval_windows). A spec that is not a GPT is refused with
// ErrUnsupported.
func (s *Spec) TextSplit() (dataset.TextSplit, error) {
	if !s.IsGPT() || s.Data.Text == nil {
		return dataset.TextSplit{}, fmt.Errorf("%w: the spec is an MLP, not a GPT on text", ErrUnsupported)
	}
	t := s.Data.Text
	split, err := dataset.NewTextSplit(t.Bytes, t.ValBytes, s.Model.Layers[0].Context)
	if err != nil {
		return dataset.TextSplit{}, fmt.Errorf("%w: data.text.val_bytes = %d of data.text.bytes = %d at model.layers[0].context = %d: %v",
			ErrInvalid, t.ValBytes, t.Bytes, s.Model.Layers[0].Context, err)
	}
	return split, nil
}

// ExampleGPT returns the example GPT job: a 4-block byte-level transformer
// (context 128, width 128, 4 heads, MLP width 512, 12-bit operands)
// trained on the fortunes corpus for 600 steps of 16 windows with AdamW
// (β1 ≈ 0.9, β2 ≈ 0.95, weight decay ≈ 0.1) and a learning rate that warms
// up to 10^-3 over 30 steps and decays linearly to 10^-4 at step 600.
func ExampleGPT() *Spec {
	layers := []Layer{{Op: OpEmbedding, Vocab: gpt.Vocab, Context: 128, Dim: 128}}
	for range 4 {
		layers = append(layers, Layer{Op: OpTransformer, Heads: 4, FF: 512})
	}
	layers = append(layers, Layer{Op: OpRMSNorm}, Layer{Op: OpLinear, Out: gpt.Vocab})
	return &Spec{
		Version: Version2,
		Name:    "fortunes-gpt",
		Model:   Model{Layers: layers, Loss: LossNextTokenCrossEntropy},
		Numeric: Numeric{Bits: 12},
		Optimizer: Optimizer{
			Kind:        OptimizerAdamW,
			Beta1:       Ratio{Num: 58982, Shift: 16},
			Beta2:       Ratio{Num: 62259, Shift: 16},
			Eps:         1,
			WeightDecay: Ratio{Num: 6554, Shift: 16},
			LRShift:     39,
			LR:          []LRPoint{{Step: 0, Value: 0}, {Step: 30, Value: 549755814}, {Step: 600, Value: 54975581}},
		},
		Data: Data{Source: SourceFortunes, Text: &TextData{
			Root: dataset.FortunesRoot, Bytes: dataset.FortunesBytes, ValBytes: 65536, EvalWindows: 64,
		}},
		Seed:               1,
		Steps:              600,
		BatchSize:          16,
		CheckpointInterval: 100,
		DigestInterval:     1,
		Audit:              Audit{CheatFractionPPM: 10_000, ConfidencePPM: 990_000},
	}
}

// gptConfig maps a GPT spec onto gpt.Config (SPEC.md §2's table).
func (s *Spec) gptConfig() gpt.Config {
	ls := s.Model.Layers
	var c gpt.Config
	if len(ls) > 0 {
		c.Context, c.Dim = ls[0].Context, ls[0].Dim
	}
	if len(ls) > 1 {
		c.Heads, c.FF = ls[1].Heads, ls[1].FF
		c.GPT2 = ls[1].Norm == NormLayerNorm // checkGPT2Form: all of §22's fields or none
	}
	c.Layers = max(len(ls)-3, 0)
	c.Bits, c.Batch, c.Seed = s.Numeric.Bits, s.BatchSize, s.Seed
	o := &s.Optimizer
	c.Beta1 = gpt.Ratio{Num: o.Beta1.Num, Shift: o.Beta1.Shift}
	c.Beta2 = gpt.Ratio{Num: o.Beta2.Num, Shift: o.Beta2.Shift}
	c.WeightDecay = gpt.Ratio{Num: o.WeightDecay.Num, Shift: o.WeightDecay.Shift}
	c.Eps, c.LRShift = o.Eps, o.LRShift
	c.LR = make([]gpt.LRPoint, len(o.LR))
	for i, p := range o.LR {
		c.LR[i] = gpt.LRPoint{Step: p.Step, Value: p.Value}
	}
	return c
}

// pairError refuses a model with the optimizer of the other form.
func pairError(kind string, isGPT bool) error {
	model := "an MLP (first layer linear)"
	if isGPT {
		model = "a GPT (first layer embedding)"
	}
	return fmt.Errorf("%w: optimizer.kind %q cannot train %s: %q trains an MLP and %q a GPT (version 2), no other pair exists",
		ErrUnsupported, kind, model, OptimizerSGDMomentum, OptimizerAdamW)
}

// checkPair checks what the form of s allows before its fields are read:
// a GPT is version 2, and each model has its own optimizer.
func (s *Spec) checkPair() error {
	gptModel := s.IsGPT()
	if gptModel && s.Version != Version2 {
		return fmt.Errorf("%w: model.layers[0] is an embedding, a GPT, which needs version %d (this spec is version %d)", ErrUnsupported, Version2, s.Version)
	}
	k := s.Optimizer.Kind
	if gptModel && k == OptimizerSGDMomentum || !gptModel && k == OptimizerAdamW {
		return pairError(k, gptModel)
	}
	return nil
}

// layerFields are the fields each op of a GPT has besides "op".
var layerFields = map[string][]string{
	OpEmbedding:   {"vocab", "context", "dim"},
	OpTransformer: {"heads", "ff"},
	OpRMSNorm:     {},
	OpLayerNorm:   {},
	OpLinear:      {"out"},
}

// fields returns the GPT-relevant fields of l by JSON name.
func (l *Layer) fields() []namedInt {
	return []namedInt{{"vocab", l.Vocab}, {"context", l.Context}, {"dim", l.Dim}, {"heads", l.Heads}, {"ff", l.FF}, {"out", l.Out}}
}

type namedInt struct {
	name string
	v    int
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkForm refuses a spec that holds a field of the other form: an MLP
// with GPT fields, or a GPT with MLP fields or a layer field its op does
// not have. The JSON forms cannot express such a spec; Canonical refuses
// one, so that a job ID always covers every field set.
func (s *Spec) checkForm() error {
	if !s.IsGPT() {
		for i, l := range s.Model.Layers {
			for _, f := range l.fields() {
				if f.name != "out" && f.v != 0 {
					return invalid("model.layers[%d].%s is a GPT field; an MLP layer has only op and out", i, f.name)
				}
			}
			if name := l.blockField(); name != "" {
				return invalid("model.layers[%d].%s is a GPT field (SPEC.md §22); an MLP layer has only op and out", i, name)
			}
		}
		o := &s.Optimizer
		switch {
		case s.Numeric.Bits != 0:
			return invalid("numeric.bits is a GPT field; an MLP has the version-1 numeric fields")
		case o.Beta1 != (Ratio{}) || o.Beta2 != (Ratio{}) || o.Eps != 0 || o.WeightDecay != (Ratio{}):
			return invalid("optimizer.beta1, beta2, eps and weight_decay are AdamW's (a GPT's); an MLP's sgd_momentum has momentum")
		case s.Data.Text != nil:
			return invalid("data.text is a GPT's corpus; an MLP reads data.train")
		}
		return nil
	}
	for i, l := range s.Model.Layers {
		allowed, known := layerFields[l.Op]
		if !known {
			continue // checkGPTModel names the op
		}
		for _, f := range l.fields() {
			if f.v != 0 && !contains(allowed, f.name) {
				return invalid("model.layers[%d].%s = %d: op %q has no field %q (its fields: %s)", i, f.name, f.v, l.Op, f.name, opFieldList(l.Op))
			}
		}
		if err := l.checkBlockFields(i); err != nil {
			return err
		}
	}
	n, o, d := &s.Numeric, &s.Optimizer, &s.Data
	switch {
	case *n != (Numeric{Bits: n.Bits}):
		return invalid("numeric.act_bits … logit_frac are an MLP's; a GPT's numeric has only bits")
	case o.Momentum != (Ratio{}):
		return invalid("optimizer.momentum is sgd_momentum's (an MLP's); a GPT's adamw has beta1, beta2, eps and weight_decay")
	case d.Synthetic != nil || d.Test != nil || d.Train != (DatasetRef{}):
		return invalid("data.train, data.test and data.synthetic are an MLP's; a GPT reads data.text")
	}
	return nil
}

// validateGPT checks a GPT spec (SPEC.md §3, rules G1–G9) after checkPair.
func (s *Spec) validateGPT() error {
	for _, check := range []func() error{s.checkForm, s.checkGPTModel, s.checkText, s.checkGPTNumeric, s.checkAdamW, s.checkSchedule, s.checkGPTAudit} {
		if err := check(); err != nil {
			return err
		}
	}
	ctx := s.Model.Layers[0].Context
	if tokens := int64(s.BatchSize) * int64(ctx); tokens > gpt.MaxTokens {
		return invalid("batch_size × model.layers[0].context = %d × %d = %d tokens per step, more than %d", s.BatchSize, ctx, tokens, gpt.MaxTokens)
	}
	c := s.gptConfig()
	if p := c.ParamCount(); p > MaxParams {
		return invalid("the GPT has %d parameters, more than %d: lower model.layers[0].dim, the ff width or the number of transformer blocks", p, MaxParams)
	}
	// Every bound above is gpt's; this catches any that a later gpt adds.
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// checkGPTModel checks the layers (rule G2) and the loss.
func (s *Spec) checkGPTModel() error {
	ls := s.Model.Layers
	for i, l := range ls {
		if _, ok := layerFields[l.Op]; !ok {
			return fmt.Errorf("%w: op %q at model.layers[%d] (a GPT has %q, %q, %q or %q, and %q layers)",
				ErrUnsupported, l.Op, i, OpEmbedding, OpTransformer, OpRMSNorm, OpLayerNorm, OpLinear)
		}
	}
	if n := len(ls); n < 4 || n > gpt.MaxLayers+3 {
		return invalid("model.layers of a GPT are an embedding, 1 to %d transformer blocks, an rmsnorm and a linear layer: 4 to %d layers, not %d",
			gpt.MaxLayers, gpt.MaxLayers+3, n)
	}
	for i, l := range ls {
		want := OpTransformer
		switch i {
		case 0:
			want = OpEmbedding
		case len(ls) - 2:
			want = OpRMSNorm
			if l.Op == OpLayerNorm {
				want = OpLayerNorm // GPT-2 blocks (§22); checkGPT2Form checks the rest
			}
		case len(ls) - 1:
			want = OpLinear
		}
		if l.Op != want {
			return invalid("model.layers[%d] is %q, want %q: a GPT is embedding, transformer × L, rmsnorm, linear", i, l.Op, want)
		}
	}
	e, t := ls[0], ls[1]
	if e.Vocab != gpt.Vocab {
		return invalid("model.layers[0].vocab = %d, want %d (bytes)", e.Vocab, gpt.Vocab)
	}
	if err := inRange("model.layers[0].context", int64(e.Context), 1, gpt.MaxContext); err != nil {
		return err
	}
	if err := inRange("model.layers[0].dim", int64(e.Dim), 1, gpt.MaxDim); err != nil {
		return err
	}
	if err := inRange("model.layers[1].heads", int64(t.Heads), 1, int64(e.Dim)); err != nil {
		return err
	}
	if e.Dim%t.Heads != 0 {
		return invalid("model.layers[1].heads = %d must divide model.layers[0].dim = %d", t.Heads, e.Dim)
	}
	if hd := e.Dim / t.Heads; hd > gpt.MaxHeadDim {
		return invalid("head width model.layers[0].dim / model.layers[1].heads = %d, more than %d", hd, gpt.MaxHeadDim)
	}
	if err := inRange("model.layers[1].ff", int64(t.FF), 1, gpt.MaxFF); err != nil {
		return err
	}
	for i := 2; i < len(ls)-2; i++ {
		if ls[i] != t {
			return invalid("model.layers[%d] (heads %d, ff %d, norm %q, activation %q, bias %v) differs from model.layers[1] (heads %d, ff %d, norm %q, activation %q, bias %v): every transformer block is the same",
				i, ls[i].Heads, ls[i].FF, ls[i].Norm, ls[i].Activation, ls[i].Bias, t.Heads, t.FF, t.Norm, t.Activation, t.Bias)
		}
	}
	if h := ls[len(ls)-1]; h.Out != e.Vocab {
		return invalid("model.layers[%d].out = %d, want model.layers[0].vocab = %d: the head predicts the next byte", len(ls)-1, h.Out, e.Vocab)
	}
	if s.Model.Loss != LossNextTokenCrossEntropy {
		return fmt.Errorf("%w: model.loss %q (a GPT's loss is %q)", ErrUnsupported, s.Model.Loss, LossNextTokenCrossEntropy)
	}
	return s.checkGPT2Form()
}

// checkText checks the corpus and its split (rule G3); the model has
// passed checkGPTModel, so the context is in range.
func (s *Spec) checkText() error {
	d := &s.Data
	if d.Source != SourceFortunes && d.Source != SourceText {
		return fmt.Errorf("%w: data.source %q (a GPT reads %q or %q)", ErrUnsupported, d.Source, SourceFortunes, SourceText)
	}
	t := d.Text
	if t == nil {
		return invalid("data.source %q needs data.text", d.Source)
	}
	if !isHex64(t.Root) {
		return invalid("data.text.root must be 64 lower-case hex digits")
	}
	if err := inRange("data.text.bytes", int64(t.Bytes), 1, dataset.MaxTextBytes); err != nil {
		return err
	}
	if d.Source == SourceFortunes && (t.Root != dataset.FortunesRoot || t.Bytes != dataset.FortunesBytes) {
		return invalid("data.text names root %s and %d bytes, but data.source %q is Debian's fortunes corpus, root %s and %d bytes; use %q for another corpus",
			t.Root, t.Bytes, d.Source, dataset.FortunesRoot, dataset.FortunesBytes, SourceText)
	}
	if err := inRange("data.text.eval_windows", int64(t.EvalWindows), 1, MaxEvalWindows); err != nil {
		return err
	}
	split, err := s.TextSplit()
	if err != nil {
		return err
	}
	// len(dataset.ValWindows(split.Train, split.Val, context, eval_windows)),
	// computed rather than allocated.
	ctx := s.Model.Layers[0].Context
	if k := min((split.Val-1)/ctx, t.EvalWindows); k < 1 {
		return invalid("data.text.val_bytes = %d holds no validation window of model.layers[0].context + 1 = %d bytes", t.ValBytes, ctx+1)
	}
	return nil
}

// checkGPTNumeric checks numeric.bits (rule G4).
func (s *Spec) checkGPTNumeric() error {
	return inRange("numeric.bits", int64(s.Numeric.Bits), gpt.MinBits, gpt.MaxBits)
}

// checkAdamW checks the optimizer of a GPT (rule G5).
func (s *Spec) checkAdamW() error {
	o := &s.Optimizer
	if o.Kind != OptimizerAdamW {
		return fmt.Errorf("%w: optimizer.kind %q (a GPT trains with %q)", ErrUnsupported, o.Kind, OptimizerAdamW)
	}
	for _, r := range []struct {
		what string
		r    Ratio
	}{{"optimizer.beta1", o.Beta1}, {"optimizer.beta2", o.Beta2}, {"optimizer.weight_decay", o.WeightDecay}} {
		if err := inRange(r.what+".shift", int64(r.r.Shift), 0, maxAdamShift); err != nil {
			return err
		}
		if err := inRange(r.what+".num", r.r.Num, 0, 1<<r.r.Shift-1); err != nil {
			return err
		}
	}
	if err := inRange("optimizer.eps", o.Eps, 1, maxEps); err != nil {
		return err
	}
	return o.checkLR(maxGPTLR)
}

// checkGPTAudit checks the audit policy of a GPT (rule G7).
func (s *Spec) checkGPTAudit() error {
	if s.Audit.Confidential {
		return fmt.Errorf("%w: audit.confidential = true: the zk statement of confidential audits (SPEC.md §17) covers only an MLP's linear layers; audit a GPT by replay (confidential false)", ErrUnsupported)
	}
	return s.checkAudit()
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// The JSON forms. Field order is the order JSON writes; Canonical sorts.

// mlpJSON is an MLP spec (versions 1 and 2): the fields of version 1.
type mlpJSON struct {
	Version            int         `json:"version"`
	Name               string      `json:"name"`
	Model              mlpModel    `json:"model"`
	Numeric            mlpNumeric  `json:"numeric"`
	Optimizer          sgdMomentum `json:"optimizer"`
	Data               labelled    `json:"data"`
	Seed               uint64      `json:"seed"`
	Steps              int64       `json:"steps"`
	BatchSize          int         `json:"batch_size"`
	CheckpointInterval int64       `json:"checkpoint_interval"`
	DigestInterval     int64       `json:"digest_interval"`
	Audit              Audit       `json:"audit"`
}

type mlpModel struct {
	Layers []mlpLayer `json:"layers"`
	Loss   string     `json:"loss"`
}

type mlpLayer struct {
	Op  string `json:"op"`
	Out int    `json:"out,omitempty"`
}

type mlpNumeric struct {
	ActBits    int `json:"act_bits"`
	ActFrac    int `json:"act_frac"`
	WeightBits int `json:"weight_bits"`
	WeightFrac int `json:"weight_frac"`
	MasterFrac int `json:"master_frac"`
	GradBits   int `json:"grad_bits"`
	LogitBits  int `json:"logit_bits"`
	LogitFrac  int `json:"logit_frac"`
}

type sgdMomentum struct {
	Kind     string    `json:"kind"`
	Momentum Ratio     `json:"momentum"`
	LRShift  int       `json:"lr_shift"`
	LR       []LRPoint `json:"lr"`
}

type labelled struct {
	Source    string         `json:"source"`
	Synthetic *SyntheticData `json:"synthetic,omitempty"`
	Train     DatasetRef     `json:"train"`
	Test      *DatasetRef    `json:"test,omitempty"`
}

// gptJSON is a GPT spec (version 2).
type gptJSON struct {
	Version            int        `json:"version"`
	Name               string     `json:"name"`
	Model              gptModel   `json:"model"`
	Numeric            gptNumeric `json:"numeric"`
	Optimizer          adamW      `json:"optimizer"`
	Data               textual    `json:"data"`
	Seed               uint64     `json:"seed"`
	Steps              int64      `json:"steps"`
	BatchSize          int        `json:"batch_size"`
	CheckpointInterval int64      `json:"checkpoint_interval"`
	DigestInterval     int64      `json:"digest_interval"`
	Audit              Audit      `json:"audit"`
}

type gptModel struct {
	Layers []gptLayer `json:"layers"`
	Loss   string     `json:"loss"`
}

// gptLayer has every field a GPT layer may have; which must be present
// depends on the op (layerFields), so presence is kept.
type gptLayer struct {
	Op      string `json:"op"`
	Vocab   *int   `json:"vocab,omitempty"`
	Context *int   `json:"context,omitempty"`
	Dim     *int   `json:"dim,omitempty"`
	Heads   *int   `json:"heads,omitempty"`
	FF      *int   `json:"ff,omitempty"`
	Out     *int   `json:"out,omitempty"`
	// SPEC.md §22's fields, absent on a §20 model.
	Norm       *string `json:"norm,omitempty"`
	Activation *string `json:"activation,omitempty"`
	Bias       *bool   `json:"bias,omitempty"`
	Tied       *bool   `json:"tied,omitempty"`
}

func (l *gptLayer) fields() []struct {
	name string
	p    **int
} {
	return []struct {
		name string
		p    **int
	}{{"vocab", &l.Vocab}, {"context", &l.Context}, {"dim", &l.Dim}, {"heads", &l.Heads}, {"ff", &l.FF}, {"out", &l.Out}}
}

type gptNumeric struct {
	Bits int `json:"bits"`
}

type adamW struct {
	Kind        string    `json:"kind"`
	Beta1       Ratio     `json:"beta1"`
	Beta2       Ratio     `json:"beta2"`
	Eps         int64     `json:"eps"`
	WeightDecay Ratio     `json:"weight_decay"`
	LRShift     int       `json:"lr_shift"`
	LR          []LRPoint `json:"lr"`
}

type textual struct {
	Source string   `json:"source"`
	Text   TextData `json:"text"`
}

// form returns the JSON form of s: an *mlpJSON or a *gptJSON. It refuses
// a spec holding fields of the other form (checkForm).
func (s *Spec) form() (any, error) {
	if err := s.checkForm(); err != nil {
		return nil, err
	}
	if s.IsGPT() {
		return s.gptForm(), nil
	}
	n := &s.Numeric
	w := &mlpJSON{
		Version: s.Version, Name: s.Name,
		Model: mlpModel{Layers: make([]mlpLayer, len(s.Model.Layers)), Loss: s.Model.Loss},
		Numeric: mlpNumeric{ActBits: n.ActBits, ActFrac: n.ActFrac, WeightBits: n.WeightBits, WeightFrac: n.WeightFrac,
			MasterFrac: n.MasterFrac, GradBits: n.GradBits, LogitBits: n.LogitBits, LogitFrac: n.LogitFrac},
		Optimizer: sgdMomentum{Kind: s.Optimizer.Kind, Momentum: s.Optimizer.Momentum, LRShift: s.Optimizer.LRShift, LR: s.Optimizer.LR},
		Data:      labelled{Source: s.Data.Source, Synthetic: s.Data.Synthetic, Train: s.Data.Train, Test: s.Data.Test},
		Seed:      s.Seed, Steps: s.Steps, BatchSize: s.BatchSize,
		CheckpointInterval: s.CheckpointInterval, DigestInterval: s.DigestInterval, Audit: s.Audit,
	}
	for i, l := range s.Model.Layers {
		w.Model.Layers[i] = mlpLayer{Op: l.Op, Out: l.Out}
	}
	return w, nil
}

func (s *Spec) gptForm() *gptJSON {
	o := &s.Optimizer
	w := &gptJSON{
		Version: s.Version, Name: s.Name,
		Model:   gptModel{Layers: make([]gptLayer, len(s.Model.Layers)), Loss: s.Model.Loss},
		Numeric: gptNumeric{Bits: s.Numeric.Bits},
		Optimizer: adamW{Kind: o.Kind, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay,
			LRShift: o.LRShift, LR: o.LR},
		Data: textual{Source: s.Data.Source},
		Seed: s.Seed, Steps: s.Steps, BatchSize: s.BatchSize,
		CheckpointInterval: s.CheckpointInterval, DigestInterval: s.DigestInterval, Audit: s.Audit,
	}
	if s.Data.Text != nil {
		w.Data.Text = *s.Data.Text
	}
	for i := range s.Model.Layers {
		l := &s.Model.Layers[i]
		wl := &w.Model.Layers[i]
		wl.Op = l.Op
		allowed, known := layerFields[l.Op]
		for k, f := range l.fields() {
			// An op's own fields are written even when 0; any other
			// field is 0 (checkForm), except on an unknown op.
			if contains(allowed, f.name) || !known && f.v != 0 {
				v := f.v
				*wl.fields()[k].p = &v
			}
		}
		wl.setBlockFields(l)
	}
	return w
}

// probe is what Decode reads first, leniently, to pick the form a
// document is read against. It decides nothing else: the document must
// then pass strictjson against that form.
type probe struct {
	Version json.RawMessage `json:"version"`
	Model   struct {
		Layers []struct {
			Op json.RawMessage `json:"op"`
		} `json:"layers"`
	} `json:"model"`
	Optimizer struct {
		Kind json.RawMessage `json:"kind"`
	} `json:"optimizer"`
}

// decodeForm reads data strictly against the form its version and first
// layer select (SPEC.md §3, "Reading the JSON").
func decodeForm(data []byte) (*Spec, error) {
	var p probe
	_ = json.Unmarshal(data, &p) // only routes; strictjson decides below
	version, versionErr := strconv.Atoi(string(bytes.TrimSpace(p.Version)))
	var first, kind string
	if len(p.Model.Layers) > 0 {
		_ = json.Unmarshal(p.Model.Layers[0].Op, &first)
	}
	_ = json.Unmarshal(p.Optimizer.Kind, &kind)
	isGPT := first == OpEmbedding
	if versionErr == nil && version != Version && version != Version2 {
		return nil, fmt.Errorf("%w: version %d (this build reads versions %d and %d)", ErrUnsupported, version, Version, Version2)
	}
	if isGPT && versionErr == nil && version != Version2 {
		return nil, fmt.Errorf("%w: model.layers[0] is an embedding, a GPT, which needs version %d (this spec is version %d)", ErrUnsupported, Version2, version)
	}
	if isGPT && kind == OptimizerSGDMomentum || !isGPT && kind == OptimizerAdamW {
		return nil, pairError(kind, isGPT)
	}
	if isGPT {
		var w gptJSON
		if err := strictjson.Decode(data, &w); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return w.spec()
	}
	var w mlpJSON
	if err := strictjson.Decode(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return w.spec(), nil
}

func (w *mlpJSON) spec() *Spec {
	n := &w.Numeric
	s := &Spec{
		Version: w.Version, Name: w.Name,
		Model: Model{Layers: make([]Layer, len(w.Model.Layers)), Loss: w.Model.Loss},
		Numeric: Numeric{ActBits: n.ActBits, ActFrac: n.ActFrac, WeightBits: n.WeightBits, WeightFrac: n.WeightFrac,
			MasterFrac: n.MasterFrac, GradBits: n.GradBits, LogitBits: n.LogitBits, LogitFrac: n.LogitFrac},
		Optimizer: Optimizer{Kind: w.Optimizer.Kind, Momentum: w.Optimizer.Momentum, LRShift: w.Optimizer.LRShift, LR: w.Optimizer.LR},
		Data:      Data{Source: w.Data.Source, Synthetic: w.Data.Synthetic, Train: w.Data.Train, Test: w.Data.Test},
		Seed:      w.Seed, Steps: w.Steps, BatchSize: w.BatchSize,
		CheckpointInterval: w.CheckpointInterval, DigestInterval: w.DigestInterval, Audit: w.Audit,
	}
	for i, l := range w.Model.Layers {
		s.Model.Layers[i] = Layer{Op: l.Op, Out: l.Out}
	}
	return s
}

// spec converts a GPT document, refusing a layer that lacks a field its
// op has or carries one it does not (a reading rule, like a missing or
// unknown key).
func (w *gptJSON) spec() (*Spec, error) {
	o := &w.Optimizer
	text := w.Data.Text
	s := &Spec{
		Version: w.Version, Name: w.Name,
		Model:   Model{Layers: make([]Layer, len(w.Model.Layers)), Loss: w.Model.Loss},
		Numeric: Numeric{Bits: w.Numeric.Bits},
		Optimizer: Optimizer{Kind: o.Kind, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay,
			LRShift: o.LRShift, LR: o.LR},
		Data: Data{Source: w.Data.Source, Text: &text},
		Seed: w.Seed, Steps: w.Steps, BatchSize: w.BatchSize,
		CheckpointInterval: w.CheckpointInterval, DigestInterval: w.DigestInterval, Audit: w.Audit,
	}
	for i := range w.Model.Layers {
		wl := &w.Model.Layers[i]
		allowed, known := layerFields[wl.Op]
		if !known {
			return nil, fmt.Errorf("%w: op %q at model.layers[%d] (a GPT has %q, %q, %q or %q, and %q layers)",
				ErrUnsupported, wl.Op, i, OpEmbedding, OpTransformer, OpRMSNorm, OpLayerNorm, OpLinear)
		}
		l := &s.Model.Layers[i]
		l.Op = wl.Op
		dst := []*int{&l.Vocab, &l.Context, &l.Dim, &l.Heads, &l.FF, &l.Out}
		for k, f := range wl.fields() {
			switch has := *f.p != nil; {
			case has && !contains(allowed, f.name):
				return nil, fmt.Errorf("%w: model.layers[%d].%s: op %q has no field %q (its fields: %s)", ErrMalformed, i, f.name, wl.Op, f.name, opFieldList(wl.Op))
			case !has && contains(allowed, f.name):
				return nil, fmt.Errorf("%w: model.layers[%d].%s is missing (op %q has the fields %s)", ErrMalformed, i, f.name, wl.Op, opFieldList(wl.Op))
			case has:
				*dst[k] = **f.p
			}
		}
		if err := wl.blockFields(i, l); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func opFieldList(op string) string {
	fs := layerFields[op]
	if len(fs) == 0 {
		return "only op"
	}
	out := "op"
	for _, f := range fs {
		out += ", " + f
	}
	return out
}
