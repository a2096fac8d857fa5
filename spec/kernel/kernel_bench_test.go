package kernel

import (
	"math/rand/v2"
	"testing"
)

// benchKernels are the kernels benchmarked: the portable one, the best
// single-threaded one, and it on two threads.
func benchKernels() []Kernel {
	return []Kernel{Generic(), Best(), Parallel(Best(), 2)}
}

// BenchmarkGemm reports multiply-accumulate throughput on the MLP shapes.
// The products use activations-like values (|v| ≤ 2047, about a quarter
// zero, as after ReLU) so the generic kernel's zero skipping is realistic.
func BenchmarkGemm(b *testing.B) {
	for _, s := range mlpShapes {
		rng := rand.New(rand.NewPCG(1, 2))
		p := newProblem(rng, s.m, s.k, s.n, 2047)
		for i := range p.a {
			if rng.IntN(4) == 0 {
				p.a[i] = 0
			}
		}
		var packed Packed
		PackB(&packed, p.bsrc, p.k, p.n, p.n)
		c := make([]int32, (p.m-1)*p.ldc+p.n)
		for _, kern := range benchKernels() {
			b.Run(s.name+"/"+kern.Name(), func(b *testing.B) {
				for b.Loop() {
					kern.Gemm(c, p.ldc, p.a, p.lda, &packed, p.m)
				}
				macs := int64(s.m) * int64(s.k) * int64(s.n) * int64(b.N)
				b.ReportMetric(float64(macs)/float64(b.Elapsed().Nanoseconds()), "GMAC/s")
			})
		}
	}
}

// BenchmarkPack measures packing a layer's weights both ways.
func BenchmarkPack(b *testing.B) {
	for _, d := range [][2]int{{784, 256}, {256, 128}, {128, 10}} {
		src := make([]int16, d[0]*d[1])
		for i := range src {
			src[i] = int16(i)
		}
		var p Packed
		b.Run("B/"+itoa(d[0])+"x"+itoa(d[1]), func(b *testing.B) {
			for b.Loop() {
				PackB(&p, src, d[0], d[1], d[1])
			}
		})
		b.Run("Transposed/"+itoa(d[0])+"x"+itoa(d[1]), func(b *testing.B) {
			for b.Loop() {
				PackBTransposed(&p, src, d[0], d[1], d[0])
			}
		})
	}
}

func itoa(x int) string {
	if x < 10 {
		return string(rune('0' + x))
	}
	return itoa(x/10) + string(rune('0'+x%10))
}
