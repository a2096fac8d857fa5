package gpt

import "math/rand/v2"

// RandomConfig draws a small valid configuration for conformance checks
// between implementations (the reference, the engine, the Vulkan
// backend): 1–3 heads of width 1–8, 1–3 layers, an MLP width of 1–24, a
// context of 1–12 and a batch of 1–3 windows, 8–12-bit operands, random
// AdamW constants and ε, and 1–4 random learning-rate knots. Small sizes
// keep the reference fast; random constants reach the optimizer's
// rounding and clamping branches.
func RandomConfig(r *rand.Rand) Config {
	heads, dh := 1+r.IntN(3), 1+r.IntN(8)
	ratio := func() Ratio {
		s := r.IntN(17)
		return Ratio{Num: r.Int64N(int64(1) << s), Shift: s}
	}
	c := Config{
		Context: 1 + r.IntN(12), Dim: heads * dh, Heads: heads, Layers: 1 + r.IntN(3), FF: 1 + r.IntN(24),
		Bits: 8 + r.IntN(5), Batch: 1 + r.IntN(3), Seed: r.Uint64(),
		Beta1: ratio(), Beta2: ratio(), WeightDecay: ratio(),
		Eps:     max(1, r.Int64N(1<<(1+r.IntN(30)))),
		LRShift: 10 + r.IntN(30),
	}
	step := int64(0)
	for range 1 + r.IntN(4) {
		c.LR = append(c.LR, LRPoint{Step: step, Value: r.Int64N(1 << (1 + r.IntN(30)))})
		step += 1 + r.Int64N(3)
	}
	return c
}

// RandomBatch draws a batch of c's size with uniformly random tokens and
// targets.
func RandomBatch(r *rand.Rand, c Config) Batch {
	b := Batch{Tokens: make([]byte, c.Tokens()), Targets: make([]byte, c.Tokens())}
	for i := range b.Tokens {
		b.Tokens[i], b.Targets[i] = byte(r.IntN(256)), byte(r.IntN(256))
	}
	return b
}
