package spec

import (
	"fmt"
	"math"
)

// Bounds on what a spec may ask for (a GPT's model is bounded by spec/gpt's
// limits instead; validateGPT). They keep a hostile spec from
// making a solver or verifier allocate without limit.
const (
	MaxLayers      = 64
	MaxWidth       = 1 << 16
	MaxParams      = 1 << 27 // ≈134M weights: 1 GiB of master weights and momentum
	MaxActivations = 1 << 28 // batch × Σ layer widths
	MaxBatch       = 1 << 16
	MaxSteps       = 1 << 40
	MaxClasses     = 256
	MaxSamples     = math.MaxInt32
	MaxLRPoints    = 64
	MaxNameLen     = 64
	// MaxDigests bounds the entries of a run's trace (Digests), and of a
	// confidential run's zk trace (Steps + 1): a trace travels in one
	// message, and every party holds it in memory.
	MaxDigests = 1 << 16
	// MaxDatasetBytes bounds Data.Bytes: Σ count × (features + 5) over the
	// training and test splits. features + 5 is a sample's leaf in the
	// dataset commitment (le32 index, label, features: the bytes hashed to
	// check it) and what a trainer holds per sample (features, label and a
	// 4-byte slot of the epoch permutation). 256 MiB keeps the data of the
	// largest job next to its largest state (MaxParams: 1 GiB of master
	// weights and momentum) and activations (MaxActivations × 4 bytes:
	// 1 GiB) inside a 4 GiB solver or verifier, and is over four times
	// Fashion-MNIST (70,000 × 789 bytes ≈ 55 MB).
	MaxDatasetBytes = 1 << 28
	// MaxSyntheticSamples, MaxSyntheticFeatures and MaxSyntheticValues
	// bound each synthetic split (SPEC.md §6.3): its sample count, its
	// features, and their product.
	MaxSyntheticSamples  = 1 << 24
	MaxSyntheticFeatures = 1 << 16
	MaxSyntheticValues   = 1 << 30
	maxShift             = 62
)

// Validate checks s against SPEC.md §"Validation". It allocates nothing
// proportional to any dimension in s.
//
// Version 1 is an MLP; version 2 is an MLP with the same rules, or a GPT
// (IsGPT), which validateGPT checks.
func (s *Spec) Validate() error {
	if s.Version != Version && s.Version != Version2 {
		return fmt.Errorf("%w: version %d (this build reads versions %d and %d)", ErrUnsupported, s.Version, Version, Version2)
	}
	if err := checkName(s.Name); err != nil {
		return err
	}
	if err := s.checkPair(); err != nil {
		return err
	}
	if s.IsGPT() {
		return s.validateGPT()
	}
	for _, check := range []func() error{s.checkForm, s.checkData, s.checkModel, s.checkNumeric, s.checkOptimizer, s.checkSchedule, s.checkAudit} {
		if err := check(); err != nil {
			return err
		}
	}
	return s.checkBounds()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func checkName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return invalid("name must be 1 to %d characters", MaxNameLen)
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return invalid("name may hold printable ASCII except '\"' and '\\', found byte 0x%02x", c)
		}
	}
	return nil
}

func inRange(what string, v, lo, hi int64) error {
	if v < lo || v > hi {
		return invalid("%s = %d outside [%d, %d]", what, v, lo, hi)
	}
	return nil
}

func (s *Spec) checkData() error {
	d := &s.Data
	switch d.Source {
	case SourceSynthetic:
		if d.Synthetic == nil {
			return invalid("data.source %q needs data.synthetic", d.Source)
		}
		if err := inRange("data.synthetic.train", int64(d.Synthetic.Train), 1, MaxSyntheticSamples); err != nil {
			return err
		}
		if err := inRange("data.synthetic.test", int64(d.Synthetic.Test), 0, MaxSyntheticSamples); err != nil {
			return err
		}
		if int64(d.Synthetic.Train) != int64(d.Train.Count) {
			return invalid("data.synthetic.train = %d but data.train.count = %d", d.Synthetic.Train, d.Train.Count)
		}
		testCount := 0
		if d.Test != nil {
			testCount = d.Test.Count
		}
		if d.Synthetic.Test != testCount {
			return invalid("data.synthetic.test = %d but the test split has %d samples", d.Synthetic.Test, testCount)
		}
	case SourceFashionMNIST, SourceIDX:
		if d.Synthetic != nil {
			return invalid("data.synthetic is only for data.source %q", SourceSynthetic)
		}
	default:
		return fmt.Errorf("%w: data.source %q (an MLP reads %q, %q or %q)", ErrUnsupported, d.Source, SourceSynthetic, SourceFashionMNIST, SourceIDX)
	}
	if err := d.Train.check("data.train"); err != nil {
		return err
	}
	if d.Test != nil {
		if err := d.Test.check("data.test"); err != nil {
			return err
		}
		if d.Test.Features != d.Train.Features || d.Test.Classes != d.Train.Classes {
			return invalid("data.test has %d features and %d classes, data.train %d and %d",
				d.Test.Features, d.Test.Classes, d.Train.Features, d.Train.Classes)
		}
	}
	if d.Source == SourceSynthetic {
		if err := inRange("data.synthetic features", int64(d.Train.Features), 1, MaxSyntheticFeatures); err != nil {
			return err
		}
		for _, split := range []struct {
			what string
			n    int
		}{{"data.synthetic.train", d.Synthetic.Train}, {"data.synthetic.test", d.Synthetic.Test}} {
			if v := int64(split.n) * int64(d.Train.Features); v > MaxSyntheticValues {
				return invalid("%s × features = %d values, more than %d", split.what, v, MaxSyntheticValues)
			}
		}
	}
	if b := d.Bytes(); b > MaxDatasetBytes {
		return invalid("the datasets take Σ count × (features + 5) = %d bytes, more than %d", b, MaxDatasetBytes)
	}
	return nil
}

// Bytes is the size of the data d names, as MaxDatasetBytes bounds it:
// Σ count × (features + 5) over the training split and the test split, if
// any, plus a GPT's corpus size data.text.bytes. Counts and features that
// passed their own range checks cannot overflow it (each product is below
// 2^31 × 2^17).
func (d *Data) Bytes() int64 {
	b := int64(d.Train.Count) * (int64(d.Train.Features) + 5)
	if d.Text != nil {
		b += int64(d.Text.Bytes)
	}
	if d.Test != nil {
		b += int64(d.Test.Count) * (int64(d.Test.Features) + 5)
	}
	return b
}

func (r *DatasetRef) check(what string) error {
	if !isHex64(r.Root) {
		return invalid("%s.root must be 64 lower-case hex digits", what)
	}
	if err := inRange(what+".count", int64(r.Count), 1, MaxSamples); err != nil {
		return err
	}
	if err := inRange(what+".features", int64(r.Features), 1, MaxWidth); err != nil {
		return err
	}
	return inRange(what+".classes", int64(r.Classes), 2, MaxClasses)
}

func (s *Spec) checkModel() error {
	ls := s.Model.Layers
	if len(ls) == 0 || len(ls) > MaxLayers {
		return invalid("model.layers must hold 1 to %d layers, has %d", MaxLayers, len(ls))
	}
	for i, l := range ls {
		switch l.Op {
		case OpLinear:
			if err := inRange(fmt.Sprintf("model.layers[%d].out", i), int64(l.Out), 1, MaxWidth); err != nil {
				return err
			}
		case OpReLU:
			if l.Out != 0 {
				return invalid("model.layers[%d]: relu takes no \"out\"", i)
			}
			if i == 0 || ls[i-1].Op != OpLinear {
				return invalid("model.layers[%d]: relu must follow a linear layer", i)
			}
		default:
			return fmt.Errorf("%w: op %q at model.layers[%d] (an MLP has %q and %q layers; a GPT, version %d, starts with %q)", ErrUnsupported, l.Op, i, OpLinear, OpReLU, Version2, OpEmbedding)
		}
	}
	if ls[0].Op != OpLinear || ls[len(ls)-1].Op != OpLinear {
		return invalid("model.layers must start and end with a linear layer")
	}
	if last := ls[len(ls)-1].Out; last != s.Data.Train.Classes {
		return invalid("the last layer has %d outputs but the data has %d classes", last, s.Data.Train.Classes)
	}
	if s.Model.Loss != LossSoftmaxCrossEntropy {
		return fmt.Errorf("%w: model.loss %q (an MLP's loss is %q)", ErrUnsupported, s.Model.Loss, LossSoftmaxCrossEntropy)
	}
	return nil
}

func (s *Spec) checkNumeric() error {
	n := &s.Numeric
	for _, c := range []struct {
		what   string
		v      int
		lo, hi int64
	}{
		{"numeric.act_bits", n.ActBits, 1, 15},
		{"numeric.act_frac", n.ActFrac, 0, 30},
		{"numeric.weight_bits", n.WeightBits, 1, 15},
		{"numeric.weight_frac", n.WeightFrac, 0, 15},
		{"numeric.grad_bits", n.GradBits, 1, 15},
		{"numeric.logit_bits", n.LogitBits, 1, 15},
		{"numeric.logit_frac", n.LogitFrac, 0, 30},
		{"numeric.master_frac", n.MasterFrac, 0, 30},
	} {
		if err := inRange(c.what, int64(c.v), c.lo, c.hi); err != nil {
			return err
		}
	}
	inFrac := max(InputFrac, n.ActFrac)
	if n.MasterFrac < inFrac+n.WeightFrac {
		return invalid("numeric.master_frac = %d must be at least %d (input fraction + weight_frac) so biases convert exactly", n.MasterFrac, inFrac+n.WeightFrac)
	}
	if n.WeightBits+n.MasterFrac-n.WeightFrac > 30 {
		return invalid("master weights need weight_bits + master_frac - weight_frac = %d ≤ 30 bits", n.WeightBits+n.MasterFrac-n.WeightFrac)
	}
	return nil
}

func (s *Spec) checkOptimizer() error {
	o := &s.Optimizer
	if o.Kind != OptimizerSGDMomentum {
		return fmt.Errorf("%w: optimizer.kind %q (an MLP trains with %q)", ErrUnsupported, o.Kind, OptimizerSGDMomentum)
	}
	if err := inRange("optimizer.momentum.shift", int64(o.Momentum.Shift), 0, 30); err != nil {
		return err
	}
	if err := inRange("optimizer.momentum.num", o.Momentum.Num, 0, 1<<o.Momentum.Shift-1); err != nil {
		return err
	}
	return o.checkLR(math.MaxInt32)
}

// checkLR checks lr_shift and the learning-rate knots, whose values are at
// most maxValue.
func (o *Optimizer) checkLR(maxValue int64) error {
	if err := inRange("optimizer.lr_shift", int64(o.LRShift), 0, maxShift); err != nil {
		return err
	}
	if len(o.LR) == 0 || len(o.LR) > MaxLRPoints {
		return invalid("optimizer.lr must hold 1 to %d points", MaxLRPoints)
	}
	for i, p := range o.LR {
		if i == 0 && p.Step != 0 {
			return invalid("optimizer.lr[0].step must be 0")
		}
		if i > 0 && p.Step <= o.LR[i-1].Step {
			return invalid("optimizer.lr steps must increase strictly (lr[%d])", i)
		}
		if err := inRange(fmt.Sprintf("optimizer.lr[%d].step", i), p.Step, 0, MaxSteps); err != nil {
			return err
		}
		if err := inRange(fmt.Sprintf("optimizer.lr[%d].value", i), p.Value, 0, maxValue); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spec) checkSchedule() error {
	if err := inRange("steps", s.Steps, 1, MaxSteps); err != nil {
		return err
	}
	if err := inRange("batch_size", int64(s.BatchSize), 1, MaxBatch); err != nil {
		return err
	}
	if err := inRange("digest_interval", s.DigestInterval, 1, MaxSteps); err != nil {
		return err
	}
	if err := inRange("checkpoint_interval", s.CheckpointInterval, 1, MaxSteps); err != nil {
		return err
	}
	if s.CheckpointInterval%s.DigestInterval != 0 {
		return invalid("checkpoint_interval = %d must be a multiple of digest_interval = %d", s.CheckpointInterval, s.DigestInterval)
	}
	if n := s.Digests(); n > MaxDigests {
		return invalid("steps = %d with digest_interval = %d commits %d digests, over the limit of %d: raise digest_interval to at least %d",
			s.Steps, s.DigestInterval, n, MaxDigests, (s.Steps+MaxDigests-2)/(MaxDigests-1))
	}
	return nil
}

// Digests is the number of state digests a run of s commits (SPEC.md §12):
// steps 0, k, 2k, … below Steps, and Steps itself. It is computed, never
// enumerated, so a hostile spec costs nothing to measure. It is 0 for a
// spec without a digest interval and saturates at math.MaxInt64 rather
// than overflow, whatever numbers an unvalidated spec holds.
func (s *Spec) Digests() int64 {
	if s.DigestInterval <= 0 || s.Steps < 0 {
		return 0
	}
	q := s.Steps / s.DigestInterval
	if s.Steps%s.DigestInterval != 0 {
		q++
	}
	if q == math.MaxInt64 {
		return q
	}
	return q + 1
}

func (s *Spec) checkAudit() error {
	if err := inRange("audit.cheat_fraction_ppm", s.Audit.CheatFractionPPM, 1, 1_000_000); err != nil {
		return err
	}
	if err := inRange("audit.confidence_ppm", s.Audit.ConfidencePPM, 1, 999_999); err != nil {
		return err
	}
	if s.Audit.Confidential && s.Steps+1 > MaxDigests {
		return invalid("a confidential job commits a zk root for each of its steps + 1 = %d states, over the limit of %d", s.Steps+1, MaxDigests)
	}
	return nil
}

// checkBounds runs after the structural checks: it sizes the model and
// proves every accumulator of the step fits in int32 (SPEC.md §"Accumulator
// bounds").
func (s *Spec) checkBounds() error {
	p := s.Plan()
	if p.Params > MaxParams {
		return invalid("the model has %d parameters, more than %d", p.Params, MaxParams)
	}
	width := int64(s.Data.Train.Features)
	for _, l := range p.Linear {
		width += 2 * int64(l.Out)
	}
	if acts := width * int64(s.BatchSize); acts > MaxActivations {
		return invalid("batch_size × layer widths = %d activations, more than %d", acts, MaxActivations)
	}
	for _, l := range p.Linear {
		if l.Shift < 0 || l.Shift > maxShift {
			return invalid("layer %d: output shift %d (input frac %d + weight_frac %d - output frac %d) outside [0, %d]",
				l.Index, l.Shift, l.InFrac, s.Numeric.WeightFrac, l.OutFrac, maxShift)
		}
		for _, a := range l.Accumulators(p, s.BatchSize) {
			if a.Bound > math.MaxInt32 {
				return fmt.Errorf("%w: layer %d %s: |acc| ≤ %d > 2^31-1; lower the bit widths, the width or the batch", ErrOverflow, l.Index, a.Name, a.Bound)
			}
		}
	}
	return nil
}
