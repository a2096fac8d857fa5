package kernel

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/par"
)

// Kernel computes C = A·B over int16 inputs with int32 results.
type Kernel interface {
	// Name identifies the implementation ("go", "avx512vnni", and
	// "avx512vnni/2" for the two-thread Parallel wrapper of it).
	Name() string
	// Gemm overwrites columns [0, b.N()) of rows [0, m) of c with A·B:
	//
	//	c[i*ldc+n] = Σ_{k<K} a[i*lda+k] · B[k][n]   (wrapped to int32)
	//
	// where K = b.K(). A is read in pairs (a[i*lda+2j], a[i*lda+2j+1]),
	// so when K is odd the element a[i*lda+K] must exist (it may hold any
	// value: it meets a zero padding row of B). Requirements, checked with
	// a panic before anything is read or written: m ≥ 0, lda ≥ K,
	// ldc ≥ N, len(a) ≥ (m-1)*lda + K rounded up to even, len(c) ≥
	// (m-1)*ldc + N. Columns ≥ N of c are never written.
	Gemm(c []int32, ldc int, a []int16, lda int, b *Packed, m int)
}

// Generic returns the pure-Go kernel, available on every platform. It is
// the reference the other kernels are tested against.
func Generic() Kernel { return goKernel{} }

// Best returns the fastest single-threaded kernel this CPU and build
// support: AVX-512 VNNI on amd64 CPUs that have it (unless built with the
// purego tag), else Generic.
func Best() Kernel { return best() }

// Names lists every kernel name ByName knows, available here or not.
func Names() []string { return []string{nameGo, nameAVX512VNNI} }

const (
	nameGo         = "go"
	nameAVX512VNNI = "avx512vnni"
)

// ByName returns the kernel called name. It fails with ErrUnknownKernel for
// a name not in Names and with ErrUnavailable for one this CPU or build
// cannot run.
func ByName(name string) (Kernel, error) {
	switch name {
	case nameGo:
		return Generic(), nil
	case nameAVX512VNNI:
		if k := vnniKernel(); k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("kernel %q needs amd64 with AVX-512 F, BW and VNNI and a build without the purego tag: %w", name, ErrUnavailable)
	}
	return nil, fmt.Errorf("kernel %q (known: %q): %w", name, Names(), ErrUnknownKernel)
}

// checkGemm validates Gemm's arguments and reports whether there is work:
// false when m or N is 0. It clears the output when K is 0.
func checkGemm(c []int32, ldc int, a []int16, lda int, b *Packed, m int) bool {
	if b == nil {
		panic("kernel: Gemm: nil Packed")
	}
	k, n := b.k, b.n
	if m < 0 {
		panic(fmt.Sprintf("kernel: Gemm: negative row count %d", m))
	}
	if m == 0 || n == 0 {
		return false
	}
	if ldc < n {
		panic(fmt.Sprintf("kernel: Gemm: ldc %d < N %d", ldc, n))
	}
	if need := (m-1)*ldc + n; len(c) < need {
		panic(fmt.Sprintf("kernel: Gemm: len(c) %d < %d for %d×%d with ldc %d", len(c), need, m, n, ldc))
	}
	if k == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
		return false
	}
	if lda < k {
		panic(fmt.Sprintf("kernel: Gemm: lda %d < K %d", lda, k))
	}
	if need := (m-1)*lda + 2*b.pairRows(); len(a) < need {
		panic(fmt.Sprintf("kernel: Gemm: len(a) %d < %d for %d×%d with lda %d (odd K needs one pad element per row)",
			len(a), need, m, k, lda))
	}
	if need := (b.pairRows()-1)*b.stride*2 + roundUp(n, ColumnAlign)*2; len(b.data) < need {
		panic(fmt.Sprintf("kernel: Gemm: packed B holds %d elements, %d×%d needs %d", len(b.data), k, n, need))
	}
	return true
}

// DefaultMinShareMACs is the default smallest share of a product, in
// multiply-adds, that Parallel hands to another goroutine: about 150µs of
// work for the vector kernel. A parked thread can take that long to start
// running (measured 100–160µs on a 2-vCPU Firecracker VM; a few µs on bare
// metal, where MinShareMACs can be set lower), and a share that starts
// after the caller's own share has finished gains nothing.
const DefaultMinShareMACs = 1 << 25

// Option configures Parallel.
type Option func(*parallel)

// MinShareMACs sets the smallest share, in multiply-adds, that Parallel
// runs on another goroutine (default DefaultMinShareMACs). Products with
// less than twice this much work run inline.
func MinShareMACs(n int) Option { return func(p *parallel) { p.minMACs = max(n, 1) } }

// Parallel returns a kernel that splits each product across up to threads
// goroutines (the caller's goroutine does one share): across 64-column
// panels when there are enough, else across rows. Products too small to
// gain (see MinShareMACs), and threads ≤ 1, run inline on the caller's
// goroutine with no goroutine or allocation overhead. Each output element
// is still computed by exactly one call of k, so results equal k's bit for
// bit.
func Parallel(k Kernel, threads int, opts ...Option) Kernel {
	if threads <= 1 {
		return k
	}
	p := &parallel{inner: k, threads: threads, team: par.Shared(threads), minMACs: DefaultMinShareMACs,
		name: fmt.Sprintf("%s/%d", k.Name(), threads)}
	for _, o := range opts {
		o(p)
	}
	return p
}

type parallel struct {
	inner   Kernel
	threads int
	team    *par.Team
	minMACs int
	name    string
}

func (p *parallel) Name() string { return p.name }

// panelCols is the column width the vector kernel processes at once;
// splitting on multiples of it keeps every share on the widest micro-kernel.
const panelCols = 64

func (p *parallel) Gemm(c []int32, ldc int, a []int16, lda int, b *Packed, m int) {
	if !checkGemm(c, ldc, a, lda, b, m) {
		return
	}
	n := b.n
	t := min(p.threads, m*b.k*n/p.minMACs)
	if t <= 1 {
		p.inner.Gemm(c, ldc, a, lda, b, m)
		return
	}
	panels := (n + panelCols - 1) / panelCols
	switch {
	case panels >= t && (panels%t == 0 || panels >= 4*t):
		p.splitCols(c, ldc, a, lda, b, m, t, panelCols)
	case m >= t*splitRows:
		p.splitRows(c, ldc, a, lda, b, m, t)
	default:
		p.splitCols(c, ldc, a, lda, b, m, min(t, (n+ColumnAlign-1)/ColumnAlign), ColumnAlign)
	}
}

// splitCols gives each of t shares a contiguous run of unit-wide column
// blocks.
func (p *parallel) splitCols(c []int32, ldc int, a []int16, lda int, b *Packed, m, t, unit int) {
	units := (b.n + unit - 1) / unit
	p.team.Run(t, func(i int) {
		n0 := min(units*i/t*unit, b.n)
		n1 := min(units*(i+1)/t*unit, b.n)
		if n0 < n1 {
			p.inner.Gemm(c[n0:], ldc, a, lda, b.cols(n0, n1), m)
		}
	})
}

// splitRows gives each of t shares a contiguous run of rows, the share
// boundaries rounded to multiples of splitRows.
func (p *parallel) splitRows(c []int32, ldc int, a []int16, lda int, b *Packed, m, t int) {
	bound := func(i int) int {
		if i == t {
			return m
		}
		return (m*i/t + splitRows/2) / splitRows * splitRows
	}
	p.team.Run(t, func(i int) {
		m0, m1 := bound(i), bound(i+1)
		if m0 < m1 {
			p.inner.Gemm(c[m0*ldc:], ldc, a[m0*lda:], lda, b, m1-m0)
		}
	})
}
