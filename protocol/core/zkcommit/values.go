package zkcommit

import (
	"fmt"

	"github.com/beluga-compute/beluga/spec/ref"
)

// StepValues extracts from a step's operator trace what the commitment of
// that step covers for each linear layer: the incoming gradient and its
// exponent (the inputs of the layer's backward and update operators) and
// the layer's input.
func StepValues(tr *ref.OpTrace) ([]LayerValues, error) {
	g := tr.Graph
	plan := g.Spec().Plan()
	out := make([]LayerValues, len(plan.Linear))
	for _, op := range g.Ops {
		if op.Kind != ref.OpBackward && op.Kind != ref.OpUpdate {
			continue
		}
		j := op.Layer
		if j < 0 || j >= len(out) {
			return nil, fmt.Errorf("%w: operator %s of layer %d", ErrShape, op.Name, j)
		}
		switch op.Kind {
		case ref.OpBackward: // inputs: gradient, layer input, …
			gv, ok1 := tr.Tensor(op.Inputs[0])
			av, ok2 := tr.Tensor(op.Inputs[1])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%w: operator %s lacks its inputs", ErrShape, op.Name)
			}
			out[j].G, out[j].A = gv.Data, av.Data
		case ref.OpUpdate: // inputs: 4 state tensors, dw, db, gradient exponent
			ev, ok := tr.Tensor(op.Inputs[len(op.Inputs)-1])
			if !ok || len(ev.Data) != 1 {
				return nil, fmt.Errorf("%w: operator %s lacks its exponent", ErrShape, op.Name)
			}
			out[j].E = ev.Data[0]
		}
	}
	return out, nil
}
