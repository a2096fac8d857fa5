package gpt

import (
	"sync"

	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/par"
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
	par.Shared(p.threads).Run(t, func(i int) {
		if m0, m1 := m*i/t, m*(i+1)/t; m0 < m1 {
			p.mulRows(c[m0*ldc:], ldc, a[m0*lda:], lda, b, m1-m0, ma, mb, add)
		}
	})
}

func (p *mm) mulRows(c []int64, ldc int, a []int16, lda int, b *kernel.Packed, m int, ma, mb int64, add bool) {
	n, k := b.N(), b.K()
	if k == 0 {
		if !add {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	chunk := chunkLen(ma, mb)
	// Row blocks small enough that a block's int32 partial sums and int64
	// results stay in cache across the K chunks.
	rows := m
	if k > chunk {
		rows = max(6, min(m, (32<<10)/(12*max(n, 1))/6*6))
	}
	bufp := p.scratch(rows * n)
	buf := *bufp
	for i0 := 0; i0 < m; i0 += rows {
		mr := min(rows, m-i0)
		cb, ab := c[i0*ldc:], a[i0*lda:]
		for k0 := 0; k0 < k; k0 += chunk {
			k1 := min(k0+chunk, k)
			p.k.Gemm(buf, n, ab[k0:], lda, b.Rows(k0, k1), mr)
			set := k0 == 0 && !add
			for i := range mr {
				ci, bi := cb[i*ldc:i*ldc+n], buf[i*n:i*n+n]
				j0 := widen32Vec(ci, bi, !set)
				if set {
					for j := j0; j < len(bi); j++ {
						ci[j] = int64(bi[j])
					}
					continue
				}
				for j := j0; j < len(bi); j++ {
					ci[j] += int64(bi[j])
				}
			}
		}
	}
	p.pool.Put(bufp)
}

// transpose16 writes the rows×cols row-major src (stride lds) transposed
// into dst (cols×rows, stride ldd). It walks 8 destination rows at a time
// down the source rows, so the writes are 8 sequential streams: a taller
// tile of destination rows a power-of-two stride apart would evict itself
// from the L1 cache (every row in the same set).
func transpose16(dst []int16, ldd int, src []int16, lds, rows, cols int) {
	c0 := 0
	for ; c0+8 <= cols; c0 += 8 {
		d0 := dst[(c0+0)*ldd : (c0+0)*ldd+rows]
		d1 := dst[(c0+1)*ldd : (c0+1)*ldd+rows]
		d2 := dst[(c0+2)*ldd : (c0+2)*ldd+rows]
		d3 := dst[(c0+3)*ldd : (c0+3)*ldd+rows]
		d4 := dst[(c0+4)*ldd : (c0+4)*ldd+rows]
		d5 := dst[(c0+5)*ldd : (c0+5)*ldd+rows]
		d6 := dst[(c0+6)*ldd : (c0+6)*ldd+rows]
		d7 := dst[(c0+7)*ldd : (c0+7)*ldd+rows]
		for r := range rows {
			s := src[r*lds+c0 : r*lds+c0+8]
			d0[r], d1[r], d2[r], d3[r] = s[0], s[1], s[2], s[3]
			d4[r], d5[r], d6[r], d7[r] = s[4], s[5], s[6], s[7]
		}
	}
	for ; c0 < cols; c0++ {
		d := dst[c0*ldd : c0*ldd+rows]
		for r := range rows {
			d[r] = src[r*lds+c0]
		}
	}
}
