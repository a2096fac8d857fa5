//go:build amd64 && !purego

package gpt

import "golang.org/x/sys/cpu"

// hasAVX512 selects the AVX-512 loops of simd_amd64.s; they give exactly
// the results of the Go loops (simd_test.go).
var hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

//go:noescape
func maxAbs64AVX(x *int64, n int) uint64

//go:noescape
func quantize16AVX(dst *int16, x *int64, n int, s uint64, lim int64)

//go:noescape
func widen32AVX(c *int64, b *int32, n int, add bool)

// maxAbs64Vec handles a prefix of x (a multiple of 8 elements) and returns
// its length and maximum.
func maxAbs64Vec(x []int64) (int, uint64) {
	n := len(x) &^ 7
	if !hasAVX512 || n == 0 {
		return 0, 0
	}
	return n, maxAbs64AVX(&x[0], n)
}

// quantize16Vec quantises a prefix of x for a shift 1 ≤ s ≤ 62 and returns
// its length.
func quantize16Vec(dst []int16, x []int64, s int, lim int64) int {
	n := len(x) &^ 7
	if !hasAVX512 || n == 0 || s < 1 || s > 62 {
		return 0
	}
	_ = dst[n-1]
	quantize16AVX(&dst[0], &x[0], n, uint64(s), lim)
	return n
}

// widen32Vec sets (or increases) c[i] by b[i] for a prefix and returns its
// length.
func widen32Vec(c []int64, b []int32, add bool) int {
	n := len(b) &^ 7
	if !hasAVX512 || n == 0 {
		return 0
	}
	_ = c[n-1]
	widen32AVX(&c[0], &b[0], n, add)
	return n
}
