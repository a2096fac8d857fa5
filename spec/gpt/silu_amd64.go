//go:build amd64 && !purego

package gpt

import (
	"math"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hasSiLUVec: siluAVX needs AVX-512 DQ's 64-bit multiply as well.
var hasSiLUVec = hasAVX512 && cpu.X86.HasAVX512DQ

// siluConsts is the constant block siluAVX reads; the field order is its
// layout.
type siluConsts struct {
	half, shift            int64
	exp2Poly, sigmoidRecip uintptr
	max32, min32           int64
	log2e, q15, expCap     int64
	low16, kMax, k14, one  int64
	q14                    int64
}

//go:noescape
func siluAVX(u32 *int32, sig *uint16, hs *int64, up *int64, n int, c *siluConsts)

// siluVec runs the SiLU forward (u, σ and u·σ) on a prefix of up that is
// a multiple of 8 for an input shift 1 ≤ s ≤ 62, and returns its length.
func siluVec(u32 []int32, sig []uint16, hs, up []int64, s int) int {
	n := len(up) &^ 7
	if !hasSiLUVec || n == 0 || s < 1 || s > 62 {
		return 0
	}
	_, _, _ = u32[n-1], sig[n-1], hs[n-1]
	initTables()
	c := siluConsts{
		half: int64(1) << (s - 1), shift: int64(s),
		exp2Poly: uintptr(unsafe.Pointer(&exp2Poly[0])), sigmoidRecip: uintptr(unsafe.Pointer(&sigmoidRecip[0])),
		max32: math.MaxInt32, min32: math.MinInt32,
		log2e: log2eQ16, q15: 1 << 15, expCap: expCap,
		low16: 0xFFFF, kMax: 47, k14: 14, one: 1, q14: 1 << 14,
	}
	siluAVX(&u32[0], &sig[0], &hs[0], &up[0], n, &c)
	return n
}
