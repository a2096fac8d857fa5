package dispute

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/opgraph"
	"github.com/beluga-compute/beluga/spec/ref"
)

// layout is a step's operator graph (spec/ref's for an MLP, spec/gptref's
// for a GPT) indexed for the game: where each tensor is, which are the
// state's leaves before and after the step, and which the batch.
type layout struct {
	g       opgraph.Graph
	tensors []ref.TensorInfo
	ops     []opgraph.OpInfo
	byName  map[string]int
	// stateIn and stateOut are the indices of the state tensors before and
	// after the step, both in state order: their leaves rebuild the state
	// digests.
	stateIn, stateOut []int
	// batch are the indices of the two batch sources in graph order: an
	// MLP's batch.x and batch.y, a GPT's tokens and targets (VerifyBatch's
	// order).
	batch [2]int
	work  int64
}

// graphOf returns the operator graph of s's training step: the GPT's when
// s is a GPT (s.IsGPT), the MLP's otherwise.
func graphOf(s *spec.Spec) (*layout, error) {
	var g opgraph.Graph
	if s == nil {
		return nil, fmt.Errorf("dispute: no spec")
	}
	if s.IsGPT() {
		if err := s.CheckTrainable(); err != nil {
			// GPT-2 blocks (SPEC.md §22) have no training step to dispute.
			return nil, fmt.Errorf("dispute: %w", err)
		}
		c, err := s.GPT()
		if err != nil {
			return nil, err
		}
		gg, err := gptref.NewGraph(c)
		if err != nil {
			return nil, err
		}
		g = gg
	} else {
		mg, err := ref.NewGraph(s)
		if err != nil {
			return nil, err
		}
		g = mg
	}
	return newLayout(g)
}

// newLayout indexes g and checks the structure the game's soundness rests
// on: unique names; every input a source or an output of an earlier
// operator; every non-source produced by exactly the operator that lists
// it; the state after the step naming the same tensors, in the same order,
// as the state before it.
func newLayout(g opgraph.Graph) (*layout, error) {
	gl := g.Layout()
	l := &layout{g: g, tensors: gl.Tensors, ops: gl.Ops, byName: make(map[string]int, len(gl.Tensors))}
	bad := func(format string, args ...any) (*layout, error) {
		return nil, fmt.Errorf("dispute: operator graph: "+format, args...)
	}
	outByState := map[string]int{}
	var batch []int
	for i, info := range l.tensors {
		if _, dup := l.byName[info.Name]; dup {
			return bad("tensor %s twice", info.Name)
		}
		l.byName[info.Name] = i
		switch info.Kind {
		case opgraph.StateIn:
			l.stateIn = append(l.stateIn, i)
		case opgraph.BatchIn:
			batch = append(batch, i)
		case opgraph.StateOut:
			outByState[info.StateName] = i
		}
		if source := info.Kind == opgraph.StateIn || info.Kind == opgraph.BatchIn; source != (info.Producer < 0) {
			return bad("tensor %s of kind %d has producer %d", info.Name, info.Kind, info.Producer)
		}
	}
	if len(batch) != 2 {
		return bad("%d batch sources, want 2", len(batch))
	}
	l.batch = [2]int{batch[0], batch[1]}
	for _, i := range l.stateIn {
		o, ok := outByState[l.tensors[i].StateName]
		if !ok {
			return bad("no state tensor %s after the step", l.tensors[i].StateName)
		}
		l.stateOut = append(l.stateOut, o)
	}
	if len(outByState) != len(l.stateIn) {
		return bad("%d state tensors after the step, %d before", len(outByState), len(l.stateIn))
	}
	done := make([]bool, len(l.tensors)) // computed before the current operator
	for i, info := range l.tensors {
		done[i] = info.Producer < 0
	}
	for k, o := range l.ops {
		for _, name := range o.Inputs {
			if i, ok := l.byName[name]; !ok || !done[i] {
				return bad("%s reads %s before it is computed", o.Name, name)
			}
		}
		for _, name := range o.Outputs {
			i, ok := l.byName[name]
			if !ok || l.tensors[i].Producer != k || done[i] {
				return bad("%s outputs %s, which it does not produce", o.Name, name)
			}
			done[i] = true
		}
		l.work += o.Work
	}
	for i, ok := range done {
		if !ok {
			return bad("no operator computes %s", l.tensors[i].Name)
		}
	}
	return l, nil
}

// index returns the position of the named tensor, or -1.
func (l *layout) index(name string) int {
	if i, ok := l.byName[name]; ok {
		return i
	}
	return -1
}

// stateAfter returns the state that the StateOut values of a step's trace
// hold, after t+1 steps, each tensor in its element type (StateDType). The
// values must be in range (Check).
func (l *layout) stateAfter(values []ref.Tensor, t int64) *spec.State {
	st := &spec.State{Step: t + 1, Tensors: make([]spec.Tensor, 0, len(l.stateOut))}
	for _, i := range l.stateOut {
		info, v := l.tensors[i], values[i]
		shape := append([]int(nil), info.Shape...)
		if StateDType(info) == spec.DTypeInt64 {
			st.Tensors = append(st.Tensors, spec.Int64Tensor(info.StateName, shape, v.Data))
			continue
		}
		d := make([]int32, len(v.Data))
		for k, x := range v.Data {
			d[k] = int32(x) // in range: int32 bounds
		}
		st.Tensors = append(st.Tensors, spec.Tensor{Name: info.StateName, Shape: shape, DType: spec.DTypeInt32, Data: d})
	}
	return st
}
