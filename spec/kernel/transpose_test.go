package kernel

import (
	"math/rand/v2"
	"testing"
)

// TestTranspose checks Packed.Transpose, vector and Go paths, against At on
// random shapes and column ranges, including the zeroed columns past K and
// odd K (the packed padding row).
func TestTranspose(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		k, n := 1+rng.IntN(70), 1+rng.IntN(90)
		ld := n + rng.IntN(3)
		src := make([]int16, (k-1)*ld+n)
		for i := range src {
			src[i] = int16(rng.Uint32())
		}
		var p Packed
		PackB(&p, src, k, n, ld)
		n0 := rng.IntN(n)
		n1 := n0 + 1 + rng.IntN(n-n0)
		ldd := TransposeStride(k) + 32*rng.IntN(2)
		for _, vec := range []bool{false, true} {
			dst := make([]int16, (n1-n0)*ldd)
			for i := range dst {
				dst[i] = -7 // must be overwritten or left alone, never read
			}
			if vec {
				p.Transpose(dst, ldd, n0, n1)
			} else {
				transposeGo(dst, ldd, p.data, p.stride, p.pairRows(), n0, n1)
			}
			for r := range n1 - n0 {
				for c := range TransposeStride(k) {
					want := int16(0)
					if c < k {
						want = p.At(c, n0+r)
					}
					if got := dst[r*ldd+c]; got != want {
						t.Fatalf("trial %d (K=%d N=%d [%d,%d) vec=%v): dst[%d][%d] = %d, want %d", trial, k, n, n0, n1, vec, r, c, got, want)
					}
				}
			}
		}
	}
}

// TestTransposeRefusesShortStride checks the argument checks.
func TestTransposeRefusesShortStride(t *testing.T) {
	t.Parallel()
	var p Packed
	PackB(&p, make([]int16, 40*3), 40, 3, 3)
	for name, f := range map[string]func(){
		"stride": func() { p.Transpose(make([]int16, 1000), 40, 0, 3) },
		"range":  func() { p.Transpose(make([]int16, 1000), 64, 2, 4) },
		"short":  func() { p.Transpose(make([]int16, 100), 64, 0, 3) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
