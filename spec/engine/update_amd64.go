//go:build !purego

package engine

import "golang.org/x/sys/cpu"

// vecConsts is the constant block applyAVX512 reads; the field order is
// its layout.
type vecConsts struct {
	lr, rhalf, rshift          int64
	muNum, muHalf, muShift     int64
	mmax, negMmax              int64
	qhalf, qshift, wmax, nwmax int64
	max32, min32               int64
}

//go:noescape
func applyAVX512(w, v, grad *int32, wq *int16, n int, c *vecConsts)

// haveSIMD reports whether the vector element-wise loops can run here.
var haveSIMD = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

// applyVec runs the fused update and quantisation of one row with AVX-512
// on a prefix that is a multiple of 8 and returns how many it did.
func (c *updateConsts) applyVec(w, v, grad []int32, wq []int16) int {
	n := len(w) &^ 7
	if n == 0 || c.k >= 0 {
		return 0
	}
	_, _, _ = v[n-1], grad[n-1], wq[n-1]
	vc := vecConsts{
		lr: c.lr, rhalf: c.rhalf, rshift: int64(c.rshift),
		muNum: c.muNum, muHalf: c.muHalf, muShift: int64(c.muShift),
		mmax: c.mmax, negMmax: -c.mmax,
		qhalf: c.qhalf, qshift: int64(c.qshift), wmax: c.wmax, nwmax: -c.wmax,
		max32: 1<<31 - 1, min32: -1 << 31,
	}
	applyAVX512(&w[0], &v[0], &grad[0], &wq[0], n, &vc)
	return n
}
