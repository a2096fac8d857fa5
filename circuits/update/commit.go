package update

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
)

// Digest is the native form of the circuit's tile commitment: Poseidon2
// Merkle–Damgård over tag, step, tile and the values packed PerElement to a
// field element (see the package doc). It costs one Poseidon2 compression
// per field element (about 9 µs here), i.e. ~1.3 µs per int32 value.
func Digest(tag string, step, tile uint64, tensors ...[]int32) fr.Element {
	h := poseidon2.NewMerkleDamgardHasher()
	var e fr.Element
	write := func(v *big.Int) {
		e.SetBigInt(v)
		b := e.Bytes()
		h.Write(b[:])
	}
	write(tagElement(tag))
	write(new(big.Int).SetUint64(step))
	write(new(big.Int).SetUint64(tile))
	var all []int32
	for _, t := range tensors {
		all = append(all, t...)
	}
	for lo := 0; lo < len(all); lo += PerElement {
		acc := new(big.Int)
		for j, x := range all[lo:min(lo+PerElement, len(all))] {
			u := new(big.Int).SetUint64(uint64(int64(x) + 1<<31))
			acc.Add(acc, u.Lsh(u, uint(32*j)))
		}
		write(acc)
	}
	var out fr.Element
	out.SetBytes(h.Sum(nil))
	return out
}

// TileID packs a tile's coordinates into the public Tile input: the state
// tensor index of SPEC.md §8.1 (weight or bias of a layer), the tile's first
// row and first column. Each must be below 2^20.
func TileID(tensor, row, col uint64) (uint64, error) {
	if tensor >= 1<<20 || row >= 1<<20 || col >= 1<<20 {
		return 0, fmt.Errorf("%w: tile (%d, %d, %d)", ErrParams, tensor, row, col)
	}
	return tensor<<40 | row<<20 | col, nil
}

// Witness is one tile's update, ready to assign.
type Witness struct {
	Step, Tile uint64
	LR, MuNum  int64
	W, V, D    []int32
}

// Assign computes the outputs and both commitments and returns the full
// assignment, with the outputs w', v'.
func Assign(p Params, x Witness) (c *Circuit, w2, v2 []int32, err error) {
	if err := p.Validate(); err != nil {
		return nil, nil, nil, err
	}
	if len(x.W) != p.N || len(x.V) != p.N || len(x.D) != p.N {
		return nil, nil, nil, fmt.Errorf("%w: tile of %d/%d/%d values, want %d", ErrParams, len(x.W), len(x.V), len(x.D), p.N)
	}
	if x.LR < 0 || x.LR > 1<<31-1 || x.MuNum < 0 || x.MuNum >= 1<<p.MuShift {
		return nil, nil, nil, fmt.Errorf("%w: lr %d, μn %d", ErrParams, x.LR, x.MuNum)
	}
	w2, v2 = Apply(p, x.LR, x.MuNum, x.W, x.V, x.D)
	in := Digest(TagIn, x.Step, x.Tile, x.W, x.V, x.D)
	out := Digest(TagOut, x.Step, x.Tile, w2, v2)
	c = &Circuit{
		InCommit: in, OutCommit: out,
		Step: x.Step, Tile: x.Tile, LR: x.LR, MuNum: x.MuNum,
		W: vars(x.W), V: vars(x.V), D: vars(x.D),
		P: p,
	}
	return c, w2, v2, nil
}

func vars(v []int32) []frontend.Variable {
	out := make([]frontend.Variable, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
