//go:build !amd64 || purego

package gpt

func maxAbs64Vec(x []int64) (int, uint64)                        { return 0, 0 }
func quantize16Vec(dst []int16, x []int64, s int, lim int64) int { return 0 }
func widen32Vec(c []int64, b []int32, add bool) int              { return 0 }
