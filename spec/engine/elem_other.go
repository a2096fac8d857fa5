//go:build !amd64 || purego

package engine

func widenVec(dst []int16, src []uint8) int { return 0 }

func maskPeakVec(dx []int32, act []int16, acc *[16]uint32) int { return 0 }

func peakVec(dx []int32, acc *[16]uint32) int { return 0 }

func requantVec(dst []int16, src, bias []int32, sh uint, lo, hi int64) int { return 0 }
