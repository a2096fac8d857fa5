package gpt

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/beluga-compute/beluga/spec/kernel"
)

func geluF(u float64) float64 {
	return 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
}

// TestGELUFloat: the integer GELU is GPT-2's tanh GELU to within a few
// units of 2^−16 (σ is Q15), and exactly u or 0 past the clamp.
func TestGELUFloat(t *testing.T) {
	t.Parallel()
	initTables()
	for u := int64(-20 << 16); u <= 20<<16; u += 977 {
		got := float64(GELU(u)) / (1 << 16)
		want := geluF(float64(u) / (1 << 16))
		if tol := 3e-4 + 4e-5*math.Abs(want); math.Abs(got-want) > tol {
			t.Fatalf("GELU(%d/2^16) = %g, float %g", u, got, want)
		}
	}
	for _, u := range []int64{16 << 16, 17 << 16, math.MaxInt32} {
		if g := GELU(u); g != u {
			t.Errorf("GELU(%d) = %d, want u", u, g)
		}
		if g := GELU(-u); g != 0 {
			t.Errorf("GELU(%d) = %d, want 0", -u, g)
		}
	}
}

// TestLayerNormRowFloat: LayerNormRow is LayerNorm (ε = 1e−5) with gain
// and bias to within the Q16 output's rounding.
func TestLayerNormRowFloat(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, scale := range []float64{1e-3, 1, 300, 30000} {
		const d = 64
		x, g, b, y := make([]int32, d), make([]int32, d), make([]int32, d), make([]int32, d)
		xf := make([]float64, d)
		for i := range x {
			xf[i] = (rng.NormFloat64() + 0.5) * scale
			x[i] = int32(math.Round(xf[i] * (1 << 16)))
			xf[i] = float64(x[i]) / (1 << 16)
			g[i] = int32(math.Round((1 + 0.3*rng.NormFloat64()) * (1 << 16)))
			b[i] = int32(math.Round(0.2 * rng.NormFloat64() * (1 << 16)))
		}
		LayerNormRow(y, x, g, b)
		var mu, v float64
		for _, f := range xf {
			mu += f / d
		}
		for _, f := range xf {
			v += (f - mu) * (f - mu) / d
		}
		for i := range y {
			want := (xf[i]-mu)/math.Sqrt(v+1e-5)*float64(g[i])/(1<<16) + float64(b[i])/(1<<16)
			// μ is rounded to 2^−16: at scale 10^−3 (σ ≈ 65 units) that is
			// up to 1% of a normalised value.
			tol := 1e-3 + 0.5/(1<<16)/math.Sqrt(v+1e-5)*math.Abs(float64(g[i]))/(1<<16)
			if got := float64(y[i]) / (1 << 16); math.Abs(got-want) > tol {
				t.Fatalf("scale %g: y[%d] = %g, float %g", scale, i, got, want)
			}
		}
	}
}

// gpt2Config is a small model of GPT-2 blocks for tests.
func gpt2Config() Config {
	return Config{Context: 32, Dim: 32, Layers: 2, Heads: 2, FF: 64, Bits: 12, Batch: 1, Seed: 9,
		Beta1: Ratio{58982, 16}, Beta2: Ratio{62259, 16}, WeightDecay: Ratio{0, 16}, Eps: 1,
		LRShift: 30, LR: []LRPoint{{0, 1000}}, GPT2: true}
}

// gpt2Random fills a state of c with GPT-2-like random values: matrices
// of scale 1/√in, embeddings of standard deviation 0.5, gains near 1 and
// biases near 0.
func gpt2Random(c Config, seed uint64) *State {
	rng := rand.New(rand.NewPCG(seed, 7))
	st := c.Init()
	for i, p := range c.Params() {
		for j := range st.W[i] {
			var f float64
			switch {
			case p.Vector && len(p.Name) > 5 && p.Name[len(p.Name)-5:] == ".gain":
				f = 1 + 0.2*rng.NormFloat64()
			case p.Vector:
				f = 0.1 * rng.NormFloat64()
			case p.Embedding:
				f = 0.5 * rng.NormFloat64()
			default:
				f = 1.5 * rng.NormFloat64() / math.Sqrt(float64(p.In))
			}
			frac := MasterFrac
			if p.Vector {
				frac = VectorFrac
			}
			st.W[i][j] = int32(math.Round(f * float64(int64(1)<<frac)))
		}
	}
	return st
}

// gpt2Float is the float64 model of GPT-2 blocks on st's values: the
// logits of every position of one window.
func gpt2Float(c Config, st *State, text []byte) [][]float64 {
	ps := c.Params()
	w := make([][]float64, len(ps))
	for i, p := range ps {
		frac := MasterFrac
		if p.Vector {
			frac = VectorFrac
		}
		w[i] = make([]float64, len(st.W[i]))
		for j, v := range st.W[i] {
			w[i][j] = float64(v) / float64(int64(1)<<frac)
		}
	}
	d, H, dh, T := c.Dim, c.Heads, c.HeadDim(), len(text)
	ln := func(x, g, b []float64) []float64 {
		var mu, v float64
		for _, f := range x {
			mu += f / float64(d)
		}
		for _, f := range x {
			v += (f - mu) * (f - mu) / float64(d)
		}
		y := make([]float64, d)
		for i := range y {
			y[i] = (x[i]-mu)/math.Sqrt(v+1e-5)*g[i] + b[i]
		}
		return y
	}
	lin := func(p int, rows, in int, x []float64) []float64 {
		y := matvec(w[p], rows, in, x)
		for i := range y {
			y[i] += w[p+1][i]
		}
		return y
	}
	var ix gpt2Layout
	x := make([][]float64, T)
	for i := range T {
		x[i] = make([]float64, d)
		for k := range d {
			x[i][k] = w[0][int(text[i])*d+k] + w[1][i*d+k]
		}
	}
	for l := range c.Layers {
		q, kk, v := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for i := range T {
			qkv := lin(ix.qkv(l), 3*d, d, ln(x[i], w[ix.ln1g(l)], w[ix.ln1b(l)]))
			q[i], kk[i], v[i] = qkv[:d], qkv[d:2*d], qkv[2*d:]
		}
		for i := range T {
			o := make([]float64, d)
			for h := range H {
				s := make([]float64, i+1)
				m := math.Inf(-1)
				for j := 0; j <= i; j++ {
					var dot float64
					for k := range dh {
						dot += q[i][h*dh+k] * kk[j][h*dh+k]
					}
					s[j] = dot / math.Sqrt(float64(dh))
					m = math.Max(m, s[j])
				}
				var z float64
				for j := range s {
					s[j] = math.Exp(s[j] - m)
					z += s[j]
				}
				for j := range s {
					for k := range dh {
						o[h*dh+k] += s[j] / z * v[j][h*dh+k]
					}
				}
			}
			a := lin(ix.out(l), d, d, o)
			for k := range d {
				x[i][k] += a[k]
			}
		}
		for i := range T {
			u := lin(ix.up(l), c.FF, d, ln(x[i], w[ix.ln2g(l)], w[ix.ln2b(l)]))
			for k := range u {
				u[k] = geluF(u[k])
			}
			m := lin(ix.down(l), d, c.FF, u)
			for k := range d {
				x[i][k] += m[k]
			}
		}
	}
	out := make([][]float64, T)
	for i := range T {
		out[i] = matvec(w[0], Vocab, d, ln(x[i], w[ix.lnfg(c.Layers)], w[ix.lnfb(c.Layers)]))
	}
	return out
}

// TestGPT2ForwardFloat: the integer forward pass of GPT-2 blocks tracks
// the float64 model on the same values: the likeliest next byte agrees at
// most positions and the KL divergence is small.
func TestGPT2ForwardFloat(t *testing.T) {
	t.Parallel()
	c := gpt2Config()
	st := gpt2Random(c, 3)
	g, err := NewGenerator(c, st, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	text := []byte("It was the best of times, it was")[:c.Context]
	want := gpt2Float(c, st, text)
	agree, kl := 0, 0.0
	err = g.Positions(text, 0, func(r int, z []int64, e int) error {
		zi := make([]float64, Vocab)
		for k, v := range z {
			zi[k] = math.Ldexp(float64(v), e)
		}
		if argmax(zi) == argmax(want[r]) {
			agree++
		}
		kl += klDiv(want[r], zi)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kl /= float64(len(text))
	t.Logf("top-1 agreement %d/%d, mean KL %.5f nats", agree, len(text), kl)
	if agree < len(text)*9/10 || kl > 0.01 {
		t.Fatalf("integer vs float: top-1 agreement %d/%d, mean KL %g nats", agree, len(text), kl)
	}
}

func argmax(z []float64) int {
	k := 0
	for i, v := range z {
		if v > z[k] {
			k = i
		}
	}
	return k
}

// klDiv is KL(softmax(p) ‖ softmax(q)) in nats.
func klDiv(p, q []float64) float64 {
	lse := func(z []float64) float64 {
		m := z[argmax(z)]
		var s float64
		for _, v := range z {
			s += math.Exp(v - m)
		}
		return m + math.Log(s)
	}
	lp, lq := lse(p), lse(q)
	var kl float64
	for i := range p {
		a := p[i] - lp
		kl += math.Exp(a) * (a - (q[i] - lq))
	}
	return kl
}

// TestGPT2StepRefused: a model of GPT-2 blocks is served, not trained.
func TestGPT2StepRefused(t *testing.T) {
	t.Parallel()
	c := gpt2Config()
	tr, err := NewTrainer(c, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	b := Batch{Tokens: make([]byte, c.Tokens()), Targets: make([]byte, c.Tokens())}
	if _, err := tr.Step(c.Init(), b); !errors.Is(err, ErrServedOnly) {
		t.Fatalf("Step on GPT-2 blocks: %v, want ErrServedOnly", err)
	}
	if _, err := tr.Loss(gpt2Random(c, 1), b, 1); err != nil {
		t.Fatalf("Loss (forward only) on GPT-2 blocks: %v", err)
	}
}

// TestGPT2Causal: as §20.11's, the forward pass of GPT-2 blocks is causal:
// the logits at a position of a pass over a text equal those of a pass
// over the text cut after it.
func TestGPT2Causal(t *testing.T) {
	t.Parallel()
	c := gpt2Config()
	st := gpt2Random(c, 5)
	g, err := NewGenerator(c, st, kernel.Generic(), 2)
	if err != nil {
		t.Fatal(err)
	}
	text := []byte("causal passes agree")
	full := map[int][]int64{}
	_ = g.Positions(text, 0, func(r int, z []int64, e int) error {
		full[r] = append([]int64{int64(e)}, z...)
		return nil
	})
	for _, r := range []int{0, 5, len(text) - 1} {
		z, e, err := g.Logits(text[:r+1])
		if err != nil {
			t.Fatal(err)
		}
		if int64(e) != full[r][0] || !equal64(z, full[r][1:]) {
			t.Fatalf("position %d: the cut pass differs from the whole pass", r)
		}
	}
}

func equal64(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
