package engine

import (
	"fmt"
	"testing"
)

func BenchmarkApply(b *testing.B) {
	n := 784 * 256
	w, v, g := make([]int32, n), make([]int32, n), make([]int32, n)
	for i := range g {
		g[i] = int32(i*7919%4001 - 2000)
		w[i] = int32(i * 31 % 100000)
	}
	wq := make([]int16, n)
	c := updateConsts{lr: 838860, muNum: 29491, muShift: 15, muHalf: 1 << 14, mmax: 2047 << 16, k: -20, rshift: 20, rhalf: 1 << 19, qshift: 16, qhalf: 1 << 15, wmax: 2047}
	for _, simd := range []bool{false, haveSIMD} {
		b.Run(fmt.Sprint("simd=", simd), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				c.apply(w, v, g, wq, simd)
			}
		})
	}
}
