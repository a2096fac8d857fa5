package spec

import (
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/prng"
)

// DType is a tensor's element type: the byte that names it in the tensor's
// state-tree leaf (SPEC.md §11.2, §20.15).
type DType uint8

// Element types. The zero DType means DTypeInt32, so a Tensor literal
// without one is an int32 tensor, as every tensor of version 1 is.
const (
	// DTypeInt32: canonical bytes le32 per element.
	DTypeInt32 DType = 1
	// DTypeInt64: canonical bytes le64 per element (a GPT's second moments).
	DTypeInt64 DType = 2
)

// Known returns d with the zero value read as DTypeInt32, and whether the
// result is an element type this package knows.
func (d DType) Known() (DType, bool) {
	if d == 0 {
		d = DTypeInt32
	}
	return d, d == DTypeInt32 || d == DTypeInt64
}

// Size is the bytes per element of a known type (0 for an unknown one).
func (d DType) Size() int {
	switch d, _ = d.Known(); d {
	case DTypeInt32:
		return 4
	case DTypeInt64:
		return 8
	}
	return 0
}

// String names the type as SPEC.md does.
func (d DType) String() string {
	switch d, _ = d.Known(); d {
	case DTypeInt32:
		return "int32"
	case DTypeInt64:
		return "int64"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Tensor is a named tensor of the job state, row-major, with elements of
// type DType (zero: int32).
//
// Data holds the tensor's canonical bytes (SPEC.md §11.2) as little-endian
// 32-bit words: one word per int32 element, and two per int64 element,
// low word first, so that le32(lo) || le32(hi) = le64(v). Chunking, hashing
// and storage therefore see 4·len(Data) canonical bytes whatever the type,
// and only code that reads values needs the type: Len, Int64At, SetInt64,
// Int64s and Int64Tensor convert.
type Tensor struct {
	Name  string
	Shape []int
	DType DType
	Data  []int32
}

// Int64Tensor returns an int64 tensor holding vals (copied).
func Int64Tensor(name string, shape []int, vals []int64) Tensor {
	t := Tensor{Name: name, Shape: shape, DType: DTypeInt64, Data: make([]int32, 2*len(vals))}
	for i, v := range vals {
		t.Data[2*i], t.Data[2*i+1] = int32(v), int32(v>>32)
	}
	return t
}

// ByteLen is the length of the tensor's canonical bytes: 4·len(Data).
func (t *Tensor) ByteLen() int64 { return 4 * int64(len(t.Data)) }

// Len is the number of elements Data holds (len(Data) for int32,
// len(Data)/2 for int64; 0 for an unknown type).
func (t *Tensor) Len() int {
	if s := t.DType.Size(); s != 0 {
		return len(t.Data) / (s / 4)
	}
	return 0
}

// Int64At returns element i of an int64 tensor.
func (t *Tensor) Int64At(i int) int64 {
	return int64(uint32(t.Data[2*i])) | int64(t.Data[2*i+1])<<32
}

// SetInt64 sets element i of an int64 tensor.
func (t *Tensor) SetInt64(i int, v int64) {
	t.Data[2*i], t.Data[2*i+1] = int32(v), int32(v>>32)
}

// Int64s returns the elements of an int64 tensor (a copy).
func (t *Tensor) Int64s() []int64 {
	out := make([]int64, len(t.Data)/2)
	for i := range out {
		out[i] = t.Int64At(i)
	}
	return out
}

// Elems returns the element count of shape, or an error when a dimension
// is negative or wider than 32 bits (SPEC.md §11.2 writes le32 dims) or the
// count exceeds limit.
func Elems(shape []int, limit int64) (int64, error) {
	for _, d := range shape {
		if d < 0 || int64(d) > math.MaxUint32 {
			return 0, fmt.Errorf("dimension %d outside [0, 2^32)", d)
		}
		if d == 0 {
			return 0, nil
		}
	}
	n := int64(1)
	for _, d := range shape {
		if n > limit/int64(d) {
			return 0, fmt.Errorf("shape %v exceeds %d elements", shape, limit)
		}
		n *= int64(d)
	}
	return n, nil
}

// Check reports whether t is well formed: a known element type and a
// shape whose element count Data holds exactly (count × Size/4 words).
func (t *Tensor) Check() error {
	d, ok := t.DType.Known()
	if !ok {
		return fmt.Errorf("tensor %q has element type %d, not int32 (1) or int64 (2)", t.Name, uint8(t.DType))
	}
	words := int64(d.Size() / 4)
	n, err := Elems(t.Shape, math.MaxInt/words)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) != n*words {
		return fmt.Errorf("tensor %q (%s, shape %v) holds %d words, want %d", t.Name, d, t.Shape, len(t.Data), n*words)
	}
	return nil
}

// State is everything a step reads and writes besides the data: for an
// MLP, for each linear layer its master weight and bias and their momentum
// buffers, all int32 in master units (MasterFrac fractional bits); for a
// GPT, the tensors of GPTTensors.
type State struct {
	// Step is the number of steps applied: the state after step t has Step t+1.
	Step    int64
	Tensors []Tensor
}

// Tensors of one linear layer, in canonical order.
const (
	TensorWeight = iota
	TensorBias
	TensorWeightMomentum
	TensorBiasMomentum
	tensorsPerLayer
)

// TensorName returns the canonical name of tensor kind k of the layer at
// position index of Model.Layers.
func TensorName(index, k int) string {
	suffix := [...]string{"weight", "bias", "weight.momentum", "bias.momentum"}[k]
	return fmt.Sprintf("layers.%d.%s", index, suffix)
}

// NewState returns the zero state of the job's shapes, in canonical order:
// per linear layer weight [out, in], bias [out], weight.momentum, bias.momentum.
func (s *Spec) NewState() *State {
	p := s.Plan()
	st := &State{Tensors: make([]Tensor, 0, tensorsPerLayer*len(p.Linear))}
	for _, l := range p.Linear {
		for k := range tensorsPerLayer {
			shape := []int{l.Out, l.In}
			if k == TensorBias || k == TensorBiasMomentum {
				shape = []int{l.Out}
			}
			n := 1
			for _, d := range shape {
				n *= d
			}
			st.Tensors = append(st.Tensors, Tensor{Name: TensorName(l.Index, k), Shape: shape, Data: make([]int32, n)})
		}
	}
	return st
}

// Layer returns tensor kind k of the j-th linear layer (counting linear
// layers only).
func (st *State) Layer(j, k int) []int32 { return st.Tensors[tensorsPerLayer*j+k].Data }

// Clone returns a deep copy.
func (st *State) Clone() *State {
	c := &State{Step: st.Step, Tensors: make([]Tensor, len(st.Tensors))}
	for i, t := range st.Tensors {
		c.Tensors[i] = Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), DType: t.DType, Data: append([]int32(nil), t.Data...)}
	}
	return c
}

// Init returns the state before step 0 (SPEC.md §"Initialisation"): biases
// and momentum zero; weight [o][i] of the layer at position index is
// (r mod (2L+1)) - L with r = Derive(seed, "init.weight", index, 0).At(o·in + i)
// and L = ⌊√(⌊6·4^MasterFrac / in⌋)⌋ capped at MasterMax: the Kaiming
// uniform bound √(6/fan_in) in master units.
func (s *Spec) Init() *State {
	st := s.NewState()
	p := s.Plan()
	for j, l := range p.Linear {
		lim := fixed.Isqrt((6 << (2 * uint(s.Numeric.MasterFrac))) / uint64(l.In))
		lim = min(lim, uint64(p.MasterMax))
		stream := prng.Derive(s.Seed, "init.weight", uint64(l.Index), 0)
		w := st.Layer(j, TensorWeight)
		for i := range w {
			w[i] = int32(int64(stream.At(uint64(i))%(2*lim+1)) - int64(lim))
		}
	}
	return st
}
