//go:build !purego

package engine

//go:noescape
func widenAVX512(dst *int16, src *uint8, n int)

//go:noescape
func maskPeakAVX512(dx *int32, act *int16, n int, acc *[16]uint32)

//go:noescape
func peakAVX512(dx *int32, n int, acc *[16]uint32)

//go:noescape
func requantAVX512(dst *int16, src, bias *int32, n int, c *requantConsts)

// requantConsts is the constant block requantAVX512 reads; the field order
// is its layout.
type requantConsts struct {
	half, shift, lo, hi int64
	biasStride          int64
}

// zeros8 is the bias of a requantisation without one.
var zeros8 [8]int32

func widenVec(dst []int16, src []uint8) int {
	n := len(src) &^ 31
	if n == 0 {
		return 0
	}
	_ = dst[n-1]
	widenAVX512(&dst[0], &src[0], n)
	return n
}

func maskPeakVec(dx []int32, act []int16, acc *[16]uint32) int {
	n := len(dx) &^ 15
	if n == 0 {
		return 0
	}
	_ = act[n-1]
	maskPeakAVX512(&dx[0], &act[0], n, acc)
	return n
}

func peakVec(dx []int32, acc *[16]uint32) int {
	n := len(dx) &^ 15
	if n == 0 {
		return 0
	}
	peakAVX512(&dx[0], n, acc)
	return n
}

// requantVec runs requant on a prefix that is a multiple of 8 and returns
// its length; bias is nil for none.
func requantVec(dst []int16, src, bias []int32, sh uint, lo, hi int64) int {
	n := len(src) &^ 7
	if n == 0 || sh > 63 {
		return 0
	}
	_ = dst[n-1]
	c := requantConsts{half: int64(1) << sh >> 1, shift: int64(sh), lo: lo, hi: hi, biasStride: 32}
	b := &zeros8[0]
	if bias != nil {
		_ = bias[n-1]
		b = &bias[0]
	} else {
		c.biasStride = 0
	}
	requantAVX512(&dst[0], &src[0], b, n, &c)
	return n
}
