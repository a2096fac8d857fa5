// Package update is the gnark circuit for SPEC.md §8.6, the SGD-with-momentum
// update of one tile of master values (weights or biases):
//
//	u  = Scale(d · LR(t), k − lr_shift)
//	v' = Sat32(RoundShift(μn · v, μs) + u)
//	w' = Clamp(w − v', −M, M)
//
// # Statement
//
// Public: InCommit, OutCommit, Step, Tile, LR, MuNum. Private: the tile's w,
// v, d (int32 each). The circuit proves that there are int32 tiles w, v, d
// with InCommit = Digest(TagIn, Step, Tile; w ‖ v ‖ d) and OutCommit =
// Digest(TagOut, Step, Tile; w' ‖ v') where w', v' follow from w, v, d by
// the update with learning rate LR and momentum MuNum / 2^μs. The exponents
// (k − lr_shift, μs) and M are compile-time parameters (Params): they fix
// shift amounts and range-check widths, so they are part of the circuit and
// its keys; LR and MuNum vary per step or job and are public inputs, range
// checked in-circuit (LR < 2^31, MuNum < 2^μs). The verifier must check
// natively that LR = LR(Step) of the job's schedule, and that InCommit and
// OutCommit are the ones the solver committed for (Step, Tile) before the
// challenge; how those commitments bind to the SHA-256 state digests of
// protocol/commit is open (issue 5).
//
// # Commitment
//
// Digest is a Poseidon2 (BN254, width 2, gnark's parameters) Merkle–Damgård
// hash with IV 0 over the field elements tag, step, tile and the tile values
// packed seven per element: Σⱼ (xⱼ + 2^31)·2^(32j), j < 7. Packing is linear
// (free in R1CS) and injective because every packed value is range checked
// to int32 (inputs directly; outputs by Sat32 and Clamp), so 7·32 = 224 bits
// never wrap mod p. A 16×16 tile is 768 input values (110 elements) and 512
// output values (74 elements): 190 compressions in all with the 6 header
// elements, about 35.5k of the circuit's constraints. Poseidon2 rather than
// MiMC: 187 vs 331 R1CS constraints per compression (STACK.md) and 5.6 vs
// 4 MB/s natively.
//
// # Soundness
//
// Every intermediate is an integer far below p/2 (bounds in Define), so the
// field equations are the integer equations of SPEC.md; each gadget's own
// argument is in circuits/fixed.
package update

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/poseidon2"

	cfixed "github.com/beluga-compute/beluga/circuits/fixed"
	"github.com/beluga-compute/beluga/spec/fixed"
)

// Domain tags, the first element hashed into each commitment.
const (
	TagIn  = "beluga/zk/update.in/v1"
	TagOut = "beluga/zk/update.out/v1"
)

// PerElement is how many int32 values are packed into one field element.
const PerElement = 7

// ErrParams: the parameters are outside what the circuit supports.
var ErrParams = errors.New("update: unsupported parameters")

// Params are the compile-time parameters of an update circuit.
type Params struct {
	N         int   // values in the tile (256 for 16×16)
	Shift     int   // the Scale exponent k − lr_shift
	MuShift   int   // μs
	MasterMax int64 // M
}

// Validate checks p against the spec's ranges (SPEC.md §3).
func (p Params) Validate() error {
	switch {
	case p.N < 1 || p.N > 1<<16:
		return fmt.Errorf("%w: N = %d", ErrParams, p.N)
	case p.Shift < -200 || p.Shift > 62:
		return fmt.Errorf("%w: shift %d", ErrParams, p.Shift)
	case p.MuShift < 0 || p.MuShift > 30:
		return fmt.Errorf("%w: μs = %d", ErrParams, p.MuShift)
	case p.MasterMax < 0 || p.MasterMax > 1<<30:
		return fmt.Errorf("%w: M = %d", ErrParams, p.MasterMax)
	}
	return nil
}

// Circuit is the update of one tile. Allocate it with New.
type Circuit struct {
	InCommit  frontend.Variable `gnark:",public"`
	OutCommit frontend.Variable `gnark:",public"`
	Step      frontend.Variable `gnark:",public"`
	Tile      frontend.Variable `gnark:",public"`
	LR        frontend.Variable `gnark:",public"`
	MuNum     frontend.Variable `gnark:",public"`

	W, V, D []frontend.Variable

	P Params `gnark:"-"`
}

// New returns an unassigned circuit for p, ready to compile.
func New(p Params) (*Circuit, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Circuit{
		W: make([]frontend.Variable, p.N), V: make([]frontend.Variable, p.N), D: make([]frontend.Variable, p.N),
		P: p,
	}, nil
}

// Define implements frontend.Circuit.
func (c *Circuit) Define(api frontend.API) error {
	p := c.P
	if err := p.Validate(); err != nil {
		return err
	}
	if len(c.W) != p.N || len(c.V) != p.N || len(c.D) != p.N {
		return fmt.Errorf("%w: tile of %d/%d/%d values, want %d", ErrParams, len(c.W), len(c.V), len(c.D), p.N)
	}
	cfixed.Check(api, c.LR, 31)           // 0 ≤ LR ≤ 2^31 − 1
	cfixed.Check(api, c.MuNum, p.MuShift) // 0 ≤ μn < 2^μs
	w2 := make([]frontend.Variable, p.N)
	v2 := make([]frontend.Variable, p.N)
	for i := range p.N {
		cfixed.CheckInt32(api, c.W[i])
		cfixed.CheckInt32(api, c.V[i])
		cfixed.CheckInt32(api, c.D[i])
		// |d·LR| ≤ 2^31 · (2^31 − 1) < 2^62.
		u := cfixed.Scale(api, api.Mul(c.D[i], c.LR), p.Shift, 62)
		// |μn·v| < 2^μs · 2^31.
		mb := 31 + p.MuShift
		m := cfixed.RoundShift(api, api.Mul(c.MuNum, c.V[i]), p.MuShift, mb)
		// |m| ≤ 2^mo (proven), |u| ≤ 2^31.
		mo := cfixed.RoundShiftOutBound(p.MuShift, mb)
		v2[i] = cfixed.Sat32(api, api.Add(m, u), max(mo, 31)+1)
		// |w − v'| ≤ 2^31 + 2^31.
		w2[i] = cfixed.ClampInt(api, api.Sub(c.W[i], v2[i]), -p.MasterMax, p.MasterMax, 32)
	}
	in, err := digest(api, TagIn, c.Step, c.Tile, c.W, c.V, c.D)
	if err != nil {
		return err
	}
	out, err := digest(api, TagOut, c.Step, c.Tile, w2, v2)
	if err != nil {
		return err
	}
	api.AssertIsEqual(in, c.InCommit)
	api.AssertIsEqual(out, c.OutCommit)
	return nil
}

// digest is Digest in-circuit; every value must already be range checked to
// int32 for the packing to be injective.
func digest(api frontend.API, tag string, step, tile frontend.Variable, tensors ...[]frontend.Variable) (frontend.Variable, error) {
	h, err := poseidon2.New(api)
	if err != nil {
		return nil, err
	}
	h.Write(tagElement(tag), step, tile)
	var all []frontend.Variable
	for _, t := range tensors {
		all = append(all, t...)
	}
	off := big.NewInt(1 << 31)
	for lo := 0; lo < len(all); lo += PerElement {
		var e frontend.Variable = 0
		for j, x := range all[lo:min(lo+PerElement, len(all))] {
			e = api.Add(e, api.Mul(api.Add(x, off), new(big.Int).Lsh(big.NewInt(1), uint(32*j))))
		}
		h.Write(e)
	}
	return h.Sum(), nil
}

// tagElement is the tag's bytes read as a big-endian integer (tags are at
// most 31 bytes, so below p).
func tagElement(tag string) *big.Int {
	if len(tag) > 31 {
		panic("update: tag longer than 31 bytes")
	}
	return new(big.Int).SetBytes([]byte(tag))
}

// Apply is §8.6 on one tile, written with spec/fixed exactly as the
// reference (spec/ref) does: it returns w', v'.
func Apply(p Params, lr, muNum int64, w, v, d []int32) (w2, v2 []int32) {
	w2, v2 = make([]int32, len(w)), make([]int32, len(w))
	for i := range w {
		u := fixed.Scale(int64(d[i])*lr, p.Shift)
		v2[i] = fixed.Sat32(fixed.RoundShift(muNum*int64(v[i]), uint(p.MuShift)) + int64(u))
		w2[i] = int32(fixed.Clamp(int64(w[i])-int64(v2[i]), -p.MasterMax, p.MasterMax))
	}
	return w2, v2
}
