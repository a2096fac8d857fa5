package update

import (
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/test"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

func init() { logger.Disable() }

var field = ecc.BN254.ScalarField()

// refParams are the parameters of the reference job's last weight tile:
// k = E − InFrac + master_frac with E = −grad_bits.
func refParams(t testing.TB) (Params, *spec.Spec) {
	t.Helper()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	n := s.Numeric
	k := -n.GradBits - n.ActFrac + n.MasterFrac
	return Params{N: 256, Shift: k - s.Optimizer.LRShift, MuShift: s.Optimizer.Momentum.Shift, MasterMax: s.Plan().MasterMax}, s
}

// randomTile draws w in [−M, M], v and d over all of int32 with a share of
// extreme values, so clamps and saturations fire.
func randomTile(rng *rand.Rand, p Params) (w, v, d []int32) {
	w, v, d = make([]int32, p.N), make([]int32, p.N), make([]int32, p.N)
	pick := func(lim int64) int32 {
		switch rng.IntN(6) {
		case 0:
			return int32(lim)
		case 1:
			return int32(-lim)
		case 2:
			return int32(rng.Int64N(2001) - 1000)
		default:
			return int32(rng.Int64N(2*lim+1) - lim)
		}
	}
	for i := range w {
		w[i] = pick(p.MasterMax)
		v[i] = pick(1<<31 - 1)
		if rng.IntN(8) == 0 {
			v[i] = -1 << 31
		}
		d[i] = pick(1<<31 - 1)
	}
	return w, v, d
}

func TestDigestMatchesCircuit(t *testing.T) {
	p := Params{N: 10, Shift: -3, MuShift: 2, MasterMax: 1000}
	w, v, d := randomTile(rand.New(rand.NewPCG(1, 1)), p)
	for i := range w {
		w[i] %= 1000
	}
	a, _, _, err := Assign(p, Witness{Step: 5, Tile: 9, LR: 3, MuNum: 3, W: w, V: v, D: d})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := New(p)
	if err := test.IsSolved(c, a, field); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateMatchesSpec(t *testing.T) {
	ref, s := refParams(t)
	rng := rand.New(rand.NewPCG(2, 3))
	cases := []Params{
		ref,
		{N: 16, Shift: -1, MuShift: 0, MasterMax: 1 << 30},   // μ = 0, shift by 1 (ties)
		{N: 16, Shift: -62, MuShift: 30, MasterMax: 5},       // shift clamps at 62
		{N: 16, Shift: -100, MuShift: 1, MasterMax: 1 << 20}, // beyond 62
		{N: 16, Shift: 0, MuShift: 15, MasterMax: 1 << 25},   // left-shift case, k = 0
		{N: 16, Shift: 5, MuShift: 15, MasterMax: 1 << 25},   // saturating left shift
	}
	for _, p := range cases {
		w, v, d := randomTile(rng, p)
		lr := s.Optimizer.LRAt(0)
		for _, x := range []Witness{
			{Step: 0, Tile: 1, LR: lr, MuNum: min(s.Optimizer.Momentum.Num, 1<<p.MuShift-1), W: w, V: v, D: d},
			{Step: 7, Tile: 2, LR: 1<<31 - 1, MuNum: 1<<p.MuShift - 1, W: w, V: v, D: d},
			{Step: 9, Tile: 3, LR: 0, MuNum: 0, W: w, V: v, D: d},
		} {
			a, _, _, err := Assign(p, x)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := New(p)
			if err := test.IsSolved(c, a, field); err != nil {
				t.Fatalf("%+v lr=%d: %v", p, x.LR, err)
			}
		}
	}
}

// TestUpdateRejects: a tampered input or output, another step, tile or
// rate, and an output off by one in any value all fail.
func TestUpdateRejects(t *testing.T) {
	p, s := refParams(t)
	p.N = 32
	rng := rand.New(rand.NewPCG(4, 5))
	w, v, d := randomTile(rng, p)
	x := Witness{Step: 3, Tile: 4, LR: s.Optimizer.LRAt(3), MuNum: s.Optimizer.Momentum.Num, W: w, V: v, D: d}
	good, w2, v2, err := Assign(p, x)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := New(p)
	if err := test.IsSolved(c, good, field); err != nil {
		t.Fatal(err)
	}
	clone := func() *Circuit { g := *good; return &g }
	out := func(w2, v2 []int32) frontend.Variable { return Digest(TagOut, x.Step, x.Tile, w2, v2) }
	bump := func(s []int32, i int, by int32) []int32 { s = append([]int32(nil), s...); s[i] += by; return s }

	cases := map[string]*Circuit{}
	{
		g := clone()
		g.Step = x.Step + 1
		cases["other step"] = g
	}
	{
		g := clone()
		g.Tile = x.Tile + 1
		cases["other tile"] = g
	}
	{
		g := clone()
		g.LR = x.LR + 1
		cases["other rate"] = g
	}
	{
		g := clone()
		g.W = vars(bump(w, 0, 1))
		cases["tampered private w"] = g
	}
	for i := range []int{0, 1} {
		g := clone()
		g.OutCommit = out(bump(w2, i, 1), v2)
		cases["w' off by one"+string(rune('0'+i))] = g
		g = clone()
		g.OutCommit = out(w2, bump(v2, i, -1))
		cases["v' off by one"+string(rune('0'+i))] = g
	}
	{
		// Outputs consistent with each other (w' = w − v') but from a u one
		// smaller, as a rounding the other way would give.
		g := clone()
		vv := append([]int32(nil), v2...)
		ww := append([]int32(nil), w2...)
		vv[3]--
		ww[3]++
		g.OutCommit = out(ww, vv)
		cases["consistent w', v' from a smaller u"] = g
	}
	{
		// w + 2^32 changes the packed element (no wrap in 224 bits), so the
		// input commitment fails too; the int32 range check fails first.
		g := clone()
		ws := vars(w)
		ws[0] = int64(w[0]) + 1<<32
		g.W = ws
		cases["w outside int32"] = g
	}
	for name, g := range cases {
		if err := test.IsSolved(c, g, field); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The honest outputs equal spec/ref's update on the same values.
	wr, vr := Apply(p, x.LR, x.MuNum, w, v, d)
	for i := range wr {
		if wr[i] != w2[i] || vr[i] != v2[i] {
			t.Fatalf("Apply differs at %d", i)
		}
	}
}

func TestParamsRejected(t *testing.T) {
	for _, p := range []Params{{N: 0}, {N: 1, Shift: 63}, {N: 1, MuShift: 31}, {N: 1, MasterMax: 1<<30 + 1}} {
		if _, err := New(p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

// TestCompiledSolve runs the compiled R1CS solver (real range-check
// commitments) on a small tile.
func TestCompiledSolve(t *testing.T) {
	p, s := refParams(t)
	p.N = 16
	w, v, d := randomTile(rand.New(rand.NewPCG(6, 7)), p)
	a, _, _, err := Assign(p, Witness{Step: 1, Tile: 1, LR: s.Optimizer.LRAt(1), MuNum: s.Optimizer.Momentum.Num, W: w, V: v, D: d})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := New(p)
	ccs, err := frontend.Compile(field, r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := frontend.NewWitness(a, field)
	if err != nil {
		t.Fatal(err)
	}
	if err := ccs.IsSolved(wit); err != nil {
		t.Fatal(err)
	}
}
