// Package opgraph holds what every operator graph of a training step
// shares — spec/ref's for an MLP (SPEC.md §8) and spec/gptref's for a GPT
// (§20) — so that a dispute referee (protocol/core/dispute) plays against
// either: named tensors with fixed shapes, kinds and value ranges, and
// operators with named inputs and outputs that can be recomputed one at a
// time.
//
// A graph depends on the spec alone: every step of a job has the same one.
// Its sources are the state before the step, in state order (the order of
// the state digest's leaves, SPEC.md §11.2 and §20.15), then the batch;
// every other tensor is the output of exactly one operator, and the
// operators are listed so that each input is a source or an output of an
// earlier operator.
package opgraph

import (
	"errors"
	"fmt"
)

// ErrBadOpInput: an operator's inputs (or a step's state or batch) do not
// have the names, shapes or value ranges the spec implies.
var ErrBadOpInput = errors.New("bad operator input")

// Tensor is a value of an operator graph: int64 elements, row-major, and
// a shape. Scalars (exponents, the loss) have shape [1].
type Tensor struct {
	Shape []int
	Data  []int64
}

// Clone returns a deep copy.
func (t Tensor) Clone() Tensor {
	return Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]int64(nil), t.Data...)}
}

// TensorKind says where a tensor of a graph comes from.
type TensorKind uint8

// Tensor kinds.
const (
	// StateIn is a state tensor before the step: a source.
	StateIn TensorKind = iota + 1
	// BatchIn is part of the step's batch: a source (an MLP's batch.x and
	// batch.y, a GPT's tokens and targets).
	BatchIn
	// Intermediate is computed and consumed inside the step.
	Intermediate
	// StateOut is a state tensor after the step: an operator's output.
	StateOut
)

// TensorInfo describes one tensor of a graph.
type TensorInfo struct {
	Name string // unique in the graph
	Kind TensorKind
	// StateName is the tensor's name in the state for StateIn and StateOut:
	// a state tensor is named the same before and after the step; graphs
	// prefix "next." to the name of the latter.
	StateName string
	Shape     []int
	// Min and Max bound every element: the values the producing operator
	// can output on any valid input (the state's and the batch's formats
	// for sources).
	Min, Max int64
	// Producer is the index of the operator that outputs the tensor, -1 for
	// sources.
	Producer int
}

// Len returns the number of elements.
func (info TensorInfo) Len() int {
	n := 1
	for _, d := range info.Shape {
		n *= d
	}
	return n
}

// Check verifies that t has info's shape and every element lies in
// [Min, Max]. It reads t.Data only after its length is known to match.
// Errors wrap ErrBadOpInput.
func (info TensorInfo) Check(t Tensor) error {
	if len(t.Shape) != len(info.Shape) {
		return fmt.Errorf("%w: %s has rank %d, want %d", ErrBadOpInput, info.Name, len(t.Shape), len(info.Shape))
	}
	for i, d := range t.Shape {
		if d != info.Shape[i] {
			return fmt.Errorf("%w: %s has shape %v, want %v", ErrBadOpInput, info.Name, t.Shape, info.Shape)
		}
	}
	if n := info.Len(); len(t.Data) != n {
		return fmt.Errorf("%w: %s has %d elements, want %d", ErrBadOpInput, info.Name, len(t.Data), n)
	}
	for i, v := range t.Data {
		if v < info.Min || v > info.Max {
			return fmt.Errorf("%w: %s[%d] = %d outside [%d, %d]", ErrBadOpInput, info.Name, i, v, info.Min, info.Max)
		}
	}
	return nil
}

// OpInfo describes one operator of a graph.
type OpInfo struct {
	Name    string
	Inputs  []string
	Outputs []string
	// Work counts the multiply-accumulates (or element operations) of one
	// run: what recomputing the operator costs.
	Work int64
}

// Layout is a graph's tensors (the sources first) and its operators in
// execution order.
type Layout struct {
	Tensors []TensorInfo
	Ops     []OpInfo
}

// Graph is a training step as a fixed graph of operators.
type Graph interface {
	// Layout returns the tensors and operators (a copy).
	Layout() Layout
	// RunOp recomputes operator op of step t from its inputs, keyed by
	// tensor name: exactly the operator's inputs, each checked (shape,
	// value range) before anything is computed. Inputs that no valid step
	// produces give an error, never a panic.
	RunOp(op int, in map[string]Tensor, t int64) (map[string]Tensor, error)
}
