// Package ref is the reference step function: SPEC.md §"The training step"
// written as plainly as possible, with int64 arithmetic everywhere and no
// attention to speed. It is the yardstick the fast engine (spec/engine) is
// tested against, and what a dispute referee recomputes.
//
// Every operation follows SPEC.md section by section; the comments name the
// section. No floating point is used.
package ref

import (
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/fixed"
)

// Constants of the softmax cross-entropy (SPEC.md §"Loss").
const (
	ProbFrac = 15    // probabilities are Q15
	Log2EQ16 = 94548 // round(log2(e)·2^16)
	Ln2Q16   = 45426 // round(ln(2)·2^16)
)

// Forward is what a forward pass leaves for the backward pass.
type Forward struct {
	Inputs [][][]int64 // per linear layer: its input [batch][in]
	Pre    [][][]int64 // per linear layer: its saturated output before relu [batch][out]
	WQ     [][][]int64 // per linear layer: the quantised weights [out][in]
	Logits [][]int64   // the last layer's output [batch][classes]
}

// QuantizeWeight is SPEC.md §"Quantised weights": a master weight in
// forward format.
func QuantizeWeight(n *spec.Numeric, p *spec.Plan, w int32) int64 {
	return clamp(siteQuantize, fixed.RoundShift(int64(w), uint(n.MasterFrac-n.WeightFrac)), -p.WMax, p.WMax)
}

// Saturation sites of SPEC.md §8, for tests that check a vector drives
// every clamp and saturation (ref's tests set saturated; nil elsewhere).
const (
	siteQuantize = "quantize"  // §8.3 wq = Clamp(RoundShift(w), ±W)
	siteForward  = "forward"   // §8.3 z = Clamp(RoundShift(acc, S), ±OutMax)
	siteLossGrad = "loss grad" // §8.4 g = Clamp(RoundShift(p − y, ·), ±G)
	siteBackward = "backward"  // §8.5 Clamp(RoundShift(dx, s), ±G)
	siteScale    = "scale"     // §8.6 u = Scale(d·LR, k) saturates
	siteMomentum = "momentum"  // §8.6 v = Sat32(…)
	siteMaster   = "master"    // §8.6 x = Clamp(x − v, ±M)
)

var saturated func(site string)

// clamp is fixed.Clamp that reports when it changes x.
func clamp(site string, x, lo, hi int64) int64 {
	c := fixed.Clamp(x, lo, hi)
	if c != x && saturated != nil {
		saturated(site)
	}
	return c
}

// QuantizeBias is SPEC.md §"Quantised weights": a master bias in the
// accumulator format of its layer (InFrac + WeightFrac fractional bits).
func QuantizeBias(n *spec.Numeric, l *spec.LinearPlan, b int32) int64 {
	return fixed.RoundShift(int64(b), uint(n.MasterFrac-l.InFrac-n.WeightFrac))
}

// RunForward computes the forward pass of batch x (SPEC.md §"Forward").
func RunForward(s *spec.Spec, st *spec.State, x [][]uint8) *Forward {
	p := s.Plan()
	n := &s.Numeric
	f := &Forward{}
	a := make([][]int64, len(x))
	for b, sample := range x {
		a[b] = make([]int64, len(sample))
		for i, v := range sample {
			a[b][i] = int64(v) // input value v/256: InputFrac = 8
		}
	}
	for j, l := range p.Linear {
		w, bias := st.Layer(j, spec.TensorWeight), st.Layer(j, spec.TensorBias)
		wq := make([][]int64, l.Out)
		for o := range wq {
			wq[o] = make([]int64, l.In)
			for i := range wq[o] {
				wq[o][i] = QuantizeWeight(n, &p, w[o*l.In+i])
			}
		}
		z := make([][]int64, len(a))
		next := make([][]int64, len(a))
		for b := range a {
			z[b] = make([]int64, l.Out)
			next[b] = make([]int64, l.Out)
			for o := range l.Out {
				acc := QuantizeBias(n, &l, bias[o])
				for i := range l.In {
					acc += a[b][i] * wq[o][i]
				}
				z[b][o] = clamp(siteForward, fixed.RoundShift(acc, uint(l.Shift)), -l.OutMax, l.OutMax)
				next[b][o] = z[b][o]
				if l.ReLU {
					next[b][o] = max(z[b][o], 0)
				}
			}
		}
		f.Inputs = append(f.Inputs, a)
		f.Pre = append(f.Pre, z)
		f.WQ = append(f.WQ, wq)
		a = next
	}
	f.Logits = a
	return f
}

// LossGrad is SPEC.md §"Loss": for one sample's logits and label it returns
// the logit gradient (GradBits magnitude bits, exponent -GradBits) and the
// cross-entropy loss in Q16.
func LossGrad(n *spec.Numeric, logits []int64, label int) (grad []int64, lossQ16 int64) {
	m := logits[0]
	for _, v := range logits {
		m = max(m, v)
	}
	e := make([]int64, len(logits))
	var sum int64
	for j, v := range logits {
		u := fixed.RoundShift((m-v)*Log2EQ16, uint(n.LogitFrac))
		e[j] = fixed.Exp2NegQ15(u)
		sum += e[j]
	}
	gmax := int64(1)<<n.GradBits - 1
	grad = make([]int64, len(logits))
	for j := range logits {
		prob := (e[j]<<ProbFrac + sum/2) / sum
		if j == label {
			prob -= 1 << ProbFrac
		}
		grad[j] = clamp(siteLossGrad, fixed.RoundShift(prob, uint(ProbFrac-n.GradBits)), -gmax, gmax)
	}
	lossQ16 = fixed.RoundShift(Ln2Q16*(fixed.Log2Q16(uint64(sum))-ProbFrac<<16), 16)
	lossQ16 += shift(m-logits[label], 16-n.LogitFrac)
	return grad, lossQ16
}

// shift returns x·2^k for k ≥ 0 and RoundShift(x, -k) for k < 0.
func shift(x int64, k int) int64 {
	if k >= 0 {
		return x << uint(k)
	}
	return fixed.RoundShift(x, uint(-k))
}

// Step applies step t to st in place (SPEC.md §"The training step") and
// returns the batch's summed loss in Q16. x and y are the batch's samples
// and labels in the order the Sampler gives.
func Step(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (lossQ16 int64, err error) {
	if st.Step != t {
		return 0, fmt.Errorf("ref: state is after %d steps, cannot apply step %d", st.Step, t)
	}
	if len(x) != s.BatchSize || len(y) != s.BatchSize {
		return 0, fmt.Errorf("ref: batch has %d samples and %d labels, want %d", len(x), len(y), s.BatchSize)
	}
	p := s.Plan()
	n := &s.Numeric
	f := RunForward(s, st, x)

	// Loss gradient, exponent -GradBits.
	g := make([][]int64, len(x))
	for b := range x {
		var l int64
		g[b], l = LossGrad(n, f.Logits[b], int(y[b]))
		lossQ16 += l
	}
	exp := -n.GradBits

	lr := s.Optimizer.LRAt(t)
	for j := len(p.Linear) - 1; j >= 0; j-- {
		l := p.Linear[j]
		a := f.Inputs[j]
		// Parameter gradients: exact integer sums over the batch.
		dW := make([]int64, l.Out*l.In)
		dB := make([]int64, l.Out)
		for b := range g {
			for o := range l.Out {
				dB[o] += g[b][o]
				for i := range l.In {
					dW[o*l.In+i] += g[b][o] * a[b][i]
				}
			}
		}
		// Input gradient, renormalised to GradBits with its own exponent.
		var gNext [][]int64
		expNext := 0
		if j > 0 {
			dx := make([][]int64, len(g))
			var peak int64
			for b := range g {
				dx[b] = make([]int64, l.In)
				for i := range l.In {
					var acc int64
					for o := range l.Out {
						acc += g[b][o] * f.WQ[j][o][i]
					}
					if p.Linear[j-1].ReLU && f.Pre[j-1][b][i] <= 0 {
						acc = 0
					}
					dx[b][i] = acc
					peak = max(peak, acc, -acc)
				}
			}
			sh := max(0, fixed.BitLen(peak)-n.GradBits)
			gNext = make([][]int64, len(g))
			for b := range dx {
				gNext[b] = make([]int64, l.In)
				for i, v := range dx[b] {
					gNext[b][i] = clamp(siteBackward, fixed.RoundShift(v, uint(sh)), -p.GMax, p.GMax)
				}
			}
			expNext = exp - n.WeightFrac + sh
		}
		// SGD with momentum (SPEC.md §"Update").
		update(s, &p, st.Layer(j, spec.TensorWeight), st.Layer(j, spec.TensorWeightMomentum), dW, lr, exp-l.InFrac+n.MasterFrac)
		update(s, &p, st.Layer(j, spec.TensorBias), st.Layer(j, spec.TensorBiasMomentum), dB, lr, exp+n.MasterFrac)
		g, exp = gNext, expNext
	}
	st.Step++
	return lossQ16, nil
}

// update applies v ← Sat32(RoundShift(μ·v, μshift) + Scale(grad·lr, k - LRShift)),
// w ← Clamp(w - v, ±MasterMax), where grad·2^k is the gradient in master units.
func update(s *spec.Spec, p *spec.Plan, w, v []int32, grad []int64, lr int64, k int) {
	mu := &s.Optimizer.Momentum
	for i := range w {
		u := fixed.Scale(grad[i]*lr, k-s.Optimizer.LRShift)
		if saturated != nil && (u == math.MaxInt32 || u == math.MinInt32) && scaleSaturates(grad[i]*lr, k-s.Optimizer.LRShift) {
			saturated(siteScale)
		}
		v[i] = int32(clamp(siteMomentum, fixed.RoundShift(mu.Num*int64(v[i]), uint(mu.Shift))+int64(u), math.MinInt32, math.MaxInt32))
		w[i] = int32(clamp(siteMaster, int64(w[i])-int64(v[i]), -p.MasterMax, p.MasterMax))
	}
}

// Predict returns the class of each sample: the index of its largest logit,
// the lowest index on ties.
func Predict(s *spec.Spec, st *spec.State, x [][]uint8) []int {
	f := RunForward(s, st, x)
	out := make([]int, len(x))
	for b, row := range f.Logits {
		for j, v := range row {
			if v > row[out[b]] {
				out[b] = j
			}
		}
	}
	return out
}

// scaleSaturates reports whether fixed.Scale(x, k) clamps: the exact
// x·2^k or RoundShift(x, −k) leaves int32.
func scaleSaturates(x int64, k int) bool {
	if k >= 0 {
		if x == 0 {
			return false
		}
		return k >= 32 || fixed.BitLen(x)+k > 31
	}
	r := fixed.RoundShift(x, uint(min(-k, 62)))
	return r > math.MaxInt32 || r < math.MinInt32
}
