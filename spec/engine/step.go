package engine

import (
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/ref"
)

// forward runs the forward pass over the first m samples of x, leaving
// every layer's input in l.in and the logits in e.logits (SPEC.md §8.3).
func (e *Engine) forward(x [][]uint8, m int) {
	first := &e.layers[0]
	e.parallel(m, first.plan.In, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			row := first.in[b*first.ldIn : b*first.ldIn+first.plan.In]
			src := x[b][:first.plan.In]
			done := 0
			if e.simd {
				done = widenVec(row, src)
			}
			for i, v := range src[done:] {
				row[done+i] = int16(v)
			}
		}
	})
	for j := range e.layers {
		l := &e.layers[j]
		out := l.plan.Out
		e.gemm.Gemm(l.acc, out, l.in, l.ldIn, &l.fwd, m)
		lo, hi := -l.plan.OutMax, l.plan.OutMax
		if l.plan.Last {
			for b := range m {
				requant32(e.logits[b*out:b*out+out], l.acc[b*out:b*out+out], l.bq, l.plan.Shift, lo, hi)
			}
			continue
		}
		if l.plan.ReLU {
			lo = 0 // relu(clamp(z, -max, max)) = clamp(z, 0, max)
		}
		next := &e.layers[j+1]
		e.parallel(m, out, func(b0, b1 int) {
			for b := b0; b < b1; b++ {
				requant16(next.in[b*next.ldIn:b*next.ldIn+out], l.acc[b*out:b*out+out], l.bq, l.plan.Shift, lo, hi, e.simd)
			}
		})
	}
}

// requant16 writes Clamp(RoundShift(acc + bias, sh), lo, hi) (SPEC.md §8.3)
// with the rounding written out for the compiler, vectorised when simd is
// set; a nil bias is zero.
func requant16(dst []int16, acc, bias []int32, sh int, lo, hi int64, simd bool) {
	s := uint(sh) & 63
	done := 0
	if simd {
		done = requantVec(dst, acc, bias, s, lo, hi)
	}
	half := int64(1) << s >> 1
	dst, acc = dst[done:len(acc)], acc[done:]
	if bias == nil {
		for i, a := range acc {
			dst[i] = int16(min(max((int64(a)+half)>>s, lo), hi))
		}
		return
	}
	bias = bias[done : done+len(acc)]
	for i, a := range acc {
		dst[i] = int16(min(max((int64(a)+int64(bias[i])+half)>>s, lo), hi))
	}
}

// requant32 is requant16 for the logits.
func requant32(dst, acc, bias []int32, sh int, lo, hi int64) {
	s := uint(sh) & 63
	half := int64(1) << s >> 1
	dst, bias = dst[:len(acc)], bias[:len(acc)]
	for i, a := range acc {
		dst[i] = int32(min(max((int64(a)+int64(bias[i])+half)>>s, lo), hi))
	}
}

// Step applies the next step, number e.State().Step, to the batch x, y
// (the samples the spec's Sampler names, in order) and returns its summed
// loss in Q16 (SPEC.md §8).
func (e *Engine) Step(x [][]uint8, y []uint8) (lossQ16 int64, err error) {
	B := e.s.BatchSize
	if len(x) != B || len(y) != B {
		return 0, fmt.Errorf("engine: batch has %d samples and %d labels, want %d", len(x), len(y), B)
	}
	features, classes := e.layers[0].plan.In, e.p.Linear[len(e.p.Linear)-1].Out
	for b := range x {
		if len(x[b]) != features || int(y[b]) >= classes {
			return 0, fmt.Errorf("engine: sample %d has %d features and label %d, want %d features and a label below %d", b, len(x[b]), y[b], features, classes)
		}
	}
	t := e.st.Step
	e.forward(x, B)
	n := &e.s.Numeric

	// Loss gradient into the last layer's g (SPEC.md §8.4).
	// Each share sums its samples' losses; integer sums do not depend on
	// the split.
	last := &e.layers[len(e.layers)-1]
	losses := make([]int64, e.threads)
	share := 0
	var mu sync.Mutex
	e.parallel(B, classes*64, func(b0, b1 int) {
		row := make([]int64, classes)
		var sum int64
		for b := b0; b < b1; b++ {
			for c := range classes {
				row[c] = int64(e.logits[b*classes+c])
			}
			g, l := ref.LossGrad(n, row, int(y[b]))
			sum += l
			for c, v := range g {
				last.g[b*last.ldOut+c] = int16(v)
			}
		}
		mu.Lock()
		losses[share] = sum
		share++
		mu.Unlock()
	})
	for _, l := range losses {
		lossQ16 += l
	}
	last.gradEx = -n.GradBits

	lr := e.s.Optimizer.LRAt(t)
	for j := len(e.layers) - 1; j >= 0; j-- {
		e.backward(j)
		l := &e.layers[j]
		e.update(j, lr, l.gradEx-l.plan.InFrac+n.MasterFrac)
		e.updateBias(j, lr, l.gradEx+n.MasterFrac)
		e.pack(j)
	}
	e.st.Step++
	return lossQ16, nil
}

// abs32 returns |v| as a uint32 (2^31 for -2^31).
func abs32(v int32) uint32 {
	if v < 0 {
		return uint32(-int64(v))
	}
	return uint32(v)
}

// backward computes layer j's parameter gradients and, unless j is the
// first layer, the renormalised gradient of layer j-1 (SPEC.md §8.5).
func (e *Engine) backward(j int) {
	l := &e.layers[j]
	B, in, out := e.s.BatchSize, l.plan.In, l.plan.Out
	ldB := kernel.TransposeStride(B)
	// gT: out × B, the left operand of the weight gradient, is the packed
	// gradient transposed; the bias gradient is the sums of its rows.
	kernel.PackB(&e.gPacked, l.g, B, out, l.ldOut)
	e.parallel(out, B, func(o0, o1 int) {
		e.gPacked.Transpose(e.gT[o0*ldB:], ldB, o0, o1)
		for o := o0; o < o1; o++ {
			var s int64
			for _, v := range e.gT[o*ldB : o*ldB+B] {
				s += int64(v)
			}
			l.db[o] = s
		}
	})
	kernel.PackB(&l.act, l.in, B, in, l.ldIn)
	e.gemm.Gemm(l.dw, in, e.gT, ldB, &l.act, out)
	if l.plan.First {
		return
	}
	e.gemm.Gemm(l.dx, in, l.g, l.ldOut, &l.bwd, B)
	prev := &e.layers[j-1]
	// Mask by the relu of layer j-1: its output, our input, is > 0 exactly
	// where its pre-activation is. Only the bit length of the peak matters,
	// and that is the bit length of the OR of the magnitudes, which each
	// share accumulates on its own.
	relu := prev.plan.ReLU
	ors := make([]uint32, e.threads)
	share := 0
	var mu sync.Mutex
	e.parallel(B, in, func(b0, b1 int) {
		var acc [16]uint32
		var or uint32
		for b := b0; b < b1; b++ {
			dx := l.dx[b*in : b*in+in]
			done := 0
			if relu {
				act := l.in[b*l.ldIn : b*l.ldIn+in]
				if e.simd {
					done = maskPeakVec(dx, act, &acc)
				}
				for i := done; i < in; i++ {
					if act[i] <= 0 {
						dx[i] = 0
					}
					or |= abs32(dx[i])
				}
				continue
			}
			if e.simd {
				done = peakVec(dx, &acc)
			}
			for _, v := range dx[done:] {
				or |= abs32(v)
			}
		}
		for _, v := range acc {
			or |= v
		}
		mu.Lock()
		ors[share] = or
		share++
		mu.Unlock()
	})
	var or uint32
	for _, v := range ors {
		or |= v
	}
	n := &e.s.Numeric
	sh := max(0, bits.Len32(or)-n.GradBits)
	gmax := e.p.GMax
	e.parallel(B, in, func(b0, b1 int) {
		for b := b0; b < b1; b++ {
			requant16(prev.g[b*prev.ldOut:b*prev.ldOut+in], l.dx[b*in:b*in+in], nil, sh, -gmax, gmax, e.simd)
		}
	})
	prev.gradEx = l.gradEx - n.WeightFrac + sh
}

// update applies SGD with momentum (SPEC.md §8.6) to layer j's weights,
// whose gradient sums l.dw have exponent gk, and refreshes their quantised
// copy in l.wq.
func (e *Engine) update(j int, lr int64, gk int) {
	l := &e.layers[j]
	w, v := e.st.Layer(j, spec.TensorWeight), e.st.Layer(j, spec.TensorWeightMomentum)
	c := e.updateConsts(lr, gk)
	in := l.plan.In
	e.parallel(l.plan.Out, in, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			r := o * in
			c.apply(w[r:r+in], v[r:r+in], l.dw[r:r+in], l.wq[o*l.ldIn:o*l.ldIn+in], e.simd)
		}
	})
}

// updateConsts are the per-tensor constants of one update.
type updateConsts struct {
	lr, muNum, muHalf, mmax int64
	muShift                 uint
	// Gradient scaling: k ≥ 0 is a saturating left shift (rare), k < 0 a
	// rounding right shift by rshift, rhalf = 2^(rshift-1).
	k      int
	rshift uint
	rhalf  int64
	// Quantisation of the updated weights.
	qshift      uint
	qhalf, wmax int64
}

func (e *Engine) updateConsts(lr int64, gk int) updateConsts {
	o := &e.s.Optimizer
	c := updateConsts{lr: lr, muNum: o.Momentum.Num, muShift: uint(o.Momentum.Shift), mmax: e.p.MasterMax, k: gk - o.LRShift}
	c.muHalf = int64(1) << c.muShift >> 1
	if c.k < 0 {
		c.rshift = uint(min(-c.k, 62))
		c.rhalf = int64(1) << c.rshift >> 1
	}
	c.qshift = uint(e.s.Numeric.MasterFrac - e.s.Numeric.WeightFrac)
	c.qhalf = int64(1) << c.qshift >> 1
	c.wmax = e.p.WMax
	return c
}

// apply updates one row of master weights w and momenta v in place from its
// gradient sums and writes the row's quantised weights to wq: the
// reference's update and quantisation with the rounding shifts written out,
// vectorised when simd is set.
func (c *updateConsts) apply(w, v, grad []int32, wq []int16, simd bool) {
	done := 0
	if simd {
		done = c.applyVec(w, v, grad, wq)
	}
	w, v, grad, wq = w[done:], v[done:len(w)], grad[done:len(w)], wq[done:len(w)]
	for i := range w {
		var u int64
		if c.k >= 0 {
			u = int64(fixed.Scale(int64(grad[i])*c.lr, c.k))
		} else {
			u = min(max((int64(grad[i])*c.lr+c.rhalf)>>c.rshift, math.MinInt32), math.MaxInt32)
		}
		vi := min(max((c.muNum*int64(v[i])+c.muHalf)>>c.muShift+u, math.MinInt32), math.MaxInt32)
		v[i] = int32(vi)
		wi := min(max(int64(w[i])-vi, -c.mmax), c.mmax)
		w[i] = int32(wi)
		wq[i] = int16(min(max((wi+c.qhalf)>>c.qshift, -c.wmax), c.wmax))
	}
}

func (e *Engine) updateBias(j int, lr int64, gk int) {
	l := &e.layers[j]
	w, v := e.st.Layer(j, spec.TensorBias), e.st.Layer(j, spec.TensorBiasMomentum)
	mu := e.s.Optimizer.Momentum
	for i := range w {
		u := fixed.Scale(l.db[i]*lr, gk-e.s.Optimizer.LRShift)
		vi := fixed.Sat32(fixed.RoundShift(mu.Num*int64(v[i]), uint(mu.Shift)) + int64(u))
		v[i] = vi
		w[i] = int32(fixed.Clamp(int64(w[i])-int64(vi), -e.p.MasterMax, e.p.MasterMax))
	}
}

// Predict writes the predicted class of each sample of x to out (SPEC.md
// §8.7), BatchSize samples at a time.
func (e *Engine) Predict(x [][]uint8, out []int) error {
	if len(out) < len(x) {
		return fmt.Errorf("engine: %d outputs for %d samples", len(out), len(x))
	}
	features := e.layers[0].plan.In
	classes := e.p.Linear[len(e.p.Linear)-1].Out
	for lo := 0; lo < len(x); lo += e.s.BatchSize {
		chunk := x[lo:min(lo+e.s.BatchSize, len(x))]
		for b, sample := range chunk {
			if len(sample) != features {
				return fmt.Errorf("engine: sample %d has %d features, want %d", lo+b, len(sample), features)
			}
		}
		e.forward(chunk, len(chunk))
		for b := range chunk {
			best := 0
			row := e.logits[b*classes : b*classes+classes]
			for c, v := range row {
				if v > row[best] {
					best = c
				}
			}
			out[lo+b] = best
		}
	}
	return nil
}
