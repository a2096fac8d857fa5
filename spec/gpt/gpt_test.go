package gpt

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/prng"
)

func tinyConfig() Config {
	return Config{Context: 8, Dim: 16, Layers: 2, Heads: 2, FF: 32, Bits: 12, Batch: 2, Seed: 5,
		Beta1: Ratio{58982, 16}, Beta2: Ratio{62259, 16}, WeightDecay: Ratio{0, 16}, Eps: 1,
		LRShift: 40, LR: []LRPoint{{0, 1 << 29}}}
}

func randomBatch(c Config, seed uint64) Batch {
	s := prng.Derive(seed, "test.batch", 0, 0)
	b := Batch{Tokens: make([]byte, c.Tokens()), Targets: make([]byte, c.Tokens())}
	for i := range b.Tokens {
		b.Tokens[i] = byte(s.At(uint64(2 * i)))
		b.Targets[i] = byte(s.At(uint64(2*i + 1)))
	}
	return b
}

// TestForwardMatchesFloat: the integer logits and loss agree with the
// float64 model of the same weights to the precision of Bits-bit operands.
func TestForwardMatchesFloat(t *testing.T) {
	t.Parallel()
	c := tinyConfig()
	st := c.Init()
	tr, err := NewTrainer(c, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(c, 1)
	sum, err := tr.Loss(st, b, c.Batch)
	if err != nil {
		t.Fatal(err)
	}
	fl, logits := newFloatModel(c, st).loss(b.Tokens, b.Targets)
	il := float64(sum) / 65536 / float64(c.Tokens())
	if math.Abs(il-fl) > 0.01*fl {
		t.Errorf("loss: integer %.5f, float %.5f", il, fl)
	}
	var maxErr, maxAbs float64
	for r, z := range logits {
		el := tr.logitsE(r)
		for j, v := range z {
			got := math.Ldexp(float64(tr.logits[r*Vocab+j]), el)
			maxErr = math.Max(maxErr, math.Abs(got-v))
			maxAbs = math.Max(maxAbs, math.Abs(v))
		}
	}
	if maxErr > 0.02*maxAbs {
		t.Errorf("logits: max error %.5g of max %.5g", maxErr, maxAbs)
	}
	t.Logf("loss integer %.6f float %.6f; logits max error %.3g of %.3g", il, fl, maxErr, maxAbs)
}

// TestGradientsMatchFloat: the integer gradient of every parameter tensor
// agrees with central differences of the float64 model.
func TestGradientsMatchFloat(t *testing.T) {
	t.Parallel()
	c := tinyConfig()
	st := c.Init()
	tr, err := NewTrainer(c, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(c, 2)
	tr.quantizeWeights(st)
	tr.forward(b.Tokens)
	tr.loss(b.Targets, tr.n)
	tr.backward(b.Tokens)
	fm := newFloatModel(c, st)
	for p, pr := range tr.params {
		// Compare the gradient vectors of each tensor on a sample of entries by cosine and scale.
		var dot, ni, nf float64
		s := prng.Derive(9, "test.grad", uint64(p), 0)
		idx := map[int]bool{}
		if p == pTok() {
			for _, tok := range b.Tokens[:4] {
				idx[int(tok)*c.Dim+int(s.At(uint64(tok))%uint64(c.Dim))] = true
			}
		}
		for k := 0; len(idx) < 12; k++ {
			idx[int(s.At(uint64(100+k))%uint64(pr.Rows*pr.In))] = true
		}
		for j := range idx {
			gi := math.Ldexp(float64(tr.grd[p][j]), tr.ge[p]) / float64(c.Tokens())
			gf := fm.grad(p, j, b.Tokens, b.Targets)
			dot += gi * gf
			ni += gi * gi
			nf += gf * gf
		}
		cos := dot / math.Sqrt(ni*nf)
		ratio := math.Sqrt(ni / nf)
		t.Logf("%-20s cos %.4f norm ratio %.4f", pr.Name, cos, ratio)
		if cos < 0.98 || ratio < 0.95 || ratio > 1.05 {
			t.Errorf("%s: integer gradient off the float one: cos %.4f, norm ratio %.4f", pr.Name, cos, ratio)
		}
	}
}

// TestForwardIsCausalAndRowLocal: a position's logits depend only on the
// bytes up to it in its own window — changing later bytes, or another
// window of the batch, changes none of them (SPEC.md §20.11). This is what
// lets a teacher-forced pass reproduce generation.
func TestForwardIsCausalAndRowLocal(t *testing.T) {
	t.Parallel()
	c := tinyConfig()
	c.Batch = 3
	st := c.Init()
	tr, err := NewTrainer(c, kernel.Best(), 2)
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(c, 4)
	logitsOf := func(tokens []byte) ([]int64, []int) {
		tr.quantizeWeights(st)
		tr.forward(tokens)
		es := make([]int, tr.n)
		for r := range es {
			es[r] = tr.logitsE(r)
		}
		return append([]int64(nil), tr.logits...), es
	}
	want, wantE := logitsOf(b.Tokens)
	const cut = 5 // change window 1 from position 5 on, and all of window 2
	mod := append([]byte(nil), b.Tokens...)
	for i := cut; i < c.Context; i++ {
		mod[c.Context+i] ^= 0x5a
	}
	for i := range c.Context {
		mod[2*c.Context+i] += 17
	}
	got, gotE := logitsOf(mod)
	for r := range tr.n {
		w, pos := r/c.Context, r%c.Context
		if w == 2 || (w == 1 && pos >= cut) {
			continue
		}
		if gotE[r] != wantE[r] || !slices.Equal(got[r*Vocab:(r+1)*Vocab], want[r*Vocab:(r+1)*Vocab]) {
			t.Fatalf("window %d position %d: logits changed when only later bytes or other windows did", w, pos)
		}
	}
}

// TestGenerateDeterministic: the same seed gives the same bytes, another
// seed (at a temperature) other bytes, greedy decoding no randomness, and
// the logits of a context equal those of the same positions in a training
// batch's window (teacher forcing reproduces generation).
func TestGenerateDeterministic(t *testing.T) {
	t.Parallel()
	c := tinyConfig()
	st := c.Init()
	g, err := NewGenerator(c, st, kernel.Best(), 2)
	if err != nil {
		t.Fatal(err)
	}
	prompt := []byte("Hello")
	a, err := g.Generate(prompt, 20, 7, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := g.Generate(prompt, 20, 7, 1<<16)
	o, _ := g.Generate(prompt, 20, 8, 1<<16)
	if !slices.Equal(a, b) || slices.Equal(a, o) {
		t.Fatalf("seed 7 twice: %q, %q; seed 8: %q", a, b, o)
	}
	g1, _ := g.Generate(prompt, 5, 1, 0)
	g2, _ := g.Generate(prompt, 5, 2, 0)
	if !slices.Equal(g1, g2) {
		t.Fatalf("greedy decoding depends on the seed: %q vs %q", g1, g2)
	}
	tr, err := NewTrainer(c, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	batch := randomBatch(c, 6)
	tr.quantizeWeights(st)
	tr.forward(batch.Tokens)
	for L := 1; L <= c.Context; L++ {
		z, e, err := g.Logits(batch.Tokens[c.Context : c.Context+L]) // window 1
		if err != nil {
			t.Fatal(err)
		}
		r := c.Context + L - 1
		if e != tr.logitsE(r) || !slices.Equal(z, tr.logits[r*Vocab:(r+1)*Vocab]) {
			t.Fatalf("context of %d bytes: logits differ from the batch forward's", L)
		}
	}
	if _, err := g.Generate(nil, 3, 1, 0); err == nil {
		t.Error("empty prompt accepted")
	}
	if _, err := g.Generate(prompt, 3, 1, MaxTemperature+1); err == nil {
		t.Error("temperature above 256 accepted")
	}
}

// TestLRAtExact: the schedule interpolates exactly even where
// (v1 − v0)·(t − s0) passes 2^63.
func TestLRAtExact(t *testing.T) {
	t.Parallel()
	c := tinyConfig()
	c.LR = []LRPoint{{0, 0}, {1<<40 - 10, 1<<30 - 1}, {1 << 40, 5}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ t, want int64 }{
		{0, 0}, {(1<<40 - 10) / 2, (1<<30 - 1) / 2}, {1<<40 - 11, 1<<30 - 2}, {1<<40 - 10, 1<<30 - 1},
		{1<<40 - 5, 1<<30 - 1 - (1<<30-1-5)*5/10}, {1 << 41, 5},
	} {
		if got := c.LRAt(tc.t); got != tc.want {
			t.Errorf("LRAt(%d) = %d, want %d", tc.t, got, tc.want)
		}
	}
	big := tinyConfig()
	big.Context, big.Batch, big.Dim, big.Heads, big.FF, big.Layers = 4096, 64, 512, 4, 2048, 8
	if err := big.Validate(); err == nil {
		t.Error("a step saving more than 2^28 activations was accepted")
	}
}

// TestStepRefusesHostileState: a state of the wrong shape, or with a
// second moment no step produces (negative, or above 2^46), is refused
// with an error before anything changes — never a panic in Isqrt.
func TestStepRefusesHostileState(t *testing.T) {
	t.Parallel()
	c := tinyConfig()
	tr, err := NewTrainer(c, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	b := randomBatch(c, 1)
	for name, edit := range map[string]func(*State){
		"negative v":   func(st *State) { st.V[3][0] = -1 },
		"v above 2^46": func(st *State) { st.V[0][5] = MaxVar + 1 },
		"short W":      func(st *State) { st.W[2] = st.W[2][:1] },
		"no params":    func(st *State) { st.W, st.M, st.V = nil, nil, nil },
	} {
		st := c.Init()
		edit(st)
		before := st.Clone()
		if _, err := tr.Step(st, b); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := tr.Loss(st, b, 1); err == nil {
			t.Errorf("%s: Loss accepted", name)
		}
		if st.Step != before.Step || (len(st.W) > 0 && !slices.Equal(st.W[0], before.W[0])) {
			t.Errorf("%s: state changed", name)
		}
	}
	if _, err := tr.Step(nil, b); err == nil {
		t.Error("nil state accepted")
	}
}

// TestRandomConfigValid: every configuration RandomConfig draws validates,
// and its batches have the configuration's size.
func TestRandomConfigValid(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		c := RandomConfig(r)
		if err := c.Validate(); err != nil {
			t.Fatalf("draw %d: %+v: %v", i, c, err)
		}
		if b := RandomBatch(r, c); len(b.Tokens) != c.Tokens() || len(b.Targets) != c.Tokens() {
			t.Fatalf("draw %d: a batch of %d/%d bytes for %d tokens", i, len(b.Tokens), len(b.Targets), c.Tokens())
		}
	}
}
