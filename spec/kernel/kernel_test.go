package kernel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// mlpShapes are the products of one training step of a 784-256-128-10 MLP
// (forward, input gradient, weight gradient), at batch 64 and 1024.
var mlpShapes = []struct {
	name    string
	m, k, n int
}{
	{"fwd1", 64, 784, 256},
	{"fwd2", 64, 256, 128},
	{"fwd3", 64, 128, 10},
	{"dx3", 64, 10, 128},
	{"dx2", 64, 128, 256},
	{"dw1", 256, 64, 784},
	{"dw2", 128, 64, 256},
	{"dw3", 10, 64, 128},
	{"fwd1-b1024", 1024, 784, 256},
	{"fwd2-b1024", 1024, 256, 128},
	{"fwd3-b1024", 1024, 128, 10},
	{"dx3-b1024", 1024, 10, 128},
	{"dx2-b1024", 1024, 128, 256},
	{"dw1-b1024", 256, 1024, 784},
	{"dw2-b1024", 128, 1024, 256},
	{"dw3-b1024", 10, 1024, 128},
}

// testKernels are every implementation and wrapper that must agree with
// the naive product. The forced parallel wrappers split even tiny products.
func testKernels() []Kernel {
	ks := []Kernel{Generic(), Best(), Parallel(Best(), 2),
		Parallel(Best(), 2, MinShareMACs(1)), Parallel(Best(), 3, MinShareMACs(1)), Parallel(Generic(), 2, MinShareMACs(1))}
	if k := vnniKernel(); k != nil {
		ks = append(ks, k)
	}
	return ks
}

// problem is one product with its operands laid out the way Gemm sees them.
type problem struct {
	m, k, n  int
	lda, ldc int
	a        []int16 // m rows of stride lda, plus the odd-K pad element
	bsrc     []int16 // B row-major K×N, stride n
}

// newProblem draws A and B with values in [-lim, lim] (lim ≤ 32768 draws
// from the full int16 range at 32768). Strides get random slack; the pad
// element of odd K holds garbage, which Gemm must ignore.
func newProblem(rng *rand.Rand, m, k, n, lim int) *problem {
	p := &problem{m: m, k: k, n: n, lda: k + rng.IntN(3), ldc: max(n+rng.IntN(20), 1)}
	val := func() int16 { return int16(rng.IntN(2*lim+1) - lim) }
	k2 := (k + 1) / 2
	p.a = make([]int16, max((m-1)*p.lda+2*k2, 0))
	for i := range p.a {
		p.a[i] = val()
	}
	p.bsrc = make([]int16, k*n)
	for i := range p.bsrc {
		p.bsrc[i] = val()
	}
	return p
}

// want is the product by the definition: exact int64 sums, wrapped to int32.
func (p *problem) want() []int32 {
	w := make([]int32, p.m*p.n)
	for i := range p.m {
		for j := range p.n {
			var s int64
			for k := range p.k {
				s += int64(p.a[i*p.lda+k]) * int64(p.bsrc[k*p.n+j])
			}
			w[i*p.n+j] = int32(s)
		}
	}
	return w
}

// packings returns B packed both ways: from B and from the transpose Bᵀ.
func (p *problem) packings() []*Packed {
	b1 := new(Packed)
	PackB(b1, p.bsrc, p.k, p.n, p.n)
	t := make([]int16, p.n*p.k)
	for k := range p.k {
		for j := range p.n {
			t[j*p.k+k] = p.bsrc[k*p.n+j]
		}
	}
	b2 := NewPacked(3, 5) // reused: PackBTransposed reshapes it
	PackBTransposed(b2, t, p.k, p.n, p.k)
	return []*Packed{b1, b2}
}

const sentinel = int32(-0x5a5a5a5b)

// check runs every kernel on p and compares with want, including that no
// element outside the M×N result was written.
func (p *problem) check(t testing.TB, want []int32) {
	t.Helper()
	for bi, b := range p.packings() {
		for k := range p.k {
			for j := range p.n {
				if got := b.At(k, j); got != p.bsrc[k*p.n+j] {
					t.Fatalf("packing %d: At(%d,%d) = %d, want %d", bi, k, j, got, p.bsrc[k*p.n+j])
				}
			}
		}
		for _, kern := range testKernels() {
			c := make([]int32, max((p.m-1)*p.ldc+p.n, 0)+7)
			for i := range c {
				c[i] = sentinel
			}
			kern.Gemm(c, p.ldc, p.a, p.lda, b, p.m)
			for i := range c {
				r, j := i/p.ldc, i%p.ldc
				if r < p.m && j < p.n {
					if c[i] != want[r*p.n+j] {
						t.Fatalf("%s, packing %d, %d×%d·%d×%d (lda %d, ldc %d): C[%d][%d] = %d, want %d",
							kern.Name(), bi, p.m, p.k, p.k, p.n, p.lda, p.ldc, r, j, c[i], want[r*p.n+j])
					}
				} else if c[i] != sentinel {
					t.Fatalf("%s, packing %d, %d×%d·%d×%d (lda %d, ldc %d): wrote outside the result at row %d col %d",
						kern.Name(), bi, p.m, p.k, p.k, p.n, p.lda, p.ldc, r, j)
				}
			}
		}
	}
}

func TestMLPShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range mlpShapes {
		t.Run(s.name, func(t *testing.T) {
			p := newProblem(rng, s.m, s.k, s.n, 2047)
			if s.m*s.k*s.n <= 1<<24 {
				p.check(t, p.want())
				return
			}
			// Batch-1024 shapes: the naive loop is too slow to run on
			// every kernel, so the vector kernels are compared with
			// Generic, which the smaller shapes check against the naive
			// product.
			if testing.Short() || Best() == Generic() {
				t.Skip("large shape: needs a vector kernel and no -short")
			}
			b := p.packings()[1]
			want := make([]int32, (p.m-1)*p.ldc+p.n)
			Generic().Gemm(want, p.ldc, p.a, p.lda, b, p.m)
			for _, kern := range []Kernel{Best(), Parallel(Best(), 2)} {
				c := make([]int32, len(want))
				kern.Gemm(c, p.ldc, p.a, p.lda, b, p.m)
				for i := range p.m {
					for j := range p.n {
						if c[i*p.ldc+j] != want[i*p.ldc+j] {
							t.Fatalf("%s: C[%d][%d] = %d, want %d", kern.Name(), i, j, c[i*p.ldc+j], want[i*p.ldc+j])
						}
					}
				}
			}
		})
	}
}

// TestSmallShapes covers every micro-kernel (row tails 1..5 and full
// blocks, 1..4 column vectors, partial vectors) and odd K.
func TestSmallShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for m := 1; m <= 14; m++ {
		for _, n := range []int{1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 79, 128, 130} {
			for _, k := range []int{1, 2, 3, 4, 7, 18} {
				p := newProblem(rng, m, k, n, 2047)
				p.check(t, p.want())
			}
		}
	}
}

func TestRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	iters := 300
	if testing.Short() {
		iters = 50
	}
	for range iters {
		m, k, n := 1+rng.IntN(70), 1+rng.IntN(300), 1+rng.IntN(300)
		p := newProblem(rng, m, k, n, 2047)
		p.check(t, p.want())
	}
}

// TestFullRange uses extreme int16 values, where sums wrap around int32
// (even a single pair, (-32768)² + (-32768)², is 2³¹): every kernel must
// wrap exactly as int32 arithmetic does.
func TestFullRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		m, k, n := 1+rng.IntN(20), 1+rng.IntN(40), 1+rng.IntN(150)
		p := newProblem(rng, m, k, n, 32768)
		p.check(t, p.want())
	}
	p := newProblem(rng, 7, 9, 70, 0)
	for i := range p.a {
		p.a[i] = -32768
	}
	for i := range p.bsrc {
		p.bsrc[i] = -32768
	}
	p.check(t, p.want())
}

func TestEmpty(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, d := range [][3]int{{0, 5, 5}, {5, 0, 5}, {5, 5, 0}, {0, 0, 0}, {3, 0, 40}} {
		p := newProblem(rng, d[0], d[1], d[2], 10)
		p.check(t, p.want())
	}
}

// TestPackedReuse packs a large matrix, then smaller ones into the same
// Packed: the padding of the smaller must read as zero, not stale data.
func TestPackedReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var b Packed
	big := newProblem(rng, 1, 40, 100, 2047)
	PackB(&b, big.bsrc, big.k, big.n, big.n)
	storage := &b.data[0]
	for _, d := range [][2]int{{7, 9}, {3, 33}, {40, 100}, {1, 1}} {
		p := newProblem(rng, 5, d[0], d[1], 2047)
		PackB(&b, p.bsrc, p.k, p.n, p.n)
		if &b.data[0] != storage {
			t.Fatalf("PackB reallocated for %d×%d after %d×%d", p.k, p.n, big.k, big.n)
		}
		k2 := (p.k + 1) / 2
		for k := range 2 * k2 {
			for j := range b.Np() {
				v := b.data[(k/2)*b.Np()*2+j*2+k%2]
				if (k >= p.k || j >= p.n) && v != 0 {
					t.Fatalf("%d×%d: padding (%d,%d) = %d", p.k, p.n, k, j, v)
				}
			}
		}
		p.check(t, p.want())
	}
}

func TestGemmRejectsBadArguments(t *testing.T) {
	b := NewPacked(5, 20)
	good := func() (c []int32, ldc int, a []int16, lda int, m int) {
		return make([]int32, 2*20), 20, make([]int16, 6+6), 6, 2
	}
	cases := map[string]func(){}
	for _, kern := range testKernels() {
		cases[kern.Name()+"/short c"] = func() {
			c, ldc, a, lda, m := good()
			kern.Gemm(c[:39], ldc, a, lda, b, m)
		}
		cases[kern.Name()+"/ldc"] = func() {
			c, _, a, lda, m := good()
			kern.Gemm(c, 19, a, lda, b, m)
		}
		cases[kern.Name()+"/no pad"] = func() {
			c, ldc, a, _, m := good()
			kern.Gemm(c, ldc, a[:10], 5, b, m)
		}
		cases[kern.Name()+"/lda"] = func() {
			c, ldc, a, _, m := good()
			kern.Gemm(c, ldc, a, 4, b, m)
		}
		cases[kern.Name()+"/m"] = func() {
			c, ldc, a, lda, _ := good()
			kern.Gemm(c, ldc, a, lda, b, -1)
		}
		cases[kern.Name()+"/nil"] = func() {
			c, ldc, a, lda, m := good()
			kern.Gemm(c, ldc, a, lda, nil, m)
		}
	}
	cases["PackB/short"] = func() { PackB(new(Packed), make([]int16, 11), 3, 4, 4) }
	cases["PackB/stride"] = func() { PackB(new(Packed), make([]int16, 12), 3, 4, 3) }
	cases["PackBTransposed/short"] = func() { PackBTransposed(new(Packed), make([]int16, 11), 3, 4, 3) }
	cases["NewPacked/negative"] = func() { NewPacked(-1, 3) }
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
	// The exact minimum is accepted: the last row's pad element only.
	c, ldc, a, lda, m := good()
	for _, kern := range testKernels() {
		kern.Gemm(c, ldc, a[:lda+6], lda, b, m)
		kern.Gemm(c, ldc, a[:11], 5, b, m)
	}
}

func TestByName(t *testing.T) {
	for _, name := range Names() {
		k, err := ByName(name)
		switch {
		case err == nil:
			if k.Name() != name {
				t.Errorf("ByName(%q).Name() = %q", name, k.Name())
			}
		case errors.Is(err, ErrUnavailable):
			if name == nameGo || vnniKernel() != nil {
				t.Errorf("ByName(%q): %v", name, err)
			}
		default:
			t.Errorf("ByName(%q): %v", name, err)
		}
	}
	if _, err := ByName("avx9000"); !errors.Is(err, ErrUnknownKernel) {
		t.Errorf("ByName(unknown) error = %v, want ErrUnknownKernel", err)
	}
	if Best().Name() != nameAVX512VNNI && vnniKernel() != nil {
		t.Errorf("Best() = %s although VNNI is available", Best().Name())
	}
	if Parallel(Best(), 1) != Best() {
		t.Error("Parallel(k, 1) is not k itself")
	}
	if got, want := Parallel(Generic(), 2).Name(), "go/2"; got != want {
		t.Errorf("Parallel name %q, want %q", got, want)
	}
	t.Logf("Best() = %s", Best().Name())
}

// TestParallelSplits drives every split rule on shapes of realistic size.
func TestParallelSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, d := range [][3]int{{64, 784, 256}, {256, 64, 784}, {600, 64, 10}, {9, 4000, 48}, {64, 128, 200}} {
		p := newProblem(rng, d[0], d[1], d[2], 255)
		want := p.want()
		for _, threads := range []int{2, 3, 4, 7} {
			b := p.packings()[0]
			c := make([]int32, (p.m-1)*p.ldc+p.n)
			Parallel(Best(), threads, MinShareMACs(1<<16)).Gemm(c, p.ldc, p.a, p.lda, b, p.m)
			for i := range p.m {
				for j := range p.n {
					if c[i*p.ldc+j] != want[i*p.n+j] {
						t.Fatalf("%v threads %d: C[%d][%d] = %d, want %d", d, threads, i, j, c[i*p.ldc+j], want[i*p.n+j])
					}
				}
			}
		}
	}
}

// FuzzGemm derives a shape, strides and values from the input and checks
// every kernel against the definition. Values are full-range int16, so the
// wrapped-sum semantics are exercised too.
func FuzzGemm(f *testing.F) {
	for _, d := range [][3]byte{{1, 1, 1}, {6, 3, 64}, {7, 10, 17}, {13, 31, 65}, {64, 128, 10}} {
		f.Add(d[0], d[1], d[2], uint64(d[0])*31+uint64(d[2]), []byte{0x80, 0x00, 0x7f, 0xff, 1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, m, k, n byte, seed uint64, vals []byte) {
		M, K, N := int(m)%40, int(k)%80, int(n)%200
		rng := rand.New(rand.NewPCG(seed, uint64(len(vals))))
		p := newProblem(rng, M, K, N, 32768)
		for i := 0; i+1 < len(vals) && i/2 < len(p.a)+len(p.bsrc); i += 2 {
			v := int16(uint16(vals[i])<<8 | uint16(vals[i+1]))
			if j := i / 2; j < len(p.a) {
				p.a[j] = v
			} else {
				p.bsrc[j-len(p.a)] = v
			}
		}
		p.check(t, p.want())
	})
}

func Example_gemm() {
	// C = A·Wᵀ for A 2×3 (odd K: one pad element per row) and W 2×3.
	a := []int16{
		1, 2, 3, 0,
		4, 5, 6, 0,
	}
	w := []int16{
		1, 0, -1,
		2, 2, 2,
	}
	var b Packed
	PackBTransposed(&b, w, 3, 2, 3)
	c := make([]int32, 2*2)
	Best().Gemm(c, 2, a, 4, &b, 2)
	fmt.Println(c)
	// Output: [-2 12 -2 30]
}
