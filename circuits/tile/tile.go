// Package tile is the zk statement of a confidential audit (SPEC.md §17):
// the gradient and update of one 16×16 weight tile of one linear layer at
// one step follow, under SPEC.md §8.5–8.6, from values the solver committed
// before the challenge.
//
// # Statement
//
// Public: RootIn and RootOut (the zk commitments of steps t and t+1,
// protocol/core/zkcommit), Step = t, the leaf indices of the tile's state, its
// gradient block and its input block, and LR = LR(t). Private: the layer's
// incoming gradient block G (batch × 16, at exponent E), its input block A
// (batch × 16), the weight and momentum tiles W, V, and four Merkle paths.
// The circuit proves that
//
//   - G‖E, A and W‖V are the leaves at their indices under RootIn;
//   - D = Gᵀ·A (the tile of dW, §8.5), checked by Freivalds' test;
//   - W', V' = the §8.6 update of W, V by D at exponent
//     k = E − InFrac + master_frac and learning rate LR;
//   - W'‖V' is the state leaf at the same index under RootOut.
//
// The verifier computes the indices from the challenged (layer, row block,
// column block) and LR from the job's schedule itself, and checks RootIn
// and RootOut against the zk trace the solver committed before the
// challenge (protocol/core/trace ZKTrace); it never sees a value.
//
// # Soundness
//
// Every private value is range checked to its packing slot (16 bits for G
// and A, int32 for W and V), which makes the leaf packing injective and
// keeps every intermediate an integer far below p/2, so field equations
// are the integer equations of SPEC.md (circuits/fixed). D is not range
// checked: it is pinned by Freivalds' test. With ρ derived in-circuit from
// a commitment to G, A and D (gnark's commitment API, std/multicommit), the
// test checks Σ_{o,i} D[o][i]·ρ^(o+16i) = Σ_b (Σ_o G[b][o]·ρ^o)(Σ_i A[b][i]·ρ^(16i)).
// If D ≠ GᵀA the two sides differ by a non-zero polynomial of degree ≤ 255
// in ρ, which vanishes at a random ρ with probability ≤ 255/p < 2^−245
// (Schwartz–Zippel). Since |D| ≤ batch·2^30 ≪ p/2, field equality of D and
// GᵀA is integer equality. This costs ~2.6k constraints instead of the
// 16·16·batch multiplications of the product.
//
// The exponent's shift s = −(k − lr_shift) is a private value proven to lie
// in [SMin, SMax] (compile-time, from the spec's exponent bounds); the
// rounding by 2^s takes 2^s from the bits of s − SMin and certifies the
// remainder r by two range checks, 0 ≤ r and r ≤ 2^s − 1.
//
// Bias tiles (dβ = Σ_b g) are not covered by this statement.
package tile

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/poseidon2"
	"github.com/consensys/gnark/std/multicommit"
	pperm "github.com/consensys/gnark/std/permutation/poseidon2"

	cfixed "github.com/beluga-compute/beluga/circuits/fixed"
	"github.com/beluga-compute/beluga/protocol/core/zkcommit"
)

// T is the tile side.
const T = zkcommit.Tile

// ErrParams: parameters the circuit does not support.
var ErrParams = errors.New("tile: unsupported parameters")

// Params are a circuit's compile-time parameters: they fix the shapes,
// the shifts and the range-check widths, so they are part of its keys.
type Params struct {
	Batch      int
	Depth      int // of the zk commitment tree
	SMin, SMax int // range of the update's right shift −(k − lr_shift)
	// ShiftOffset = InFrac − master_frac + lr_shift: the right shift is
	// ShiftOffset − E for the committed gradient exponent E.
	ShiftOffset int
	MuNum       int64
	MuShift     int
	MasterMax   int64
}

// Validate checks p.
func (p Params) Validate() error {
	switch {
	case p.Batch < 1 || p.Batch > 1<<12:
		return fmt.Errorf("%w: batch %d", ErrParams, p.Batch)
	case p.Depth < 1 || p.Depth > zkcommit.MaxDepth:
		return fmt.Errorf("%w: depth %d", ErrParams, p.Depth)
	case p.SMin < 1 || p.SMax < p.SMin || p.SMax > 62:
		// Left shifts (k ≥ lr_shift) never occur in sane formats; the
		// statement covers right shifts of 1…62 bits.
		return fmt.Errorf("%w: shift range [%d, %d]", ErrParams, p.SMin, p.SMax)
	case p.MuShift < 0 || p.MuShift > 30 || p.MuNum < 0 || p.MuNum >= 1<<p.MuShift:
		return fmt.Errorf("%w: momentum %d/2^%d", ErrParams, p.MuNum, p.MuShift)
	case p.MasterMax < 0 || p.MasterMax > 1<<30:
		return fmt.Errorf("%w: master bound %d", ErrParams, p.MasterMax)
	}
	return nil
}

// dBits bounds |D·LR| in bits: |G|, |A| ≤ 2^15 (their slots), so
// |D| ≤ batch·2^30 and |LR| < 2^31.
func (p Params) dBits() int { return 61 + bits.Len(uint(p.Batch)) }

// Circuit is the tile statement. Allocate it with New.
type Circuit struct {
	RootIn   frontend.Variable `gnark:",public"`
	RootOut  frontend.Variable `gnark:",public"`
	Step     frontend.Variable `gnark:",public"`
	StateIdx frontend.Variable `gnark:",public"`
	GradIdx  frontend.Variable `gnark:",public"`
	InputIdx frontend.Variable `gnark:",public"`
	LR       frontend.Variable `gnark:",public"`

	G, A, W, V []frontend.Variable
	E          frontend.Variable // the gradient exponent, as committed

	PathState, PathGrad, PathInput, PathOut []frontend.Variable

	P Params `gnark:"-"`
}

// New returns an unassigned circuit for p.
func New(p Params) (*Circuit, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Circuit{
		G: make([]frontend.Variable, p.Batch*T), A: make([]frontend.Variable, p.Batch*T),
		W: make([]frontend.Variable, T*T), V: make([]frontend.Variable, T*T),
		PathState: make([]frontend.Variable, p.Depth), PathGrad: make([]frontend.Variable, p.Depth),
		PathInput: make([]frontend.Variable, p.Depth), PathOut: make([]frontend.Variable, p.Depth),
		P: p,
	}, nil
}

func init() { solver.RegisterHint(productHint, varShiftHint) }

// Define implements frontend.Circuit.
func (c *Circuit) Define(api frontend.API) error {
	p := c.P
	if err := p.Validate(); err != nil {
		return err
	}
	if len(c.G) != p.Batch*T || len(c.A) != p.Batch*T || len(c.W) != T*T || len(c.V) != T*T {
		return fmt.Errorf("%w: witness shapes", ErrParams)
	}
	for _, x := range c.G {
		cfixed.CheckSigned(api, x, 16)
	}
	for _, x := range c.A {
		cfixed.CheckSigned(api, x, 16)
	}
	for i := range c.W {
		cfixed.CheckInt32(api, c.W[i])
		cfixed.CheckInt32(api, c.V[i])
	}
	cfixed.Check(api, c.LR, 31)

	// The committed exponent E fixes the right shift s = ShiftOffset − E.
	s := api.Sub(p.ShiftOffset, c.E)
	pow, halfPow := shiftPower(api, s, p.SMin, p.SMax)

	d, err := api.Compiler().NewHint(productHint, T*T, append(append([]frontend.Variable{p.Batch}, c.G...), c.A...)...)
	if err != nil {
		return err
	}
	CheckProduct(api, p.Batch, c.G, c.A, d)

	w2 := make([]frontend.Variable, T*T)
	v2 := make([]frontend.Variable, T*T)
	db := p.dBits()
	for i := range T * T {
		u := cfixed.Sat32(api, varRoundShift(api, api.Mul(d[i], c.LR), s, pow, halfPow, p.SMin, p.SMax, db), db-p.SMin+1)
		mb := 31 + p.MuShift
		m := cfixed.RoundShift(api, api.Mul(p.MuNum, c.V[i]), p.MuShift, mb)
		mo := cfixed.RoundShiftOutBound(p.MuShift, mb)
		v2[i] = cfixed.Sat32(api, api.Add(m, u), max(mo, 31)+1)
		w2[i] = cfixed.ClampInt(api, api.Sub(c.W[i], v2[i]), -p.MasterMax, p.MasterMax, 32)
	}

	perm, err := pperm.NewPoseidon2(api)
	if err != nil {
		return err
	}
	open := func(root, idx, leaf frontend.Variable, path []frontend.Variable) {
		dir := api.ToBinary(idx, p.Depth)
		cur := leaf
		for k, sib := range path {
			l := api.Select(dir[k], sib, cur)
			r := api.Select(dir[k], cur, sib)
			cur = perm.Compress(l, r)
		}
		api.AssertIsEqual(cur, root)
	}
	stateIn, err := leafHash(api, zkcommit.TagState, []frontend.Variable{c.Step, c.StateIdx}, append(append([]frontend.Variable{}, c.W...), c.V...), 32, zkcommit.Per32)
	if err != nil {
		return err
	}
	grad, err := leafHash(api, zkcommit.TagGrad, []frontend.Variable{c.Step, c.GradIdx, c.E}, c.G, 16, zkcommit.Per16)
	if err != nil {
		return err
	}
	input, err := leafHash(api, zkcommit.TagInput, []frontend.Variable{c.Step, c.InputIdx}, c.A, 16, zkcommit.Per16)
	if err != nil {
		return err
	}
	stateOut, err := leafHash(api, zkcommit.TagState, []frontend.Variable{api.Add(c.Step, 1), c.StateIdx}, append(w2, v2...), 32, zkcommit.Per32)
	if err != nil {
		return err
	}
	open(c.RootIn, c.StateIdx, stateIn, c.PathState)
	open(c.RootIn, c.GradIdx, grad, c.PathGrad)
	open(c.RootIn, c.InputIdx, input, c.PathInput)
	open(c.RootOut, c.StateIdx, stateOut, c.PathOut)
	return nil
}

// shiftPower constrains sMin ≤ s ≤ sMax (the bits of s − sMin, then a
// range check of sMax − s) and returns 2^s and 2^(s−1), built from those
// bits: 2^s = 2^sMin · Πᵢ (1 + bᵢ·(2^(2^i) − 1)).
func shiftPower(api frontend.API, s frontend.Variable, sMin, sMax int) (pow, halfPow frontend.Variable) {
	nb := max(bits.Len(uint(sMax-sMin)), 1)
	b := api.ToBinary(api.Sub(s, sMin), nb)
	cfixed.Check(api, api.Sub(sMax, s), nb)
	var prod frontend.Variable = 1
	for i, bit := range b {
		f := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 1<<uint(i)), big.NewInt(1))
		prod = api.Mul(prod, api.Add(1, api.Mul(bit, f)))
	}
	pow = api.Mul(prod, new(big.Int).Lsh(big.NewInt(1), uint(sMin)))
	halfPow = api.Mul(prod, new(big.Int).Lsh(big.NewInt(1), uint(sMin-1)))
	return pow, halfPow
}

// varRoundShift returns RoundShift(x, s) for |X| ≤ 2^b and s ∈ [sMin,
// sMax] given pow = 2^s and halfPow = 2^(s−1): the prover supplies q, r
// with x + 2^(s−1) = q·2^s + r; 0 ≤ r ≤ 2^s − 1 by two range checks of
// sMax bits; |q| ≤ 2^(b−sMin+1) by a range check. Both sides are integers
// below 2^(b+2) < p/2, so q is the floor quotient: RoundShift(X, s).
func varRoundShift(api frontend.API, x, s, pow, halfPow frontend.Variable, sMin, sMax, b int) frontend.Variable {
	res, err := api.Compiler().NewHint(varShiftHint, 2, x, s)
	if err != nil {
		panic(err)
	}
	q, r := res[0], res[1]
	api.AssertIsEqual(api.Add(x, halfPow), api.Add(api.Mul(q, pow), r))
	cfixed.Check(api, r, sMax)
	cfixed.Check(api, api.Sub(api.Sub(pow, 1), r), sMax)
	cfixed.CheckSigned(api, q, b-sMin+2)
	return q
}

// CheckProduct constrains d (T×T, row-major [o][i]) = gᵀ·a for g, a of
// batch×T (row-major [b][o] and [b][i]) by Freivalds' test with in-circuit
// randomness (see the package doc).
func CheckProduct(api frontend.API, batch int, g, a, d []frontend.Variable) {
	vars := make([]frontend.Variable, 0, len(g)+len(a)+len(d))
	vars = append(append(append(vars, g...), a...), d...)
	multicommit.WithCommitment(api, func(api frontend.API, rho frontend.Variable) error {
		pw := make([]frontend.Variable, T*T)
		pw[0] = 1
		for k := 1; k < T*T; k++ {
			pw[k] = api.Mul(pw[k-1], rho)
		}
		var lhs frontend.Variable = 0
		for o := range T {
			for i := range T {
				lhs = api.MulAcc(lhs, d[o*T+i], pw[o+T*i])
			}
		}
		var rhs frontend.Variable = 0
		for b := range batch {
			var gu, av frontend.Variable = 0, 0
			for o := range T {
				gu = api.MulAcc(gu, g[b*T+o], pw[o])
			}
			for i := range T {
				av = api.MulAcc(av, a[b*T+i], pw[T*i])
			}
			rhs = api.MulAcc(rhs, gu, av)
		}
		api.AssertIsEqual(lhs, rhs)
		return nil
	}, vars...)
}

// leafHash is zkcommit's leaf hash in-circuit: Poseidon2 Merkle–Damgård over
// the tag, the header and the values packed `per` to an element in slots
// of `bits` bits (values must be range checked to their slot).
func leafHash(api frontend.API, tag string, head, vals []frontend.Variable, bits, per int) (frontend.Variable, error) {
	h, err := poseidon2.New(api)
	if err != nil {
		return nil, err
	}
	te := zkcommit.TagElement(tag)
	h.Write(te.BigInt(new(big.Int)))
	h.Write(head...)
	off := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	for lo := 0; lo < len(vals); lo += per {
		var e frontend.Variable = 0
		for j, x := range vals[lo:min(lo+per, len(vals))] {
			e = api.Add(e, api.Mul(api.Add(x, off), new(big.Int).Lsh(big.NewInt(1), uint(bits*j))))
		}
		h.Write(e)
	}
	return h.Sum(), nil
}

// productHint: inputs batch, g (batch×T), a (batch×T); outputs gᵀa (T×T).
func productHint(field *big.Int, in, out []*big.Int) error {
	if len(in) < 1 || !in[0].IsInt64() {
		return fmt.Errorf("tile: productHint arguments")
	}
	batch := int(in[0].Int64())
	if batch < 1 || len(in) != 1+2*batch*T || len(out) != T*T {
		return fmt.Errorf("tile: productHint arguments")
	}
	g, a := in[1:1+batch*T], in[1+batch*T:]
	half := new(big.Int).Rsh(field, 1)
	signed := func(x *big.Int) *big.Int {
		v := new(big.Int).Mod(x, field)
		if v.Cmp(half) > 0 {
			v.Sub(v, field)
		}
		return v
	}
	for o := range T {
		for i := range T {
			acc := new(big.Int)
			for b := range batch {
				acc.Add(acc, new(big.Int).Mul(signed(g[b*T+o]), signed(a[b*T+i])))
			}
			out[o*T+i].Mod(acc, field)
		}
	}
	return nil
}

// varShiftHint: inputs x, s; outputs q = ⌊(X + 2^(s−1)) / 2^s⌋ and
// r = X + 2^(s−1) − q·2^s.
func varShiftHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 2 || len(out) != 2 || !in[1].IsInt64() || in[1].Int64() < 1 || in[1].Int64() > 62 {
		return fmt.Errorf("tile: varShiftHint arguments")
	}
	s := uint(in[1].Int64())
	x := new(big.Int).Mod(in[0], field)
	if x.Cmp(new(big.Int).Rsh(field, 1)) > 0 {
		x.Sub(x, field)
	}
	x.Add(x, new(big.Int).Lsh(big.NewInt(1), s-1))
	q := new(big.Int).Rsh(x, s)
	r := new(big.Int).Sub(x, new(big.Int).Lsh(q, s))
	out[0].Mod(q, field)
	out[1].Set(r)
	return nil
}
