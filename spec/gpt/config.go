package gpt

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrConfig: a model or optimizer configuration outside the bounds of
// SPEC.md version 2.
var ErrConfig = errors.New("gpt: invalid configuration")

// Vocab is the vocabulary: bytes.
const Vocab = 256

// Ratio is Num / 2^Shift.
type Ratio struct {
	Num   int64
	Shift int
}

// LRPoint is a knot of the piecewise-linear learning rate.
type LRPoint struct {
	Step  int64
	Value int64
}

// Config is a GPT and its training: the model's sizes, the operand bits,
// the batch and AdamW's constants.
type Config struct {
	Context, Dim, Layers, Heads, FF int
	// Bits is the magnitude bits of every matrix-product operand.
	Bits  int
	Batch int
	Seed  uint64

	Beta1, Beta2, WeightDecay Ratio
	// Eps is AdamW's ε in units of 2^−(VarFrac/2).
	Eps int64
	// LRShift and LR: the learning rate at step t is LR(t)/2^LRShift.
	LRShift int
	LR      []LRPoint

	// GPT2 selects GPT-2 blocks (SPEC.md §22): LayerNorm with gain and
	// bias, GELU, biased products and a head tied to tok_emb. Such a model
	// is served (forward passes: Generator, Positions, Trainer.Loss), never
	// trained: Trainer.Step refuses it with ErrServedOnly.
	GPT2 bool
}

// ErrServedOnly: a model of GPT-2 blocks (SPEC.md §22) is served, not
// trained.
var ErrServedOnly = errors.New("gpt: GPT-2 blocks (SPEC.md §22) are served, not trained: this model has no training step")

// Limits of version 2 (each keeps an accumulator of SPEC.md's bounds
// table inside int64 with room to spare).
const (
	MaxContext = 4096
	MaxDim     = 4096
	MaxHeadDim = 128
	MaxFF      = 16384
	MaxLayers  = 64
	MaxTokens  = 1 << 20 // batch × context
	MinBits    = 8
	MaxBits    = 12
	// MaxActivations bounds the values a step saves for its backward pass,
	// Layers × (N × (3·Dim + FF) + Batch × Heads × Context²), so that any
	// accepted job's step fits a solver's memory (a few GiB).
	MaxActivations = 1 << 28
)

// HeadDim is Dim / Heads.
func (c *Config) HeadDim() int { return c.Dim / c.Heads }

// Tokens is the number of positions a step trains on: Batch × Context.
func (c *Config) Tokens() int { return c.Batch * c.Context }

// Validate checks every bound of SPEC.md's GPT rules.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Context < 1 || c.Context > MaxContext:
		return bad("context %d outside [1, %d]", c.Context, MaxContext)
	case c.Dim < 1 || c.Dim > MaxDim:
		return bad("d_model %d outside [1, %d]", c.Dim, MaxDim)
	case c.Heads < 1 || c.Dim%c.Heads != 0:
		return bad("heads %d must divide d_model %d", c.Heads, c.Dim)
	case c.HeadDim() > MaxHeadDim:
		return bad("head dimension %d (d_model/heads) above %d", c.HeadDim(), MaxHeadDim)
	case c.FF < 1 || c.FF > MaxFF:
		return bad("d_ff %d outside [1, %d]", c.FF, MaxFF)
	case c.Layers < 1 || c.Layers > MaxLayers:
		return bad("layers %d outside [1, %d]", c.Layers, MaxLayers)
	case c.Batch < 1 || c.Tokens() > MaxTokens:
		return bad("batch %d × context %d outside [1, %d]", c.Batch, c.Context, MaxTokens)
	case c.Bits < MinBits || c.Bits > MaxBits:
		return bad("bits %d outside [%d, %d]", c.Bits, MinBits, MaxBits)
	}
	n := int64(c.Tokens())
	if a := int64(c.Layers) * (n*int64(3*c.Dim+c.FF) + int64(c.Batch*c.Heads)*int64(c.Context)*int64(c.Context)); a > MaxActivations {
		return bad("a step would save %d activations (layers × (batch·context·(3·d_model + d_ff) + batch·heads·context²)), more than 2^28: lower the batch, the context or the model's size", a)
	}
	for _, r := range []struct {
		name string
		r    Ratio
	}{{"beta1", c.Beta1}, {"beta2", c.Beta2}, {"weight_decay", c.WeightDecay}} {
		if r.r.Shift < 0 || r.r.Shift > 16 || r.r.Num < 0 || r.r.Num >= 1<<r.r.Shift {
			return bad("%s %d/2^%d: shift in [0, 16] and 0 ≤ num < 2^shift", r.name, r.r.Num, r.r.Shift)
		}
	}
	if c.Eps < 1 || c.Eps > 1<<30 {
		return bad("eps %d outside [1, 2^30]", c.Eps)
	}
	if c.LRShift < 0 || c.LRShift > 62 {
		return bad("lr_shift %d outside [0, 62]", c.LRShift)
	}
	if len(c.LR) < 1 || len(c.LR) > 64 || c.LR[0].Step != 0 {
		return bad("1–64 learning-rate knots, the first at step 0")
	}
	for i, p := range c.LR {
		if p.Value < 0 || p.Value > 1<<30-1 {
			return bad("learning rate %d outside [0, 2^30 − 1]", p.Value)
		}
		if i > 0 && (p.Step <= c.LR[i-1].Step || p.Step > 1<<40) {
			return bad("learning-rate knot steps must increase and be ≤ 2^40")
		}
	}
	return nil
}

// LRAt returns LR(t): linear between knots, the last value after the last.
func (c *Config) LRAt(t int64) int64 {
	k := c.LR
	for i := len(k) - 1; i >= 0; i-- {
		if t >= k[i].Step {
			if i == len(k)-1 {
				return k[i].Value
			}
			s0, v0, s1, v1 := k[i].Step, k[i].Value, k[i+1].Step, k[i+1].Value
			// ⌊|v1 − v0|·(t − s0) / (s1 − s0)⌋ exactly: the product can pass 2^63.
			dv := v1 - v0
			if dv < 0 {
				dv = -dv
			}
			hi, lo := bits.Mul64(uint64(dv), uint64(t-s0))
			q, _ := bits.Div64(hi, lo, uint64(s1-s0))
			if v1 >= v0 {
				return v0 + int64(q)
			}
			return v0 - int64(q)
		}
	}
	return k[0].Value
}

// Param is one parameter tensor of the model.
type Param struct {
	Name     string
	Rows, In int // shape [Rows, In]
	// Kind says how it is initialised.
	Embedding bool
	// Vector marks a gain or a bias of GPT-2 blocks (SPEC.md §22): one
	// row of Q16 values (int32, VectorFrac fractional bits), read as is.
	Vector bool
}

// Params lists the parameters in state order: SPEC.md §20.1's table, or
// §22.1's for GPT-2 blocks.
func (c *Config) Params() []Param {
	d := c.Dim
	ps := []Param{{Name: "tok_emb", Rows: Vocab, In: d, Embedding: true}, {Name: "pos_emb", Rows: c.Context, In: d, Embedding: true}}
	matrix := func(name string, rows, in int) Param { return Param{Name: name, Rows: rows, In: in} }
	vector := func(name string, n int) Param { return Param{Name: name, Rows: 1, In: n, Vector: true} }
	for l := range c.Layers {
		p := fmt.Sprintf("blocks.%d.", l)
		if c.GPT2 {
			ps = append(ps,
				vector(p+"ln1.gain", d), vector(p+"ln1.bias", d),
				matrix(p+"attn.qkv", 3*d, d), vector(p+"attn.qkv.bias", 3*d),
				matrix(p+"attn.out", d, d), vector(p+"attn.out.bias", d),
				vector(p+"ln2.gain", d), vector(p+"ln2.bias", d),
				matrix(p+"mlp.up", c.FF, d), vector(p+"mlp.up.bias", c.FF),
				matrix(p+"mlp.down", d, c.FF), vector(p+"mlp.down.bias", d))
			continue
		}
		ps = append(ps,
			matrix(p+"attn.qkv", 3*d, d),
			matrix(p+"attn.out", d, d),
			matrix(p+"mlp.up", c.FF, d),
			matrix(p+"mlp.down", d, c.FF))
	}
	if c.GPT2 {
		return append(ps, vector("ln_f.gain", d), vector("ln_f.bias", d)) // the head is tok_emb (tied)
	}
	return append(ps, matrix("head", Vocab, d))
}

// ParamCount is the number of trained values.
func (c *Config) ParamCount() int64 {
	var n int64
	for _, p := range c.Params() {
		n += int64(p.Rows) * int64(p.In)
	}
	return n
}

// StepMACs is the multiply-accumulates of one training step's products:
// the forward pass's (the four matrices of every layer and the head over
// N positions, and per layer the B·H score and value products of T×T×Dh)
// three times, for the forward pass and the two products of each
// backward. It prices a job (SPEC.md §19); the elementwise operators are
// not counted.
func (c *Config) StepMACs() int64 {
	n, d, f := int64(c.Tokens()), int64(c.Dim), int64(c.FF)
	T := int64(c.Context)
	linear := int64(c.Layers)*n*(4*d*d+2*d*f) + n*Vocab*d
	attn := int64(c.Layers) * int64(c.Batch) * T * T * d * 2
	return 3 * (linear + attn)
}
