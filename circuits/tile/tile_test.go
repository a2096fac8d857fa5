package tile

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/test"

	"github.com/beluga-compute/beluga/protocol/core/zkcommit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/ref"
	"github.com/beluga-compute/beluga/spec/spectest"
)

func init() { logger.Disable() }

// fixture is two consecutive steps of a small job and their commitments.
type fixture struct {
	s               *spec.Spec
	l               *zkcommit.Layout
	st, next        *spec.State
	vals, nextVals  []zkcommit.LayerValues
	treeIn, treeOut *zkcommit.Tree
}

func batch(r *rand.Rand, s *spec.Spec) ([][]uint8, []uint8) {
	x := make([][]uint8, s.BatchSize)
	y := make([]uint8, s.BatchSize)
	for b := range x {
		x[b] = make([]uint8, s.Data.Train.Features)
		for i := range x[b] {
			x[b][i] = uint8(r.IntN(256))
		}
		y[b] = uint8(r.IntN(s.Data.Train.Classes))
	}
	return x, y
}

func newFixture(t testing.TB, s *spec.Spec, seed uint64, steps int) *fixture {
	r := rand.New(rand.NewPCG(seed, 1))
	l, err := zkcommit.NewLayout(s)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Init()
	// Advance a few steps so momenta are non-zero.
	for k := range steps {
		x, y := batch(r, s)
		_, nx, err := ref.StepOps(s, st, int64(k), x, y)
		if err != nil {
			t.Fatal(err)
		}
		st = nx
	}
	f := &fixture{s: s, l: l, st: st}
	x, y := batch(r, s)
	tr, next, err := ref.StepOps(s, st, st.Step, x, y)
	if err != nil {
		t.Fatal(err)
	}
	f.next = next
	if f.vals, err = zkcommit.StepValues(tr); err != nil {
		t.Fatal(err)
	}
	x, y = batch(r, s)
	tr2, _, err := ref.StepOps(s, next, next.Step, x, y)
	if err != nil {
		t.Fatal(err)
	}
	if f.nextVals, err = zkcommit.StepValues(tr2); err != nil {
		t.Fatal(err)
	}
	if f.treeIn, err = l.Commit(st, f.vals); err != nil {
		t.Fatal(err)
	}
	if f.treeOut, err = l.Commit(next, f.nextVals); err != nil {
		t.Fatal(err)
	}
	return f
}

func smallSpec(t testing.TB) *spec.Spec {
	s, err := spectest.MLP(4)
	if err != nil {
		t.Fatal(err)
	}
	s.Model.Layers = []spec.Layer{{Op: spec.OpLinear, Out: 20}, {Op: spec.OpReLU}, {Op: spec.OpLinear, Out: 10}}
	s.Steps = 100
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) solve(t *testing.T, j, r, c int, edit func(*Witness)) error {
	t.Helper()
	p, err := ParamsFor(f.s, j)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Build(f.s, f.l, j, r, c, f.st, f.vals, f.treeIn, f.treeOut)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(w)
	}
	circuit, _ := New(p)
	return test.IsSolved(circuit, w.Assignment(p), ecc.BN254.ScalarField())
}

// TestHonestTilesSolve: honest witnesses satisfy the circuit. By default
// it solves each layer's corner tiles (the partial last row, the first and
// last column) and one in the middle, 7 of the 100 tiles; BELUGA_SLOW=1
// solves them all (~7 s).
func TestHonestTilesSolve(t *testing.T) {
	t.Parallel()
	f := newFixture(t, smallSpec(t), 1, 2)
	all := spectest.IsSlow()
	for j, ll := range f.l.Layers {
		for r := range ll.Rows {
			for c := range ll.Cols {
				corner := (r == 0 || r == ll.Rows-1) && (c == 0 || c == ll.Cols-1)
				middle := r == ll.Rows/2 && c == ll.Cols/2
				if !all && !corner && !middle {
					continue
				}
				if err := f.solve(t, j, r, c, nil); err != nil {
					t.Fatalf("layer %d tile (%d, %d): %v", j, r, c, err)
				}
			}
		}
	}
}

func TestDishonestWitnessesFail(t *testing.T) {
	t.Parallel()
	f := newFixture(t, smallSpec(t), 2, 3)
	other := newFixture(t, smallSpec(t), 3, 3)
	one := fr.One()
	cases := map[string]func(*Witness){
		"tampered weight":         func(w *Witness) { w.W[5]++ },
		"tampered momentum":       func(w *Witness) { w.V[17]-- },
		"tampered gradient":       func(w *Witness) { w.G[3]++ },
		"tampered input":          func(w *Witness) { w.A[9]++ },
		"other exponent":          func(w *Witness) { w.E-- },
		"other step":              func(w *Witness) { w.Step++ },
		"other learning rate":     func(w *Witness) { w.LR += w.LR / 2 },
		"other tile index":        func(w *Witness) { w.StateIdx++ },
		"other gradient block":    func(w *Witness) { w.GradIdx++ },
		"other roots (in)":        func(w *Witness) { w.RootIn = other.treeIn.Root() },
		"other roots (out)":       func(w *Witness) { w.RootOut = other.treeOut.Root() },
		"output root of step t":   func(w *Witness) { w.RootOut = w.RootIn },
		"tampered path":           func(w *Witness) { w.PathOut[0].Add(&w.PathOut[0], &one) },
		"gradient outside 16 bit": func(w *Witness) { w.G[0] += 1 << 16 },
	}
	for name, edit := range cases {
		if err := f.solve(t, 1, 0, 0, edit); err == nil {
			t.Errorf("%s: the circuit accepted it", name)
		}
	}
}

// TestWrongRoundingFails commits a next state whose momentum differs from
// the spec's by one unit in one value (what a floor instead of a rounding
// shift produces): the tile that holds it no longer proves.
func TestWrongRoundingFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, smallSpec(t), 4, 2)
	bad := f.next.Clone()
	bad.Layer(1, spec.TensorWeightMomentum)[0]++ // tile (0, 0) of layer 1
	tree, err := f.l.Commit(bad, f.nextVals)
	if err != nil {
		t.Fatal(err)
	}
	f.treeOut = tree
	if err := f.solve(t, 1, 0, 0, nil); err == nil {
		t.Fatal("a next state off by one in the momentum proved")
	}
	if err := f.solve(t, 1, 0, 1, nil); err != nil {
		t.Fatalf("an untouched tile stopped proving: %v", err)
	}
}

// productCircuit exposes CheckProduct with D as a witness.
type productCircuit struct {
	G, A, D []frontend.Variable
	B       int `gnark:"-"`
}

func (c *productCircuit) Define(api frontend.API) error {
	CheckProduct(api, c.B, c.G, c.A, c.D)
	return nil
}

func TestFreivaldsRejectsAWrongProduct(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	const B = 8
	g, a := make([]int64, B*T), make([]int64, B*T)
	for i := range g {
		g[i], a[i] = r.Int64N(4095)-2047, r.Int64N(1023)-511
	}
	d := make([]int64, T*T)
	for o := range T {
		for i := range T {
			for b := range B {
				d[o*T+i] += g[b*T+o] * a[b*T+i]
			}
		}
	}
	assign := func(d []int64) *productCircuit {
		c := &productCircuit{B: B}
		for _, v := range g {
			c.G = append(c.G, v)
		}
		for _, v := range a {
			c.A = append(c.A, v)
		}
		for _, v := range d {
			c.D = append(c.D, v)
		}
		return c
	}
	shape := &productCircuit{G: make([]frontend.Variable, B*T), A: make([]frontend.Variable, B*T), D: make([]frontend.Variable, T*T), B: B}
	if err := test.IsSolved(shape, assign(d), ecc.BN254.ScalarField()); err != nil {
		t.Fatalf("the true product failed: %v", err)
	}
	for _, k := range []int{0, 77, 255} {
		bad := append([]int64(nil), d...)
		bad[k]++
		if test.IsSolved(shape, assign(bad), ecc.BN254.ScalarField()) == nil {
			t.Fatalf("a product off by one at %d passed", k)
		}
	}
	// Transposed product: same entries, wrong places.
	tr := make([]int64, T*T)
	for o := range T {
		for i := range T {
			tr[i*T+o] = d[o*T+i]
		}
	}
	if test.IsSolved(shape, assign(tr), ecc.BN254.ScalarField()) == nil {
		t.Fatal("the transposed product passed")
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	s, err := spectest.MLP(64)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParamsFor(s, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Last layer: E = −grad_bits = −11, k − lr_shift = −11 − 8 + 26 − 30.
	if p.SMin != 23 || p.SMax != 23 || p.Depth != 10 {
		t.Fatalf("last layer params %+v", p)
	}
	if _, err := ParamsFor(s, 3); !errors.Is(err, ErrParams) {
		t.Fatalf("layer 3 of 3: %v", err)
	}
	bad := p
	bad.SMin = 0
	if _, err := New(bad); !errors.Is(err, ErrParams) {
		t.Fatalf("shift 0: %v", err)
	}
}
