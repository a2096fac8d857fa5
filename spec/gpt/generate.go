package gpt

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/prng"
)

// MaxTemperature is the largest sampling temperature, in units of 2^−16
// (256.0).
const MaxTemperature = 1 << 24

// Generator continues text with a trained model: SPEC.md §20.17's
// deterministic integer sampling, the same bytes on every machine for the
// same state, prompt, seed and temperature.
type Generator struct {
	c  Config
	st *State
	tr *Trainer
}

// NewGenerator returns a generator for the model c with state st, which
// it reads but does not change.
func NewGenerator(c Config, st *State, k kernel.Kernel, threads int) (*Generator, error) {
	c.Batch = 1
	tr, err := NewTrainer(c, k, threads)
	if err != nil {
		return nil, err
	}
	if err := checkState(tr.params, st); err != nil {
		return nil, err
	}
	tr.quantizeWeights(st)
	return &Generator{c: c, st: st, tr: tr}, nil
}

// checkState verifies st has c's shapes.
func checkState(ps []Param, st *State) error {
	if st == nil {
		return fmt.Errorf("%w: no state", ErrConfig)
	}
	if len(st.W) != len(ps) || len(st.M) != len(ps) || len(st.V) != len(ps) {
		return fmt.Errorf("%w: state has %d parameters, the model %d", ErrConfig, len(st.W), len(ps))
	}
	for i, p := range ps {
		n := p.Rows * p.In
		if len(st.W[i]) != n || len(st.M[i]) != n || len(st.V[i]) != n {
			return fmt.Errorf("%w: parameter %s has the wrong size", ErrConfig, p.Name)
		}
		// A second moment is a mean of squares: 0 ≤ v ≤ 2^46 (SPEC.md §20.9).
		// Anything else comes from no valid step, and would reach Isqrt.
		for j, v := range st.V[i] {
			if v < 0 || v > MaxVar {
				return fmt.Errorf("%w: %s.v[%d] = %d outside [0, 2^46]", ErrConfig, p.Name, j, v)
			}
		}
	}
	return nil
}

// Logits returns the logits of the last position of context (1 ≤
// len(context) ≤ Context) and their exponent: the model's prediction of
// the next byte.
func (g *Generator) Logits(context []byte) ([]int64, int, error) {
	T := g.c.Context
	if len(context) < 1 || len(context) > T {
		return nil, 0, fmt.Errorf("%w: context of %d bytes, want 1 to %d", ErrConfig, len(context), T)
	}
	window := make([]byte, T) // positions past the context are never read by earlier ones
	copy(window, context)
	g.tr.forward(window)
	r := len(context) - 1
	return g.tr.logits[r*Vocab : (r+1)*Vocab], g.tr.logitsE(r), nil
}

// Sample picks the next byte from logits z at exponent e (SPEC.md §20.17):
// temperature 0 takes the largest logit (the lowest byte on ties);
// otherwise u_c = min(RoundDiv(min(ShiftRound((m − z_c)·94548, e), 2^32)·2^16, τ), 2^32),
// ε_c = Exp2NegQ15(u_c), r = Below(Derive(seed, "generate", k, 0).At(0), Σε),
// and the byte is the smallest c with ε_0 + … + ε_c > r.
func Sample(z []int64, e int, temperature int64, seed uint64, k int64) byte {
	initTables()
	m, arg := z[0], 0
	for c, v := range z {
		if v > m {
			m, arg = v, c
		}
	}
	if temperature == 0 {
		return byte(arg)
	}
	var ex [Vocab]int64
	var sum int64
	for c, v := range z {
		w := min(shiftRound((m-v)*log2eQ16, e), expCap)
		u := min(roundDiv(w<<16, temperature), expCap)
		ex[c] = exp2NegQ15(u)
		sum += ex[c]
	}
	r := int64(prng.Below(prng.Derive(seed, "generate", uint64(k), 0).At(0), uint64(sum)))
	var acc int64
	for c := range z {
		acc += ex[c]
		if acc > r {
			return byte(c)
		}
	}
	return byte(arg) // unreachable: acc reaches sum > r
}

// Generate returns n bytes continuing prompt: byte k is sampled (Sample,
// with index k) from the logits of the last min(Context, length) bytes of
// prompt and the bytes generated so far. temperature is in units of 2^−16
// (0: greedy).
func (g *Generator) Generate(prompt []byte, n int, seed uint64, temperature int64) ([]byte, error) {
	if len(prompt) < 1 {
		return nil, fmt.Errorf("%w: empty prompt", ErrConfig)
	}
	if n < 0 || temperature < 0 || temperature > MaxTemperature {
		return nil, fmt.Errorf("%w: %d bytes at temperature %d/2^16 (want ≥ 0 bytes, temperature 0 to 256)", ErrConfig, n, temperature)
	}
	text := append([]byte(nil), prompt...)
	for k := range n {
		ctx := text[max(0, len(text)-g.c.Context):]
		z, e, err := g.Logits(ctx)
		if err != nil {
			return nil, err
		}
		text = append(text, Sample(z, e, temperature, seed, int64(k)))
	}
	return text[len(prompt):], nil
}
