package spec

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/prng"
)

// Tensor is a named int32 tensor of the job state, row-major.
type Tensor struct {
	Name  string
	Shape []int
	Data  []int32
}

// State is everything a step reads and writes besides the data: for each
// linear layer its master weight and bias and their momentum buffers, all
// int32 in master units (MasterFrac fractional bits).
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
		c.Tensors[i] = Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), Data: append([]int32(nil), t.Data...)}
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
