package fixed

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/test"

	sfixed "github.com/beluga-compute/beluga/spec/fixed"
)

func init() { logger.Disable() }

var field = ecc.BN254.ScalarField()

// opCircuit asserts Y[i] = op(X[i]) for every i.
type opCircuit struct {
	X, Y []frontend.Variable
	op   *opFunc `gnark:"-"`
}

// opFunc is behind a pointer: gnark's test engine clones circuits and
// checks the clone with reflect.DeepEqual, which is false for non-nil funcs
// but true for equal pointers.
type opFunc struct {
	f func(api frontend.API, x frontend.Variable) frontend.Variable
}

func (c *opCircuit) Define(api frontend.API) error {
	for i := range c.X {
		api.AssertIsEqual(c.op.f(api, c.X[i]), c.Y[i])
	}
	return nil
}

type gadget struct {
	name string
	b    int // input bound: |x| ≤ 2^b (and < 2^62 for the Go reference)
	op   func(api frontend.API, x frontend.Variable) frontend.Variable
	ref  func(x int64) int64
}

func gadgets() []gadget {
	var gs []gadget
	for _, c := range []struct{ s, b int }{{1, 62}, {2, 62}, {7, 40}, {16, 61}, {31, 62}, {62, 62}, {40, 31}, {5, 3}} {
		gs = append(gs, gadget{
			name: fmt.Sprintf("RoundShift/s=%d,b=%d", c.s, c.b), b: c.b,
			op:  func(api frontend.API, x frontend.Variable) frontend.Variable { return RoundShift(api, x, c.s, c.b) },
			ref: func(x int64) int64 { return sfixed.RoundShift(x, uint(c.s)) },
		})
	}
	for _, c := range []struct {
		lo, hi int64
		b      int
	}{{-1 << 20, 1 << 20, 32}, {-5, 7, 10}, {0, 0, 8}, {-(1 << 30), 1 << 30, 62}, {3, 9, 2}} {
		gs = append(gs, gadget{
			name: fmt.Sprintf("Clamp/[%d,%d],b=%d", c.lo, c.hi, c.b), b: c.b,
			op: func(api frontend.API, x frontend.Variable) frontend.Variable {
				return ClampInt(api, x, c.lo, c.hi, c.b)
			},
			ref: func(x int64) int64 { return sfixed.Clamp(x, c.lo, c.hi) },
		})
	}
	for _, b := range []int{33, 62, 20} {
		gs = append(gs, gadget{
			name: fmt.Sprintf("Sat32/b=%d", b), b: b,
			op:  func(api frontend.API, x frontend.Variable) frontend.Variable { return Sat32(api, x, b) },
			ref: func(x int64) int64 { return int64(sfixed.Sat32(x)) },
		})
	}
	for _, b := range []int{0, 8, 31, 62} {
		gs = append(gs, gadget{
			name: fmt.Sprintf("ReLU/b=%d", b), b: b,
			op:  func(api frontend.API, x frontend.Variable) frontend.Variable { return ReLU(api, x, b) },
			ref: func(x int64) int64 { return max(x, 0) },
		})
	}
	for _, k := range []int{-70, -62, -40, -31, -1, 0, 1, 3, 31, 32, 40, 62} {
		gs = append(gs, gadget{
			name: fmt.Sprintf("Scale/k=%d", k), b: 62,
			op:  func(api frontend.API, x frontend.Variable) frontend.Variable { return Scale(api, x, k, 62) },
			ref: func(x int64) int64 { return int64(sfixed.Scale(x, k)) },
		})
	}
	return gs
}

// inputs returns edge and random integers with |x| ≤ min(2^b, 2^62 − 1).
func inputs(rng *rand.Rand, b int) []int64 {
	lim := int64(1)<<62 - 1
	if b < 62 {
		lim = int64(1) << b
	}
	xs := []int64{0, 1, -1, lim, -lim, lim - 1, -lim + 1}
	for s := 1; s < 63 && int64(1)<<(s-1) <= lim; s++ {
		h := int64(1) << (s - 1) // ties and their neighbours for every shift
		for _, x := range []int64{h, -h, h - 1, -h + 1, h + 1, -h - 1, 3 * h, -3 * h} {
			if x >= -lim && x <= lim {
				xs = append(xs, x)
			}
		}
	}
	for range 48 {
		bits := rng.IntN(63)
		x := rng.Int64N(int64(1)<<bits + 1)
		if rng.IntN(2) == 0 {
			x = -x
		}
		if x >= -lim && x <= lim {
			xs = append(xs, x)
		}
	}
	for range 16 {
		xs = append(xs, rng.Int64N(2*lim+1)-lim)
	}
	return xs
}

func vars(v []int64) []frontend.Variable {
	out := make([]frontend.Variable, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// TestGadgetsMatchSpec: every gadget equals its spec/fixed function on edge
// and random inputs, and rejects the same inputs with any output off by one.
func TestGadgetsMatchSpec(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range gadgets() {
		t.Run(g.name, func(t *testing.T) {
			xs := inputs(rng, g.b)
			ys := make([]int64, len(xs))
			for i, x := range xs {
				ys[i] = g.ref(x)
			}
			c := &opCircuit{X: make([]frontend.Variable, len(xs)), Y: make([]frontend.Variable, len(xs)), op: &opFunc{g.op}}
			if err := test.IsSolved(c, &opCircuit{X: vars(xs), Y: vars(ys)}, field); err != nil {
				t.Fatalf("honest witness rejected: %v", err)
			}
			for _, i := range []int{0, len(xs) / 2, len(xs) - 1} {
				bad := append([]int64(nil), ys...)
				bad[i]++
				one := &opCircuit{X: make([]frontend.Variable, 1), Y: make([]frontend.Variable, 1), op: &opFunc{g.op}}
				if err := test.IsSolved(one, &opCircuit{X: vars(xs[i : i+1]), Y: vars(bad[i : i+1])}, field); err == nil {
					t.Errorf("x=%d: output %d accepted, want %d", xs[i], bad[i], ys[i])
				}
			}
		})
	}
}

// TestCompiledSolve solves one gadget of each kind with the compiled R1CS
// (real range-check commitments, registered hints), not only the test
// engine.
func TestCompiledSolve(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, g := range gadgets() {
		xs := inputs(rng, g.b)[:24]
		ys := make([]int64, len(xs))
		for i, x := range xs {
			ys[i] = g.ref(x)
		}
		ccs, w := compile(t, g.op, xs, ys)
		if err := ccs.IsSolved(w); err != nil {
			t.Errorf("%s: %v", g.name, err)
		}
	}
}

// compile compiles op over len(xs) inputs and returns the R1CS with the
// witness X = xs, Y = ys, or Y = {claim} when claim is set.
func compile(t *testing.T, op func(frontend.API, frontend.Variable) frontend.Variable, xs, ys []int64, claim ...*big.Int) (constraint.ConstraintSystem, witness.Witness) {
	t.Helper()
	yv := vars(ys)
	if len(claim) > 0 {
		yv = []frontend.Variable{claim[0]}
	}
	c := &opCircuit{X: make([]frontend.Variable, len(xs)), Y: make([]frontend.Variable, len(xs)), op: &opFunc{op}}
	ccs, err := frontend.Compile(field, r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	w, err := frontend.NewWitness(&opCircuit{X: vars(xs), Y: yv}, field)
	if err != nil {
		t.Fatal(err)
	}
	return ccs, w
}

// TestCheatingHints replaces the prover's hints by dishonest ones in the
// compiled R1CS: every lie must leave the system unsatisfied, even when the
// claimed output is the lie's consequence.
func TestCheatingHints(t *testing.T) {
	t.Parallel()
	const s, b = 4, 31
	twoS := big.NewInt(1 << s)
	inv := new(big.Int).ModInverse(twoS, field)
	honest := func(in []*big.Int, out []*big.Int) {
		if err := roundShiftHint(field, in, out); err != nil {
			t.Fatal(err)
		}
	}
	// q from r: q = (x + 2^(s−1) − r) / 2^s in the field.
	qFor := func(x, r *big.Int) *big.Int {
		v := new(big.Int).Add(signed(field, x), big.NewInt(1<<(s-1)))
		v.Sub(v, r).Mul(v, inv)
		return v.Mod(v, field)
	}
	cheats := []struct {
		name string
		x    int64
		hint solver.Hint
	}{
		{"round ties down", 8, func(_ *big.Int, in, out []*big.Int) error { // 8/16 = 0.5 → spec 1
			honest(in, out)
			out[0].Sub(out[0], big.NewInt(1))
			out[1].Add(out[1], twoS)
			return nil
		}},
		{"q off by one up", 37, func(_ *big.Int, in, out []*big.Int) error {
			honest(in, out)
			out[0].Add(out[0], big.NewInt(1))
			out[1].Sub(out[1], twoS).Mod(out[1], field)
			return nil
		}},
		{"wrap-around q", 37, func(_ *big.Int, in, out []*big.Int) error {
			// r' = r + 1 stays in [0, 2^s); q' = (x + 2^(s−1) − r')/2^s mod p is
			// a huge field element that only the range check on q rejects.
			honest(in, out)
			out[1].Add(out[1], big.NewInt(1))
			out[0].Set(qFor(in[0], out[1]))
			return nil
		}},
	}
	for _, c := range cheats {
		t.Run(c.name, func(t *testing.T) {
			// Claim the cheater's own q, so that only the gadget's constraints
			// can object.
			out := []*big.Int{new(big.Int), new(big.Int)}
			in := []*big.Int{new(big.Int).Mod(big.NewInt(c.x), field), big.NewInt(s)}
			if err := c.hint(field, in, out); err != nil {
				t.Fatal(err)
			}
			op := func(api frontend.API, x frontend.Variable) frontend.Variable { return RoundShift(api, x, s, b) }
			ccs, w := compile(t, op, []int64{c.x}, nil, out[0])
			if err := ccs.IsSolved(w, solver.OverrideHint(solver.GetHintID(roundShiftHint), c.hint)); err == nil {
				t.Fatalf("cheating hint accepted (x=%d, claimed q=%v)", c.x, out[0])
			}
			// The same constraint system accepts the spec's value.
			_, good := compile(t, op, []int64{c.x}, []int64{sfixed.RoundShift(c.x, s)})
			if err := ccs.IsSolved(good); err != nil {
				t.Fatalf("honest: %v", err)
			}
		})
	}

	flip := func(idx int) solver.Hint {
		return func(f *big.Int, in, out []*big.Int) error {
			if err := clampHint(f, in, out); err != nil {
				return err
			}
			out[idx].Xor(out[idx], big.NewInt(1))
			return nil
		}
	}
	for _, c := range []struct {
		name  string
		x     int64
		hint  solver.Hint
		claim int64
	}{
		{"unclamped below", -100, flip(0), -100},
		{"unclamped above", 100, flip(1), 100},
		{"clamped inside", 3, flip(1), 7},
		{"both", 3, func(f *big.Int, in, out []*big.Int) error { out[0].SetUint64(1); out[1].SetUint64(1); return nil }, -5 + 7 - 3},
		{"non-boolean", 100, func(f *big.Int, in, out []*big.Int) error { out[0].SetUint64(2); out[1].SetUint64(0); return nil }, 0},
	} {
		t.Run("Clamp/"+c.name, func(t *testing.T) {
			op := func(api frontend.API, x frontend.Variable) frontend.Variable { return ClampInt(api, x, -5, 7, 10) }
			ccs, w := compile(t, op, []int64{c.x}, []int64{c.claim})
			if err := ccs.IsSolved(w, solver.OverrideHint(solver.GetHintID(clampHint), c.hint)); err == nil {
				t.Fatalf("cheating clamp accepted")
			}
		})
	}
	// A non-boolean selector β solving d₁ = 0 in the field: without the
	// boolean constraint the range checks pass and y = x − β(x − lo) is
	// whatever field element that makes.
	t.Run("Clamp/field selector", func(t *testing.T) {
		const x, lo, hi = 3, -5, 7
		for sel := range 2 {
			// d₁ = (x−lo) − β(2(x−lo)+1) = 0, or d₂ = (hi−x) − β(2(hi−x)+1) = 0.
			gap := big.NewInt(x - lo)
			if sel == 1 {
				gap = big.NewInt(hi - x)
			}
			beta := new(big.Int).ModInverse(new(big.Int).Add(new(big.Int).Lsh(gap, 1), big.NewInt(1)), field)
			beta.Mul(beta, gap).Mod(beta, field)
			// y = x − β(x − lo) or x + β(hi − x)
			y := new(big.Int).Mul(beta, gap)
			if sel == 0 {
				y.Neg(y)
			}
			y.Add(y, big.NewInt(x)).Mod(y, field)
			hint := func(_ *big.Int, in, out []*big.Int) error {
				out[sel].Set(beta)
				out[1-sel].SetUint64(0)
				return nil
			}
			op := func(api frontend.API, x frontend.Variable) frontend.Variable { return ClampInt(api, x, lo, hi, 10) }
			ccs, w := compile(t, op, []int64{x}, nil, y)
			if err := ccs.IsSolved(w, solver.OverrideHint(solver.GetHintID(clampHint), hint)); err == nil {
				t.Fatalf("non-boolean selector %d accepted", sel)
			}
		}
	})
	t.Run("ReLU/field selector", func(t *testing.T) {
		const x = 9
		beta := new(big.Int).ModInverse(big.NewInt(2*x+1), field)
		beta.Mul(beta, big.NewInt(x)).Mod(beta, field)
		y := new(big.Int).Mul(beta, big.NewInt(x))
		y.Sub(big.NewInt(x), y).Mod(y, field)
		hint := func(_ *big.Int, in, out []*big.Int) error { out[0].Set(beta); return nil }
		op := func(api frontend.API, x frontend.Variable) frontend.Variable { return ReLU(api, x, 10) }
		ccs, w := compile(t, op, []int64{x}, nil, y)
		if err := ccs.IsSolved(w, solver.OverrideHint(solver.GetHintID(negHint), hint)); err == nil {
			t.Fatal("non-boolean selector accepted")
		}
	})
	t.Run("ReLU/flipped", func(t *testing.T) {
		op := func(api frontend.API, x frontend.Variable) frontend.Variable { return ReLU(api, x, 10) }
		for _, x := range []int64{-9, 9, 0} {
			claim := int64(0) // a flipped neg zeroes x ≥ 0 and keeps x < 0
			if x < 0 {
				claim = x
			}
			ccs, w := compile(t, op, []int64{x}, []int64{claim})
			cheat := func(f *big.Int, in, out []*big.Int) error {
				if err := negHint(f, in, out); err != nil {
					return err
				}
				out[0].Xor(out[0], big.NewInt(1))
				return nil
			}
			if err := ccs.IsSolved(w, solver.OverrideHint(solver.GetHintID(negHint), cheat)); err == nil {
				t.Fatalf("x=%d: flipped ReLU accepted", x)
			}
		}
	})
}

// TestInputOutsideBound: an input beyond the stated bound is not silently
// mis-rounded: the honest hint's witness fails the q range check.
func TestInputOutsideBound(t *testing.T) {
	t.Parallel()
	op := func(api frontend.API, x frontend.Variable) frontend.Variable { return RoundShift(api, x, 4, 10) }
	x := int64(1) << 16
	c := &opCircuit{X: make([]frontend.Variable, 1), Y: make([]frontend.Variable, 1), op: &opFunc{op}}
	if err := test.IsSolved(c, &opCircuit{X: vars([]int64{x}), Y: vars([]int64{sfixed.RoundShift(x, 4)})}, field); err == nil {
		t.Fatal("input of 17 bits accepted with bound 10")
	}
}

func TestDot(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	a, b := make([]int64, 16), make([]int64, 16)
	var want int64
	for i := range a {
		a[i], b[i] = rng.Int64N(1<<16)-1<<15, rng.Int64N(1<<16)-1<<15
		want += a[i] * b[i]
	}
	c := &dotCircuit{A: make([]frontend.Variable, 16), B: make([]frontend.Variable, 16)}
	if err := test.IsSolved(c, &dotCircuit{A: vars(a), B: vars(b), C: want}, field); err != nil {
		t.Fatal(err)
	}
	if err := test.IsSolved(c, &dotCircuit{A: vars(a), B: vars(b), C: want + 1}, field); err == nil {
		t.Fatal("wrong dot product accepted")
	}
}

type dotCircuit struct {
	A, B []frontend.Variable
	C    frontend.Variable
}

func (c *dotCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(Dot(api, c.A, c.B), c.C)
	return nil
}
