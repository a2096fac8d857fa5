package gpt

import (
	"sync"

	"github.com/beluga-compute/beluga/spec/kernel"
)

// mm computes exact int64 matrix products of int16 operands with an int32
// kernel. A product of operands bounded by ma and mb is summed in int32
// over chunks of at most ⌊(2^31 − 1)/(ma·mb)⌋ terms (rounded down to an
// even count, as the kernel reads pairs), and the chunks in int64: no
// partial sum can wrap, so the result is the exact sum whatever the order.
type mm struct {
	k       kernel.Kernel
	threads int
	pool    sync.Pool // *[]int32 scratch
}

func newMM(k kernel.Kernel, threads int) *mm {
	return &mm{k: k, threads: max(threads, 1)}
}

// chunkLen returns the longest even number of products bounded by ma·mb
// whose sum fits int32.
func chunkLen(ma, mb int64) int {
	n := int((1<<31 - 1) / (ma * mb))
	n &^= 1
	return max(n, 2)
}

func (p *mm) scratch(n int) *[]int32 {
	if v, ok := p.pool.Get().(*[]int32); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	s := make([]int32, n)
	return &s
}

// mul sets (or, with add, increases) c[i*ldc+n] by Σ_k a[i*lda+k]·B[k][n]
// for i < m, n < B.N(), exactly. |a| ≤ ma and |B| ≤ mb elementwise. a must
// have one readable element past the last row's K-th (kernel.Gemm reads
// pairs). Rows are split across threads when there is enough work.
func (p *mm) mul(c []int64, ldc int, a []int16, lda int, b *kernel.Packed, m int, ma, mb int64, add bool) {
	n, k := b.N(), b.K()
	if m == 0 || n == 0 {
		return
	}
	t := p.threads
	if work := m * n * k; work < 1<<22 {
		t = 1
	}
	t = min(t, (m+7)/8)
	if t <= 1 {
		p.mulRows(c, ldc, a, lda, b, m, ma, mb, add)
		return
	}
	var wg sync.WaitGroup
	for i := range t {
		m0, m1 := m*i/t, m*(i+1)/t
		if m0 == m1 {
			continue
		}
		wg.Go(func() {
			p.mulRows(c[m0*ldc:], ldc, a[m0*lda:], lda, b, m1-m0, ma, mb, add)
		})
	}
	wg.Wait()
}

func (p *mm) mulRows(c []int64, ldc int, a []int16, lda int, b *kernel.Packed, m int, ma, mb int64, add bool) {
	n, k := b.N(), b.K()
	if !add {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
	}
	if k == 0 {
		return
	}
	chunk := chunkLen(ma, mb)
	bufp := p.scratch(m * n)
	buf := *bufp
	for k0 := 0; k0 < k; k0 += chunk {
		k1 := min(k0+chunk, k)
		p.k.Gemm(buf, n, a[k0:], lda, b.Rows(k0, k1), m)
		for i := range m {
			ci, bi := c[i*ldc:i*ldc+n], buf[i*n:i*n+n]
			for j, v := range bi {
				ci[j] += int64(v)
			}
		}
	}
	p.pool.Put(bufp)
}

// transpose writes the rows×cols row-major src (stride lds) transposed into
// dst (cols×rows, stride ldd).
func transpose16(dst []int16, ldd int, src []int16, lds, rows, cols int) {
	const blk = 32
	for r0 := 0; r0 < rows; r0 += blk {
		r1 := min(r0+blk, rows)
		for c0 := 0; c0 < cols; c0 += blk {
			c1 := min(c0+blk, cols)
			for r := r0; r < r1; r++ {
				row := src[r*lds:]
				for cc := c0; cc < c1; cc++ {
					dst[cc*ldd+r] = row[cc]
				}
			}
		}
	}
}
