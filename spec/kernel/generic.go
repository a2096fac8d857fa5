package kernel

// goKernel is the portable kernel.
type goKernel struct{}

func (goKernel) Name() string { return nameGo }

func (goKernel) Gemm(c []int32, ldc int, a []int16, lda int, b *Packed, m int) {
	if !checkGemm(c, ldc, a, lda, b, m) {
		return
	}
	gemmGo(c, ldc, a, lda, b, m)
}

// goDepth is how many pair-rows of B one pass over a row of C consumes.
// Packed rows are often a power-of-two multiple of 64 bytes apart, so a
// walk down a packed column touches few L1 sets: 32 rows stay resident.
const goDepth = 32

// gemmGo computes rows [0, m) of C; arguments are already checked. It
// holds 1×4 blocks of C in registers while walking goDepth pair-rows down
// B, so each B value loaded feeds two products. Blocks of four columns may
// read up to three padding columns of B (inside the packed row, which
// checkGemm verified) but store only columns below N.
func gemmGo(c []int32, ldc int, a []int16, lda int, b *Packed, m int) {
	n, k2s, s2 := b.n, b.pairRows(), b.stride*2
	bd := b.data
	for i := range m {
		crow := c[i*ldc : i*ldc+n]
		arow := a[i*lda : i*lda+2*k2s]
		clear(crow)
		for j0 := 0; j0 < k2s; j0 += goDepth {
			ab := arow[2*j0 : 2*min(j0+goDepth, k2s)]
			for x := 0; x < n; x += 4 {
				var s0, s1, s2_, s3 int32
				q := bd[j0*s2+2*x:]
				for j := 0; j+1 < len(ab); j += 2 {
					u0, u1 := int32(ab[j]), int32(ab[j+1])
					r := q[:8:8]
					s0 += u0*int32(r[0]) + u1*int32(r[1])
					s1 += u0*int32(r[2]) + u1*int32(r[3])
					s2_ += u0*int32(r[4]) + u1*int32(r[5])
					s3 += u0*int32(r[6]) + u1*int32(r[7])
					if j+3 < len(ab) {
						q = q[s2:]
					}
				}
				add4(crow[x:], s0, s1, s2_, s3)
			}
		}
	}
}

// add4 adds up to four sums into dst, as many as it has room for.
func add4(dst []int32, s0, s1, s2, s3 int32) {
	if len(dst) >= 4 {
		dst = dst[:4]
		dst[0] += s0
		dst[1] += s1
		dst[2] += s2
		dst[3] += s3
		return
	}
	for i, v := range [3]int32{s0, s1, s2} {
		if i < len(dst) {
			dst[i] += v
		}
	}
}
