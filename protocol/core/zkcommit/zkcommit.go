// Package zkcommit is the zk commitment of a confidential job (SPEC.md §17):
// after every step the solver commits, besides the SHA-256 state digest, a
// Poseidon2 Merkle root over the values a zk tile proof opens. The circuit
// in circuits/tile recomputes the same leaves and paths in-circuit, so a
// proof binds to a root fixed before any challenge existed.
//
// # Leaves
//
// For linear layer j (plan order) with Out×In weights, tiles are 16×16:
// R = ⌈Out/16⌉ row blocks and C = ⌈In/16⌉ column blocks. The leaves of the
// commitment of step t are, layer after layer:
//
//   - R·C state leaves, row-major: weight tile ‖ momentum tile (16×16 int32
//     each, row-major, zero outside the tensor) of the state BEFORE step t;
//   - R gradient leaves: the layer's incoming gradient g[b][16r+o] for every
//     sample b and o < 16 (zero past Out), and its exponent E;
//   - C input leaves: the layer's input a[b][16c+i] (zero past In).
//
// The commitment of step Steps (the final state) has the same layout with
// all gradient and input values zero and E = 0.
//
// A leaf is the Poseidon2 Merkle–Damgård hash (gnark-crypto's, IV 0) of
// the elements: tag, step, leaf index, [E,] then the values packed. Int32
// values are packed 7 per element as Σⱼ (xⱼ + 2^31)·2^(32j); gradients and
// inputs (|x| < 2^15) 15 per element as Σⱼ (xⱼ + 2^15)·2^(16j). Packing is
// injective because the circuit range checks every value to its slot.
//
// The tree has depth D = ⌈log₂ leaves⌉; missing leaves are 0; a node is
// Poseidon2's compression of (left, right). Every opening has exactly D
// siblings and every leaf a fixed length and header, so a node cannot be
// passed off as a leaf.
//
// # Cost
//
// Native Poseidon2 costs ~5 µs per compression here: a 16×16 state leaf is
// 77 compressions, a gradient or input leaf of batch 64 about 70. Commit
// hashes leaves on all cores.
package zkcommit

import (
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"

	"github.com/beluga-compute/beluga/spec"
)

// Tile is the side of a tile and the width of a gradient or input block.
const Tile = 16

// Packing of values into field elements.
const (
	Per32 = 7  // int32 values per element, 32-bit slots
	Per16 = 15 // gradient and input values per element, 16-bit slots
)

// Leaf domain tags (at most 31 bytes: one field element each).
const (
	TagState = "beluga/zk/state/v1"
	TagGrad  = "beluga/zk/grad/v1"
	TagInput = "beluga/zk/input/v1"
)

// MaxDepth bounds the tree depth (2^24 leaves).
const MaxDepth = 24

// Errors.
var (
	ErrShape  = errors.New("zkcommit: values do not fit the job's layout")
	ErrRange  = errors.New("zkcommit: value outside its slot")
	ErrBounds = errors.New("zkcommit: leaf index outside the tree")
)

// LayerLayout places one linear layer's leaves.
type LayerLayout struct {
	Out, In    int
	Rows, Cols int // row and column blocks
	StateBase  int // index of state leaf (0, 0)
	GradBase   int // index of gradient leaf 0
	InputBase  int // index of input leaf 0
}

// Layout is the leaf layout of a job.
type Layout struct {
	Batch  int
	Layers []LayerLayout
	Leaves int
	Depth  int
}

// NewLayout returns the layout of s, which must have passed Validate.
func NewLayout(s *spec.Spec) (*Layout, error) {
	p := s.Plan()
	l := &Layout{Batch: s.BatchSize}
	n := 0
	for _, lp := range p.Linear {
		ll := LayerLayout{Out: lp.Out, In: lp.In, Rows: ceilDiv(lp.Out, Tile), Cols: ceilDiv(lp.In, Tile)}
		ll.StateBase = n
		n += ll.Rows * ll.Cols
		ll.GradBase = n
		n += ll.Rows
		ll.InputBase = n
		n += ll.Cols
		l.Layers = append(l.Layers, ll)
	}
	l.Leaves = n
	for 1<<l.Depth < n {
		l.Depth++
	}
	if l.Depth > MaxDepth {
		return nil, fmt.Errorf("%w: %d leaves", ErrShape, n)
	}
	return l, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// StateLeaf returns the index of layer j's state tile (row block r, column
// block c).
func (l *Layout) StateLeaf(j, r, c int) (int, error) {
	if j < 0 || j >= len(l.Layers) || r < 0 || r >= l.Layers[j].Rows || c < 0 || c >= l.Layers[j].Cols {
		return 0, fmt.Errorf("%w: state tile (%d, %d, %d)", ErrBounds, j, r, c)
	}
	return l.Layers[j].StateBase + r*l.Layers[j].Cols + c, nil
}

// GradLeaf returns the index of layer j's gradient block r.
func (l *Layout) GradLeaf(j, r int) (int, error) {
	if j < 0 || j >= len(l.Layers) || r < 0 || r >= l.Layers[j].Rows {
		return 0, fmt.Errorf("%w: gradient block (%d, %d)", ErrBounds, j, r)
	}
	return l.Layers[j].GradBase + r, nil
}

// InputLeaf returns the index of layer j's input block c.
func (l *Layout) InputLeaf(j, c int) (int, error) {
	if j < 0 || j >= len(l.Layers) || c < 0 || c >= l.Layers[j].Cols {
		return 0, fmt.Errorf("%w: input block (%d, %d)", ErrBounds, j, c)
	}
	return l.Layers[j].InputBase + c, nil
}

// LayerValues are the step values of one linear layer that the commitment
// covers besides the state: its incoming gradient G (batch × Out, at
// exponent E) and its input A (batch × In), row-major.
type LayerValues struct {
	G []int64
	E int64
	A []int64
}

// StateTile returns the weight and momentum tile (r, c) of layer j of st,
// zero outside the tensor: 2·Tile² values, row-major.
func (l *Layout) StateTile(st *spec.State, j, r, c int) []int64 {
	ll := l.Layers[j]
	out := make([]int64, 2*Tile*Tile)
	w, v := st.Layer(j, spec.TensorWeight), st.Layer(j, spec.TensorWeightMomentum)
	for o := range Tile {
		row := r*Tile + o
		if row >= ll.Out {
			break
		}
		for i := range Tile {
			col := c*Tile + i
			if col >= ll.In {
				break
			}
			out[o*Tile+i] = int64(w[row*ll.In+col])
			out[Tile*Tile+o*Tile+i] = int64(v[row*ll.In+col])
		}
	}
	return out
}

// Block returns columns [16k, 16k+16) of the batch × width matrix m, zero
// past width: Batch·Tile values, row-major by sample.
func (l *Layout) Block(m []int64, width, k int) []int64 {
	out := make([]int64, l.Batch*Tile)
	for b := range l.Batch {
		for i := range Tile {
			if col := k*Tile + i; col < width {
				out[b*Tile+i] = m[b*width+col]
			}
		}
	}
	return out
}

// Tree is one step's commitment.
type Tree struct {
	levels [][]fr.Element // levels[0] the leaves (padded to 2^Depth), last the root
}

// Root returns the root.
func (t *Tree) Root() fr.Element { return t.levels[len(t.levels)-1][0] }

// RootBytes returns the root as 32 big-endian bytes.
func (t *Tree) RootBytes() [32]byte {
	r := t.Root()
	return r.Bytes()
}

// Leaf returns leaf i.
func (t *Tree) Leaf(i int) (fr.Element, error) {
	if i < 0 || i >= len(t.levels[0]) {
		return fr.Element{}, fmt.Errorf("%w: leaf %d", ErrBounds, i)
	}
	return t.levels[0][i], nil
}

// Path returns the D siblings of leaf i, from the leaf up.
func (t *Tree) Path(i int) ([]fr.Element, error) {
	if i < 0 || i >= len(t.levels[0]) {
		return nil, fmt.Errorf("%w: leaf %d", ErrBounds, i)
	}
	var sib []fr.Element
	for _, lv := range t.levels[:len(t.levels)-1] {
		sib = append(sib, lv[i^1])
		i >>= 1
	}
	return sib, nil
}

// VerifyPath checks that leaf sits at index i under root.
func VerifyPath(root, leaf fr.Element, i int, sib []fr.Element) error {
	h := leaf
	for _, s := range sib {
		if i&1 == 0 {
			h = Compress(h, s)
		} else {
			h = Compress(s, h)
		}
		i >>= 1
	}
	if i != 0 || !h.Equal(&root) {
		return fmt.Errorf("%w: path does not lead to the root", ErrBounds)
	}
	return nil
}

// Compress is the tree's node function: Poseidon2's 2-to-1 compression.
func Compress(l, r fr.Element) fr.Element {
	x := [2]fr.Element{l, r}
	if err := perm.Permutation(x[:]); err != nil {
		panic(err) // width 2 by construction
	}
	x[1].Add(&x[1], &r)
	return x[1]
}

// perm is gnark-crypto's default BN254 Poseidon2 (width 2, 6 full and 50
// partial rounds); it is stateless and safe for concurrent use.
var perm = poseidon2.NewDefaultPermutation()

// hashElements is the Merkle–Damgård hash of gnark-crypto (IV 0, state ←
// Compress(state, element)), which std/hash/poseidon2 computes in-circuit.
func hashElements(es []fr.Element) fr.Element {
	var st fr.Element
	for _, e := range es {
		st = Compress(st, e)
	}
	return st
}

// TagElement is a tag's bytes read as a big-endian integer.
func TagElement(tag string) fr.Element {
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes([]byte(tag)))
	return e
}

// Pack packs values into slots of `bits` bits, `per` to an element, each
// offset by 2^(bits−1). Every value must lie in [−2^(bits−1), 2^(bits−1)).
func Pack(vals []int64, bits, per int) ([]fr.Element, error) {
	half := int64(1) << (bits - 1)
	out := make([]fr.Element, 0, ceilDiv(len(vals), per))
	acc := new(big.Int)
	for lo := 0; lo < len(vals); lo += per {
		acc.SetInt64(0)
		for j, x := range vals[lo:min(lo+per, len(vals))] {
			if x < -half || x >= half {
				return nil, fmt.Errorf("%w: %d in a %d-bit slot", ErrRange, x, bits)
			}
			u := new(big.Int).SetInt64(x + half)
			acc.Add(acc, u.Lsh(u, uint(bits*j)))
		}
		var e fr.Element
		e.SetBigInt(acc)
		out = append(out, e)
	}
	return out, nil
}

func header(tag string, step int64, index int, extra ...int64) []fr.Element {
	h := []fr.Element{TagElement(tag)}
	var e fr.Element
	e.SetInt64(step)
	h = append(h, e)
	e.SetInt64(int64(index))
	h = append(h, e)
	for _, x := range extra {
		e.SetInt64(x)
		h = append(h, e)
	}
	return h
}

// StateLeafHash hashes a state leaf: 2·Tile² int32 values (weight tile
// then momentum tile).
func StateLeafHash(step int64, index int, vals []int64) (fr.Element, error) {
	if len(vals) != 2*Tile*Tile {
		return fr.Element{}, fmt.Errorf("%w: state leaf of %d values", ErrShape, len(vals))
	}
	p, err := Pack(vals, 32, Per32)
	if err != nil {
		return fr.Element{}, err
	}
	return hashElements(append(header(TagState, step, index), p...)), nil
}

// GradLeafHash hashes a gradient leaf: batch·Tile values and the exponent.
func GradLeafHash(step int64, index int, e int64, vals []int64) (fr.Element, error) {
	p, err := Pack(vals, 16, Per16)
	if err != nil {
		return fr.Element{}, err
	}
	return hashElements(append(header(TagGrad, step, index, e), p...)), nil
}

// InputLeafHash hashes an input leaf: batch·Tile values.
func InputLeafHash(step int64, index int, vals []int64) (fr.Element, error) {
	p, err := Pack(vals, 16, Per16)
	if err != nil {
		return fr.Element{}, err
	}
	return hashElements(append(header(TagInput, step, index), p...)), nil
}

// Commit builds the commitment of step t: st is the state before step t
// (st.Step == t) and vals holds, per linear layer, that step's gradient,
// exponent and input; vals nil commits the final state (all step values
// zero). Leaves are hashed on up to GOMAXPROCS goroutines.
func (l *Layout) Commit(st *spec.State, vals []LayerValues) (*Tree, error) {
	if vals != nil && len(vals) != len(l.Layers) {
		return nil, fmt.Errorf("%w: values of %d layers, want %d", ErrShape, len(vals), len(l.Layers))
	}
	for j, v := range vals {
		ll := l.Layers[j]
		if len(v.G) != l.Batch*ll.Out || len(v.A) != l.Batch*ll.In {
			return nil, fmt.Errorf("%w: layer %d has %d gradients and %d inputs", ErrShape, j, len(v.G), len(v.A))
		}
	}
	leaves := make([]fr.Element, 1<<l.Depth)
	type job struct {
		idx  int
		hash func() (fr.Element, error)
	}
	var jobs []job
	t := st.Step
	for j, ll := range l.Layers {
		for r := range ll.Rows {
			for c := range ll.Cols {
				idx := ll.StateBase + r*ll.Cols + c
				jobs = append(jobs, job{idx, func() (fr.Element, error) {
					return StateLeafHash(t, idx, l.StateTile(st, j, r, c))
				}})
			}
		}
		zero := make([]int64, l.Batch*Tile)
		for r := range ll.Rows {
			idx := ll.GradBase + r
			jobs = append(jobs, job{idx, func() (fr.Element, error) {
				if vals == nil {
					return GradLeafHash(t, idx, 0, zero)
				}
				return GradLeafHash(t, idx, vals[j].E, l.Block(vals[j].G, ll.Out, r))
			}})
		}
		for c := range ll.Cols {
			idx := ll.InputBase + c
			jobs = append(jobs, job{idx, func() (fr.Element, error) {
				if vals == nil {
					return InputLeafHash(t, idx, zero)
				}
				return InputLeafHash(t, idx, l.Block(vals[j].A, ll.In, c))
			}})
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan job)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range next {
				h, err := jb.hash()
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					continue
				}
				leaves[jb.idx] = h
			}
		}()
	}
	for _, jb := range jobs {
		next <- jb
	}
	close(next)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	tr := &Tree{levels: [][]fr.Element{leaves}}
	for lv := leaves; len(lv) > 1; {
		up := make([]fr.Element, len(lv)/2)
		for i := range up {
			up[i] = Compress(lv[2*i], lv[2*i+1])
		}
		tr.levels = append(tr.levels, up)
		lv = up
	}
	return tr, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
