package gpt

import (
	"testing"
)

func TestTranspose16(t *testing.T) {
	t.Parallel()
	for _, sz := range [][2]int{{1, 1}, {3, 70}, {70, 3}, {64, 64}, {2048, 384}, {33, 17}} {
		r, c := sz[0], sz[1]
		src := make([]int16, r*c)
		for i := range src {
			src[i] = int16(i*7 + 3)
		}
		dst := make([]int16, r*c)
		transpose16(dst, r, src, c, r, c)
		for i := range r {
			for j := range c {
				if dst[j*r+i] != src[i*c+j] {
					t.Fatalf("%dx%d: (%d,%d) wrong", r, c, i, j)
				}
			}
		}
	}
}

func BenchmarkTranspose16(b *testing.B) {
	r, c := 2048, 512
	src := make([]int16, r*c)
	dst := make([]int16, r*c)
	b.SetBytes(int64(2 * r * c))
	for b.Loop() {
		transpose16(dst, r, src, c, r, c)
	}
}
