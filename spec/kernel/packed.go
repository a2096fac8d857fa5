package kernel

import "fmt"

// ColumnAlign is the multiple to which Packed rounds N: one 512-bit vector
// holds 16 int32 accumulators, so every packed pair-row is a whole number of
// vectors and the kernels never load past a row.
const ColumnAlign = 16

// Packed is a K×N int16 matrix B in "VNNI pair" layout, the right-hand
// operand of Gemm. With K2 = ceil(K/2) pair-rows and Np = N rounded up to a
// multiple of ColumnAlign, element (k, n) lives at
//
//	data[(k/2)*Np*2 + n*2 + k%2]
//
// so the two values B[2j][n], B[2j+1][n] that one VPDPWSSD lane multiplies
// with the pair A[m][2j], A[m][2j+1] are adjacent. Every padding entry (row K
// when K is odd, columns N..Np-1) is zero; Gemm relies on that.
//
// The zero value is an empty 0×0 matrix. PackB and PackBTransposed reshape
// their destination and reuse its storage when it is large enough, so one
// Packed per layer serves every training step without allocating. Gemm
// only reads a Packed, so concurrent products may share one.
type Packed struct {
	data   []int16
	k, n   int
	stride int // Np: columns per pair-row, a multiple of ColumnAlign, ≥ n
}

// NewPacked returns a zero K×N matrix with storage for K×N packing.
func NewPacked(k, n int) *Packed {
	p := new(Packed)
	p.resize(k, n)
	return p
}

// K returns the number of rows of B (the reduction length of Gemm).
func (p *Packed) K() int { return p.k }

// N returns the number of columns of B and of the product.
func (p *Packed) N() int { return p.n }

// Np returns N rounded up to a multiple of ColumnAlign: the packed row
// width, in int16 pairs.
func (p *Packed) Np() int { return p.stride }

// At returns B[k][n].
func (p *Packed) At(k, n int) int16 {
	if uint(k) >= uint(p.k) || uint(n) >= uint(p.n) {
		panic(fmt.Sprintf("kernel: Packed.At(%d, %d) outside %d×%d", k, n, p.k, p.n))
	}
	return p.data[(k/2)*p.stride*2+n*2+k%2]
}

// pairRows returns K2 = ceil(K/2).
func (p *Packed) pairRows() int { return (p.k + 1) / 2 }

// resize reshapes p to k×n, reusing storage. Contents are unspecified until
// a Pack function fills every entry.
func (p *Packed) resize(k, n int) {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("kernel: negative packed dimensions %d×%d", k, n))
	}
	np := roundUp(n, ColumnAlign)
	size := (k + 1) / 2 * np * 2
	if cap(p.data) < size {
		p.data = make([]int16, size)
	}
	p.data = p.data[:size]
	p.k, p.n, p.stride = k, n, np
}

// cols returns a view of columns [n0, n1) of p. n0 must be a multiple of
// ColumnAlign so that the view's pair-rows start on a vector; the view keeps
// p's stride, and its padding columns are p's columns n1.., which are either
// real data (never read into results, see Gemm) or zero padding.
func (p *Packed) cols(n0, n1 int) *Packed {
	if n0%ColumnAlign != 0 || n0 < 0 || n1 < n0 || n1 > p.n {
		panic(fmt.Sprintf("kernel: bad column view [%d, %d) of %d columns", n0, n1, p.n))
	}
	if p.k == 0 || n0 == n1 {
		return &Packed{k: p.k, n: n1 - n0, stride: p.stride}
	}
	return &Packed{data: p.data[n0*2:], k: p.k, n: n1 - n0, stride: p.stride}
}

// Rows returns a view of rows [k0, k1) of p, for a product over one chunk
// of the reduction: Gemm(c, ldc, a[k0:], lda, p.Rows(k0, k1), m) computes
// Σ_{k0≤k<k1} A[i][k]·B[k][n]. k0 must be even and k1 even or K, so that the
// view's pair-rows are whole pair-rows of p (an odd k1 = K ends on p's
// zero padding row).
func (p *Packed) Rows(k0, k1 int) *Packed {
	if k0 < 0 || k0%2 != 0 || k1 < k0 || k1 > p.k || (k1%2 != 0 && k1 != p.k) {
		panic(fmt.Sprintf("kernel: bad row view [%d, %d) of %d rows", k0, k1, p.k))
	}
	if k0 == k1 {
		return &Packed{n: p.n, stride: p.stride}
	}
	lo := (k0 / 2) * p.stride * 2
	hi := ((k1 + 1) / 2) * p.stride * 2
	return &Packed{data: p.data[lo:hi], k: k1 - k0, n: p.n, stride: p.stride}
}

// PackB packs the row-major K×N matrix src (B[k][n] = src[k*ldsrc+n]) into
// dst, reshaping dst to K×N.
func PackB(dst *Packed, src []int16, k, n, ldsrc int) {
	checkSource("PackB", len(src), k, n, ldsrc)
	dst.resize(k, n)
	if k == 0 || n == 0 {
		return
	}
	np := dst.stride
	for k2 := 0; k2 < (k+1)/2; k2++ {
		row := dst.data[k2*np*2 : (k2+1)*np*2]
		even := src[2*k2*ldsrc : 2*k2*ldsrc+n]
		if 2*k2+1 < k {
			interleaveRows(row[:2*n], even, src[(2*k2+1)*ldsrc:(2*k2+1)*ldsrc+n])
		} else {
			for j, v := range even {
				row[2*j] = v
				row[2*j+1] = 0
			}
		}
		clear(row[2*n:])
	}
}

// interleaveGo sets dst[2j], dst[2j+1] = even[j], odd[j].
func interleaveGo(dst, even, odd []int16) {
	dst = dst[:2*len(even)]
	odd = odd[:len(even)]
	for j, v := range even {
		dst[2*j] = v
		dst[2*j+1] = odd[j]
	}
}

// PackBTransposed packs B = Sᵀ where src is the row-major N×K matrix S
// (B[k][n] = src[n*ldsrc+k]) into dst, reshaping dst to K×N. This is the
// forward-pass case: a layer's weights W (outputs×inputs) become B = Wᵀ.
// Each packed pair (B[2j][n], B[2j+1][n]) is the adjacent pair
// (S[n][2j], S[n][2j+1]), so this is a transpose of 32-bit pairs.
func PackBTransposed(dst *Packed, src []int16, k, n, ldsrc int) {
	checkSource("PackBTransposed", len(src), n, k, ldsrc)
	dst.resize(k, n)
	if k == 0 || n == 0 {
		return
	}
	for n0 := 0; n0 < n; n0 += ColumnAlign {
		rows := min(ColumnAlign, n-n0)
		transposeBlock(dst.data[n0*2:], dst.stride, src[n0*ldsrc:(n0+rows-1)*ldsrc+k], ldsrc, rows, k)
	}
}

// transposeBlockGo packs source rows [0, rows) of s (rows ≤ ColumnAlign) as
// the packed columns starting at d[0], zeroing the block's padding columns
// rows..ColumnAlign-1.
func transposeBlockGo(d []int16, np int, s []int16, lds, rows, k int) {
	k2s := (k + 1) / 2
	for i := range rows {
		row := s[i*lds : i*lds+k]
		for j := range k / 2 {
			o := j*np*2 + i*2
			d[o], d[o+1] = row[2*j], row[2*j+1]
		}
		if k%2 == 1 {
			o := (k2s-1)*np*2 + i*2
			d[o], d[o+1] = row[k-1], 0
		}
	}
	if rows < ColumnAlign {
		for j := range k2s {
			clear(d[j*np*2+rows*2 : j*np*2+ColumnAlign*2])
		}
	}
}

// checkSource validates a rows×cols row-major source with stride ld.
func checkSource(fn string, length, rows, cols, ld int) {
	if rows < 0 || cols < 0 {
		panic(fmt.Sprintf("kernel: %s: negative dimensions %d×%d", fn, rows, cols))
	}
	if ld < cols {
		panic(fmt.Sprintf("kernel: %s: stride %d < %d columns", fn, ld, cols))
	}
	if rows > 0 && cols > 0 && length < (rows-1)*ld+cols {
		panic(fmt.Sprintf("kernel: %s: source has %d elements, %d×%d with stride %d needs %d",
			fn, length, rows, cols, ld, (rows-1)*ld+cols))
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// TransposeStride returns the least row stride Transpose accepts for a
// product of K rows: K rounded up to an even number of whole 32-element
// vectors, so that its full-vector stores stay inside each row.
func TransposeStride(k int) int { return roundUp(max(k, 1), 32) }

// Transpose writes columns [n0, n1) of B, transposed, as rows [0, n1-n0) of
// the row-major matrix dst with stride ldd ≥ TransposeStride(K): dst[(n -
// n0)*ldd + k] = B[k][n] for k < K, and zero in columns K..ldd-1 of those
// rows up to the next multiple of 32. It is how the engine turns a packed
// gradient into the left operand of a weight-gradient product; disjoint
// column ranges may be transposed concurrently.
func (p *Packed) Transpose(dst []int16, ldd, n0, n1 int) {
	if n0 < 0 || n1 < n0 || n1 > p.n {
		panic(fmt.Sprintf("kernel: Transpose of columns [%d, %d) of %d", n0, n1, p.n))
	}
	if ldd < TransposeStride(p.k) {
		panic(fmt.Sprintf("kernel: Transpose stride %d < %d", ldd, TransposeStride(p.k)))
	}
	if n0 == n1 {
		return
	}
	if len(dst) < (n1-n0-1)*ldd+TransposeStride(p.k) {
		panic(fmt.Sprintf("kernel: Transpose destination has %d elements, need %d", len(dst), (n1-n0-1)*ldd+TransposeStride(p.k)))
	}
	transposePacked(dst, ldd, p.data, p.stride, p.pairRows(), n0, n1)
}

// transposeGo is transposePacked in Go: pair-row j of the packed data
// (stride np pairs) holds B[2j][n], B[2j+1][n] at pair n.
func transposeGo(dst []int16, ldd int, data []int16, np, k2, n0, n1 int) {
	kp := roundUp(2*k2, 32)
	for n := n0; n < n1; n++ {
		row := dst[(n-n0)*ldd : (n-n0)*ldd+kp]
		for j := range k2 {
			o := j*np*2 + n*2
			row[2*j], row[2*j+1] = data[o], data[o+1]
		}
		clear(row[2*k2:])
	}
}
