package gpt

import (
	"math"
	"testing"

	"github.com/beluga-compute/beluga/spec/prng"
)

// TestVectorLoopsMatchGo: the vector loops (AVX-512 where present) give
// the Go loops' results on random data, extremes and every shift.
func TestVectorLoopsMatchGo(t *testing.T) {
	t.Parallel()
	s := prng.Derive(3, "test.simd", 0, 0)
	var k uint64
	next := func() uint64 { k++; return s.At(k) }
	for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 63, 64, 1000} {
		x := make([]int64, n)
		b32 := make([]int32, n)
		for i := range x {
			x[i] = int64(next()) >> (next() % 64)
			b32[i] = int32(next())
		}
		if n > 2 {
			x[0], x[1] = math.MinInt64+1, math.MaxInt64>>1
		}
		var want uint64
		for _, v := range x {
			want = max(want, uabs(v))
		}
		if got := maxAbs64(x); got != want {
			t.Fatalf("n=%d: maxAbs64 = %d, want %d", n, got, want)
		}
		for _, sh := range []int{1, 2, 13, 30, 47, 62} {
			for _, b := range []int{8, 12} {
				lim := int64(1)<<b - 1
				got := make([]int16, n)
				quantize16(got, x, sh, b)
				for i, v := range x {
					var q int64
					if v > 0 && v > math.MaxInt64-int64(1)<<(sh-1) {
						continue // (v + half) wraps; never reached by the bounds
					}
					q = min(max((v+int64(1)<<(sh-1))>>sh, -lim), lim)
					if int64(got[i]) != q {
						t.Fatalf("n=%d s=%d b=%d: quantize16(%d) = %d, want %d", n, sh, b, v, got[i], q)
					}
				}
			}
		}
		for _, add := range []bool{false, true} {
			c := make([]int64, n)
			want := make([]int64, n)
			for i := range c {
				c[i] = int64(next()) >> 8
				want[i] = int64(b32[i])
				if add {
					want[i] += c[i]
				}
			}
			j := widen32Vec(c, b32, add)
			for i := j; i < n; i++ {
				if add {
					c[i] += int64(b32[i])
				} else {
					c[i] = int64(b32[i])
				}
			}
			for i := range c {
				if c[i] != want[i] {
					t.Fatalf("n=%d add=%v: widen[%d] = %d, want %d", n, add, i, c[i], want[i])
				}
			}
		}
	}
}
