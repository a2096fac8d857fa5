package spec

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/gpt"
)

// GPT tensor-name suffixes (SPEC.md §20.10): per parameter P, `P` (master
// weights, int32), `P.m` (first moment, int32) and `P.v` (second moment,
// int64).
const (
	GPTMomentSuffix   = ".m"
	GPTVarianceSuffix = ".v"
)

// GPTTensors returns st as a State whose tensors are, per parameter of
// c.Params() in order, `P`, `P.m` and `P.v`, each of shape [rows, in]
// (SPEC.md §20.15): the form that is digested, opened and checkpointed.
// st must be a state of c (as c.Init and gpt.Trainer.Step give); the int32
// tensors share st's slices, the int64 ones are converted.
func GPTTensors(c gpt.Config, st *gpt.State) *State {
	ps := c.Params()
	out := &State{Step: st.Step, Tensors: make([]Tensor, 0, 3*len(ps))}
	for i, p := range ps {
		shape := []int{p.Rows, p.In}
		out.Tensors = append(out.Tensors,
			Tensor{Name: p.Name, Shape: shape, DType: DTypeInt32, Data: st.W[i]},
			Tensor{Name: p.Name + GPTMomentSuffix, Shape: shape, DType: DTypeInt32, Data: st.M[i]},
			Int64Tensor(p.Name+GPTVarianceSuffix, shape, st.V[i]))
	}
	return out
}

// GPTFromState converts st back to c's GPT state, checking that it has
// exactly the tensors GPTTensors gives (names, order, shapes, element types
// and lengths) and a step count ≥ 0. The result does not alias st.
func GPTFromState(c gpt.Config, st *State) (*gpt.State, error) {
	if st == nil {
		return nil, fmt.Errorf("GPT state: nil")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("GPT state: %w", err)
	}
	if st.Step < 0 {
		return nil, fmt.Errorf("GPT state: step %d is negative", st.Step)
	}
	ps := c.Params()
	if len(st.Tensors) != 3*len(ps) {
		return nil, fmt.Errorf("GPT state: %d tensors, the model has %d (3 per parameter)", len(st.Tensors), 3*len(ps))
	}
	out := &gpt.State{Step: st.Step, W: make([][]int32, len(ps)), M: make([][]int32, len(ps)), V: make([][]int64, len(ps))}
	for i, p := range ps {
		n := p.Rows * p.In
		for k, want := range [3]struct {
			name  string
			dtype DType
		}{{p.Name, DTypeInt32}, {p.Name + GPTMomentSuffix, DTypeInt32}, {p.Name + GPTVarianceSuffix, DTypeInt64}} {
			t := &st.Tensors[3*i+k]
			d, _ := t.DType.Known()
			if t.Name != want.name || d != want.dtype || len(t.Shape) != 2 || t.Shape[0] != p.Rows || t.Shape[1] != p.In {
				return nil, fmt.Errorf("GPT state: tensor %d is %q %s %v, want %q %s [%d %d]",
					3*i+k, t.Name, t.DType, t.Shape, want.name, want.dtype, p.Rows, p.In)
			}
			if len(t.Data) != n*want.dtype.Size()/4 {
				return nil, fmt.Errorf("GPT state: tensor %q of shape %v holds %d words, want %d", t.Name, t.Shape, len(t.Data), n*want.dtype.Size()/4)
			}
		}
		out.W[i] = append([]int32(nil), st.Tensors[3*i].Data...)
		out.M[i] = append([]int32(nil), st.Tensors[3*i+1].Data...)
		out.V[i] = st.Tensors[3*i+2].Int64s()
	}
	return out, nil
}
