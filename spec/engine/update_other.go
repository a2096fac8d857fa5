//go:build !amd64 || purego

package engine

const haveSIMD = false

func (c *updateConsts) applyVec(w, v, grad []int32, wq []int16) int { return 0 }
