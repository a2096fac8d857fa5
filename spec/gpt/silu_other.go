//go:build !amd64 || purego

package gpt

const hasSiLUVec = false

func siluVec(u32 []int32, sig []uint16, hs, up []int64, s int) int { return 0 }
