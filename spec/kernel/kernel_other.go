//go:build !amd64 || purego

package kernel

// splitRows is the row granularity Parallel splits on.
const splitRows = 4

func best() Kernel { return Generic() }

func vnniKernel() Kernel { return nil }

func interleaveRows(dst, even, odd []int16) { interleaveGo(dst, even, odd) }

func transposeBlock(d []int16, np int, s []int16, lds, rows, k int) {
	transposeBlockGo(d, np, s, lds, rows, k)
}

func transposePacked(dst []int16, ldd int, data []int16, np, k2, n0, n1 int) {
	transposeGo(dst, ldd, data, np, k2, n0, n1)
}
