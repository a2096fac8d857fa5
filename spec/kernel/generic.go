package kernel

// goKernel is the portable kernel. It computes 2×4 blocks of C with the
// sums in registers, walking A along rows and B down its packed columns.
type goKernel struct{}

func (goKernel) Name() string { return nameGo }

func (goKernel) Gemm(c []int32, ldc int, a []int16, lda int, b *Packed, m int) {
	if !checkGemm(c, ldc, a, lda, b, m) {
		return
	}
	gemmGo(c, ldc, a, lda, b, m)
}

// gemmGo computes rows [0, m) of C; arguments are already checked. Blocks
// of four columns may read up to three padding columns of B (they are
// within the packed row, which checkGemm verified) but store only columns
// below N.
func gemmGo(c []int32, ldc int, a []int16, lda int, b *Packed, m int) {
	n, k2s, s2 := b.n, b.pairRows(), b.stride*2
	bd := b.data
	i := 0
	for ; i+1 < m; i += 2 {
		a0 := a[i*lda : i*lda+2*k2s]
		a1 := a[(i+1)*lda : (i+1)*lda+2*k2s]
		c0 := c[i*ldc : i*ldc+n]
		c1 := c[(i+1)*ldc : (i+1)*ldc+n]
		for x := 0; x < n; x += 4 {
			var s0, s1, s2_, s3, t0, t1, t2, t3 int32
			off := 2 * x
			for j := 0; j < len(a0)-1 && j < len(a1)-1; j += 2 {
				q := bd[off : off+8 : off+8]
				u0, u1 := int32(a0[j]), int32(a0[j+1])
				v0, v1 := int32(a1[j]), int32(a1[j+1])
				b0, b1 := int32(q[0]), int32(q[1])
				b2, b3 := int32(q[2]), int32(q[3])
				b4, b5 := int32(q[4]), int32(q[5])
				b6, b7 := int32(q[6]), int32(q[7])
				s0 += u0*b0 + u1*b1
				s1 += u0*b2 + u1*b3
				s2_ += u0*b4 + u1*b5
				s3 += u0*b6 + u1*b7
				t0 += v0*b0 + v1*b1
				t1 += v0*b2 + v1*b3
				t2 += v0*b4 + v1*b5
				t3 += v0*b6 + v1*b7
				off += s2
			}
			store4(c0[x:], s0, s1, s2_, s3)
			store4(c1[x:], t0, t1, t2, t3)
		}
	}
	if i < m {
		a0 := a[i*lda : i*lda+2*k2s]
		c0 := c[i*ldc : i*ldc+n]
		for x := 0; x < n; x += 4 {
			var s0, s1, s2_, s3 int32
			off := 2 * x
			for j := 0; j < len(a0)-1; j += 2 {
				q := bd[off : off+8 : off+8]
				u0, u1 := int32(a0[j]), int32(a0[j+1])
				s0 += u0*int32(q[0]) + u1*int32(q[1])
				s1 += u0*int32(q[2]) + u1*int32(q[3])
				s2_ += u0*int32(q[4]) + u1*int32(q[5])
				s3 += u0*int32(q[6]) + u1*int32(q[7])
				off += s2
			}
			store4(c0[x:], s0, s1, s2_, s3)
		}
	}
}

// store4 writes up to four sums, as many as dst has room for.
func store4(dst []int32, s0, s1, s2, s3 int32) {
	if len(dst) >= 4 {
		dst = dst[:4]
		dst[0], dst[1], dst[2], dst[3] = s0, s1, s2, s3
		return
	}
	for i, v := range [3]int32{s0, s1, s2} {
		if i < len(dst) {
			dst[i] = v
		}
	}
}
