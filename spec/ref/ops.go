package ref

// The training step of SPEC.md §8 as a fixed graph of operators, so that a
// dispute referee can recompute one operator instead of the whole step.
//
// The graph is a function of the spec alone (every step has the same one).
// Its tensors are the sources — the state before the step (§8.1, in state
// order) and the batch — and the outputs of its operators. For the linear
// layers at positions P of model.layers, in this order:
//
//	quantize.P  layers.P.weight, layers.P.bias            → layers.P.wq, layers.P.bq        (§8.3)
//	forward.P   input, layers.P.wq, layers.P.bq           → layers.P.out  (z, saturated)     (§8.3)
//	relu.Q      layers.P.out                              → layers.Q.out  (Q = P+1, when a relu follows)
//	  … for every linear layer in model order, the input being batch.x or the previous layer's out; then
//	loss        logits, batch.y                           → loss.grad, loss.grad.exp, loss.sum (§8.4)
//	backward.P  grad, input [, grad.exp, layers.P.wq [, z of the previous linear]]
//	                                                      → layers.P.dw, layers.P.db [, layers.R.grad, layers.R.grad.exp]
//	update.P    layers.P.{weight,bias,weight.momentum,bias.momentum}, layers.P.dw, layers.P.db, grad.exp
//	                                                      → next.layers.P.{weight,bias,weight.momentum,bias.momentum} (§8.6)
//	  … backward and update for every linear layer from the last to the first.
//
// R is the previous linear layer; its relu mask (§8.5) is read from its z.
// Exponents and the loss are 1-element tensors. Every tensor has a fixed
// shape and a value range that any input of any operator is checked
// against before anything is computed (TensorInfo.Check), so an operator
// run on hostile inputs returns an error instead of panicking or
// allocating beyond the spec's own sizes.

import (
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/fixed"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// ErrBadOpInput: an operator's inputs (or a step's state or batch) do not
// have the names, shapes or value ranges the spec implies. It is
// opgraph.ErrBadOpInput, shared with every operator graph.
var ErrBadOpInput = opgraph.ErrBadOpInput

// Tensor is a value of the operator graph: int64 elements, row-major, and
// a shape. Scalars (exponents, the loss) have shape [1]. The type is
// spec/opgraph's, shared with the GPT's graph (spec/gptref).
type Tensor = opgraph.Tensor

// TensorKind says where a tensor of the graph comes from.
type TensorKind = opgraph.TensorKind

// Tensor kinds. BatchIn is batch.x (features, [batch, features], 0..255)
// or batch.y (labels, [batch], 0..classes-1).
const (
	StateIn      = opgraph.StateIn
	BatchIn      = opgraph.BatchIn
	Intermediate = opgraph.Intermediate
	StateOut     = opgraph.StateOut
)

// TensorInfo describes one tensor of the graph. StateName is the tensor's
// name in the state (SPEC.md §8.1); Min and Max are any int32 for state
// tensors.
type TensorInfo = opgraph.TensorInfo

// OpKind is what an operator computes.
type OpKind uint8

// Operator kinds.
const (
	OpQuantize OpKind = iota + 1
	OpForward
	OpReLU
	OpLoss
	OpBackward
	OpUpdate
)

var opKindNames = [...]string{OpQuantize: "quantize", OpForward: "forward", OpReLU: "relu", OpLoss: "loss", OpBackward: "backward", OpUpdate: "update"}

func (k OpKind) String() string {
	if int(k) < len(opKindNames) && opKindNames[k] != "" {
		return opKindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one operator: a pure function of its named inputs (and the step
// number, for the learning rate) to its named outputs.
type Op struct {
	Name string
	Kind OpKind
	// Layer is the linear layer (counting linear layers only) the operator
	// belongs to; for a relu the linear layer it follows; -1 for the loss.
	Layer   int
	Inputs  []string
	Outputs []string
	// Work counts the multiply-accumulates (or element operations) of one
	// run: what recomputing the operator costs.
	Work int64
}

// Graph is the operator graph of a spec's training step. Operators are in
// an order where every input is a source or an output of an earlier one.
type Graph struct {
	Tensors []TensorInfo
	Ops     []Op

	spec     *spec.Spec
	plan     spec.Plan
	byName   map[string]int
	stateIn  []int
	stateOut []int
}

// NewGraph validates s and returns its operator graph. s must not change
// afterwards.
func NewGraph(s *spec.Spec) (*Graph, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no spec", ErrBadOpInput)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("ref: %w", err)
	}
	p := s.Plan()
	n := &s.Numeric
	g := &Graph{spec: s, plan: p, byName: map[string]int{}}
	batch := s.BatchSize
	b64 := int64(batch)

	for _, l := range p.Linear {
		for k := range 4 {
			shape := []int{l.Out, l.In}
			if k == spec.TensorBias || k == spec.TensorBiasMomentum {
				shape = []int{l.Out}
			}
			name := spec.TensorName(l.Index, k)
			g.stateIn = append(g.stateIn, g.add(TensorInfo{Name: name, Kind: StateIn, StateName: name, Shape: shape,
				Min: math.MinInt32, Max: math.MaxInt32, Producer: -1}))
		}
	}
	g.add(TensorInfo{Name: "batch.x", Kind: BatchIn, Shape: []int{batch, s.Data.Train.Features}, Min: 0, Max: 255, Producer: -1})
	g.add(TensorInfo{Name: "batch.y", Kind: BatchIn, Shape: []int{batch}, Min: 0, Max: int64(s.Data.Train.Classes) - 1, Producer: -1})

	// Forward (§8.3).
	inputs := make([]string, len(p.Linear)) // the input of each linear layer
	in := "batch.x"
	for j, l := range p.Linear {
		inputs[j] = in
		w, b := spec.TensorName(l.Index, spec.TensorWeight), spec.TensorName(l.Index, spec.TensorBias)
		wq, bq := layerName(l.Index, "wq"), layerName(l.Index, "bq")
		sb := uint(n.MasterFrac - l.InFrac - n.WeightFrac) // ≥ 0 by §3.4
		g.op(Op{Name: opName("quantize", l.Index), Kind: OpQuantize, Layer: j, Inputs: []string{w, b}, Work: int64(l.Out)*int64(l.In) + int64(l.Out)},
			TensorInfo{Name: wq, Shape: []int{l.Out, l.In}, Min: -p.WMax, Max: p.WMax},
			TensorInfo{Name: bq, Shape: []int{l.Out}, Min: fixed.RoundShift(math.MinInt32, sb), Max: fixed.RoundShift(math.MaxInt32, sb)})
		z := layerName(l.Index, "out")
		g.op(Op{Name: opName("forward", l.Index), Kind: OpForward, Layer: j, Inputs: []string{in, wq, bq}, Work: b64 * int64(l.Out) * int64(l.In)},
			TensorInfo{Name: z, Shape: []int{batch, l.Out}, Min: -l.OutMax, Max: l.OutMax})
		in = z
		if l.ReLU {
			act := layerName(l.Index+1, "out")
			g.op(Op{Name: opName("relu", l.Index+1), Kind: OpReLU, Layer: j, Inputs: []string{z}, Work: b64 * int64(l.Out)},
				TensorInfo{Name: act, Shape: []int{batch, l.Out}, Min: 0, Max: l.OutMax})
			in = act
		}
	}

	// Loss (§8.4). Per sample |loss| < 2^33 (|m - ℓ[y]| ≤ 2Z < 2^16, times
	// at most 2^16, plus the log-sum term below 2^20).
	classes := s.Data.Train.Classes
	g.op(Op{Name: "loss", Kind: OpLoss, Layer: -1, Inputs: []string{in, "batch.y"}, Work: b64 * int64(classes)},
		TensorInfo{Name: "loss.grad", Shape: []int{batch, classes}, Min: -p.GMax, Max: p.GMax},
		TensorInfo{Name: "loss.grad.exp", Shape: []int{1}, Min: int64(-n.GradBits), Max: int64(-n.GradBits)},
		TensorInfo{Name: "loss.sum", Shape: []int{1}, Min: -b64 << 34, Max: b64 << 34})

	// Backward and update (§8.5, §8.6), from the last layer to the first.
	grad, gexp := "loss.grad", "loss.grad.exp"
	emin, emax := int64(-n.GradBits), int64(-n.GradBits)
	for j := len(p.Linear) - 1; j >= 0; j-- {
		l := p.Linear[j]
		dw, db := layerName(l.Index, "dw"), layerName(l.Index, "db")
		bw := Op{Name: opName("backward", l.Index), Kind: OpBackward, Layer: j, Inputs: []string{grad, inputs[j]}, Work: b64 * int64(l.Out) * int64(l.In)}
		outs := []TensorInfo{
			{Name: dw, Shape: []int{l.Out, l.In}, Min: -b64 * l.InMax * p.GMax, Max: b64 * l.InMax * p.GMax},
			{Name: db, Shape: []int{l.Out}, Min: -b64 * p.GMax, Max: b64 * p.GMax},
		}
		var ngrad, ngexp string
		var nemin, nemax int64
		if j > 0 {
			prev := p.Linear[j-1]
			bw.Inputs = append(bw.Inputs, gexp, layerName(l.Index, "wq"))
			if prev.ReLU {
				bw.Inputs = append(bw.Inputs, layerName(prev.Index, "out"))
			}
			bw.Work *= 2
			ngrad, ngexp = layerName(prev.Index, "grad"), layerName(prev.Index, "grad.exp")
			// |dx| ≤ out·G·W ≤ 2^31-1 (§10): the renormalising shift is at
			// most 31 - grad_bits.
			nemin, nemax = emin-int64(n.WeightFrac), emax-int64(n.WeightFrac)+int64(max(0, 31-n.GradBits))
			outs = append(outs,
				TensorInfo{Name: ngrad, Shape: []int{batch, l.In}, Min: -p.GMax, Max: p.GMax},
				TensorInfo{Name: ngexp, Shape: []int{1}, Min: nemin, Max: nemax})
		}
		g.op(bw, outs...)

		up := Op{Name: opName("update", l.Index), Kind: OpUpdate, Layer: j, Work: 2 * (int64(l.Out)*int64(l.In) + int64(l.Out))}
		var next []TensorInfo
		for k := range 4 {
			name := spec.TensorName(l.Index, k)
			up.Inputs = append(up.Inputs, name)
			info := g.Tensors[g.byName[name]]
			lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
			if k == spec.TensorWeight || k == spec.TensorBias {
				lo, hi = -p.MasterMax, p.MasterMax
			}
			next = append(next, TensorInfo{Name: "next." + name, Kind: StateOut, StateName: name, Shape: info.Shape, Min: lo, Max: hi})
		}
		up.Inputs = append(up.Inputs, dw, db, gexp)
		g.op(up, next...)
		grad, gexp, emin, emax = ngrad, ngexp, nemin, nemax
	}

	// State outputs in state order (the updates ran last layer first).
	for _, i := range g.stateIn {
		g.stateOut = append(g.stateOut, g.byName["next."+g.Tensors[i].Name])
	}
	return g, nil
}

func layerName(index int, what string) string { return fmt.Sprintf("layers.%d.%s", index, what) }
func opName(kind string, index int) string    { return fmt.Sprintf("%s.%d", kind, index) }

// add appends a tensor; names are unique by construction.
func (g *Graph) add(info TensorInfo) int {
	if info.Kind == 0 {
		info.Kind = Intermediate
	}
	if _, dup := g.byName[info.Name]; dup {
		panic("ref: duplicate tensor " + info.Name) // a bug in NewGraph, not an input error
	}
	g.byName[info.Name] = len(g.Tensors)
	g.Tensors = append(g.Tensors, info)
	return len(g.Tensors) - 1
}

func (g *Graph) op(o Op, outs ...TensorInfo) {
	for _, info := range outs {
		info.Producer = len(g.Ops)
		g.add(info)
		o.Outputs = append(o.Outputs, info.Name)
	}
	g.Ops = append(g.Ops, o)
}

// Spec returns the spec of the graph.
func (g *Graph) Spec() *spec.Spec { return g.spec }

// Index returns the position of the named tensor in g.Tensors, or -1.
func (g *Graph) Index(name string) int {
	if i, ok := g.byName[name]; ok {
		return i
	}
	return -1
}

// StateInputs returns the indices of the StateIn tensors in state order
// (SPEC.md §8.1): their state-tree leaves give the digest before the step.
func (g *Graph) StateInputs() []int { return append([]int(nil), g.stateIn...) }

// StateOutputs returns the indices of the StateOut tensors in state order:
// their state-tree leaves give the digest after the step.
func (g *Graph) StateOutputs() []int { return append([]int(nil), g.stateOut...) }

// Work returns the summed Work of all operators: what a full step costs.
func (g *Graph) Work() int64 {
	var w int64
	for _, o := range g.Ops {
		w += o.Work
	}
	return w
}

var _ opgraph.Graph = (*Graph)(nil)

// Layout implements opgraph.Graph: the tensors and operators (a copy).
func (g *Graph) Layout() opgraph.Layout {
	l := opgraph.Layout{Tensors: make([]TensorInfo, len(g.Tensors)), Ops: make([]opgraph.OpInfo, len(g.Ops))}
	for i, info := range g.Tensors {
		info.Shape = append([]int(nil), info.Shape...)
		l.Tensors[i] = info
	}
	for i, o := range g.Ops {
		l.Ops[i] = opgraph.OpInfo{Name: o.Name, Inputs: append([]string(nil), o.Inputs...), Outputs: append([]string(nil), o.Outputs...), Work: o.Work}
	}
	return l
}

// RunOp implements opgraph.Graph: it is Run.
func (g *Graph) RunOp(op int, in map[string]Tensor, t int64) (map[string]Tensor, error) {
	return g.Run(t, op, in)
}

// RunOp recomputes operator op of step t of s from its inputs, keyed by
// tensor name. Every input is checked (exact name set, shape, value range)
// before anything is computed; a bad input gives an error wrapping
// ErrBadOpInput.
func RunOp(s *spec.Spec, t int64, op int, inputs map[string]Tensor) (map[string]Tensor, error) {
	g, err := NewGraph(s)
	if err != nil {
		return nil, err
	}
	return g.Run(t, op, inputs)
}

// Run is RunOp on a graph already built.
func (g *Graph) Run(t int64, op int, inputs map[string]Tensor) (map[string]Tensor, error) {
	if op < 0 || op >= len(g.Ops) {
		return nil, fmt.Errorf("%w: operator %d of %d", ErrBadOpInput, op, len(g.Ops))
	}
	o := &g.Ops[op]
	if len(inputs) != len(o.Inputs) {
		return nil, fmt.Errorf("%w: %s takes %d inputs %v, got %d", ErrBadOpInput, o.Name, len(o.Inputs), o.Inputs, len(inputs))
	}
	in := make([]Tensor, len(o.Inputs))
	for i, name := range o.Inputs {
		v, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s needs input %s", ErrBadOpInput, o.Name, name)
		}
		in[i] = v
	}
	out, err := g.run(t, op, in)
	if err != nil {
		return nil, err
	}
	res := make(map[string]Tensor, len(out))
	for i, name := range o.Outputs {
		res[name] = out[i]
	}
	return res, nil
}

// run checks the inputs of operator op (in the order of Op.Inputs) and
// computes its outputs (in the order of Op.Outputs).
func (g *Graph) run(t int64, op int, in []Tensor) ([]Tensor, error) {
	if t < 0 || t >= g.spec.Steps {
		return nil, fmt.Errorf("%w: step %d outside [0, %d)", ErrBadOpInput, t, g.spec.Steps)
	}
	o := &g.Ops[op]
	for i, name := range o.Inputs {
		if err := g.Tensors[g.byName[name]].Check(in[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
	}
	var out [][]int64
	switch o.Kind {
	case OpQuantize:
		out = g.quantize(o.Layer, in)
	case OpForward:
		out = g.forward(o.Layer, in)
	case OpReLU:
		out = g.relu(in)
	case OpLoss:
		out = g.loss(in)
	case OpBackward:
		out = g.backward(o.Layer, in)
	case OpUpdate:
		out = g.update(t, o.Layer, in)
	default:
		return nil, fmt.Errorf("%w: operator kind %v", ErrBadOpInput, o.Kind)
	}
	res := make([]Tensor, len(out))
	for i, d := range out {
		res[i] = Tensor{Shape: append([]int(nil), g.Tensors[g.byName[o.Outputs[i]]].Shape...), Data: d}
	}
	return res, nil
}

// quantize: §8.3, the forward weights and the bias in accumulator format.
func (g *Graph) quantize(j int, in []Tensor) [][]int64 {
	n, l := &g.spec.Numeric, &g.plan.Linear[j]
	w, b := in[0].Data, in[1].Data
	wq := make([]int64, len(w))
	for i, v := range w {
		wq[i] = QuantizeWeight(n, &g.plan, int32(v))
	}
	bq := make([]int64, len(b))
	for i, v := range b {
		bq[i] = QuantizeBias(n, l, int32(v))
	}
	return [][]int64{wq, bq}
}

// forward: §8.3, z = Clamp(RoundShift(βq + a·wqᵀ, S), ±OutMax).
func (g *Graph) forward(j int, in []Tensor) [][]int64 {
	l := &g.plan.Linear[j]
	a, wq, bq := in[0].Data, in[1].Data, in[2].Data
	batch := len(a) / l.In
	z := make([]int64, batch*l.Out)
	for b := range batch {
		row := a[b*l.In : (b+1)*l.In]
		for o := range l.Out {
			acc := bq[o]
			for i, w := range wq[o*l.In : (o+1)*l.In] {
				acc += row[i] * w
			}
			z[b*l.Out+o] = fixed.Clamp(fixed.RoundShift(acc, uint(l.Shift)), -l.OutMax, l.OutMax)
		}
	}
	return [][]int64{z}
}

func (g *Graph) relu(in []Tensor) [][]int64 {
	out := make([]int64, len(in[0].Data))
	for i, v := range in[0].Data {
		out[i] = max(v, 0)
	}
	return [][]int64{out}
}

// loss: §8.4 per sample, the gradient at exponent -grad_bits and Σ loss_b.
func (g *Graph) loss(in []Tensor) [][]int64 {
	n := &g.spec.Numeric
	logits, labels := in[0].Data, in[1].Data
	classes := len(logits) / len(labels)
	grad := make([]int64, len(logits))
	var sum int64
	for b, y := range labels {
		gb, l := LossGrad(n, logits[b*classes:(b+1)*classes], int(y))
		copy(grad[b*classes:], gb)
		sum += l
	}
	return [][]int64{grad, {int64(-n.GradBits)}, {sum}}
}

// backward: §8.5 for linear layer j: parameter gradients and, unless j is
// the first layer, the renormalised input gradient and its exponent.
// Inputs: grad, input [, grad.exp, wq [, z of layer j-1]].
func (g *Graph) backward(j int, in []Tensor) [][]int64 {
	l := &g.plan.Linear[j]
	gr, a := in[0].Data, in[1].Data
	batch := len(gr) / l.Out
	dW := make([]int64, l.Out*l.In)
	dB := make([]int64, l.Out)
	for b := range batch {
		row := a[b*l.In : (b+1)*l.In]
		for o := range l.Out {
			gv := gr[b*l.Out+o]
			dB[o] += gv
			dw := dW[o*l.In : (o+1)*l.In]
			for i, av := range row {
				dw[i] += gv * av
			}
		}
	}
	if j == 0 {
		return [][]int64{dW, dB}
	}
	n := &g.spec.Numeric
	exp, wq := in[2].Data[0], in[3].Data
	var mask []int64
	if g.plan.Linear[j-1].ReLU {
		mask = in[4].Data
	}
	dx := make([]int64, batch*l.In)
	var peak int64
	for b := range batch {
		for i := range l.In {
			if mask != nil && mask[b*l.In+i] <= 0 {
				continue // dx = 0 where the relu after layer j-1 was off
			}
			var acc int64
			for o := range l.Out {
				acc += gr[b*l.Out+o] * wq[o*l.In+i]
			}
			dx[b*l.In+i] = acc
			peak = max(peak, acc, -acc)
		}
	}
	sh := max(0, fixed.BitLen(peak)-n.GradBits)
	for i, v := range dx {
		dx[i] = fixed.Clamp(fixed.RoundShift(v, uint(sh)), -g.plan.GMax, g.plan.GMax)
	}
	return [][]int64{dW, dB, dx, {exp - int64(n.WeightFrac) + int64(sh)}}
}

// update: §8.6 for linear layer j with the reference's own update rule.
// Inputs: weight, bias, weight.momentum, bias.momentum, dw, db, grad.exp.
func (g *Graph) update(t int64, j int, in []Tensor) [][]int64 {
	s, l := g.spec, &g.plan.Linear[j]
	w, b, vw, vb := to32(in[0].Data), to32(in[1].Data), to32(in[2].Data), to32(in[3].Data)
	exp := int(in[6].Data[0])
	lr := s.Optimizer.LRAt(t)
	update(s, &g.plan, w, vw, in[4].Data, lr, exp-l.InFrac+s.Numeric.MasterFrac)
	update(s, &g.plan, b, vb, in[5].Data, lr, exp+s.Numeric.MasterFrac)
	return [][]int64{to64(w), to64(b), to64(vw), to64(vb)}
}

func to32(v []int64) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x) // in range: checked against TensorInfo
	}
	return out
}

func to64(v []int32) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// OpTrace is one step computed operator by operator: the value of every
// tensor of the graph.
type OpTrace struct {
	Graph *Graph
	Step  int64    // t: the trace computes the state after t+1 steps from the state after t
	Value []Tensor // indexed like Graph.Tensors
}

// Tensor returns the value of the named tensor.
func (tr *OpTrace) Tensor(name string) (Tensor, bool) {
	i := tr.Graph.Index(name)
	if i < 0 {
		return Tensor{}, false
	}
	return tr.Value[i], true
}

// LossQ16 returns Σ_b loss_b of the step (SPEC.md §8.4).
func (tr *OpTrace) LossQ16() int64 {
	v, _ := tr.Tensor("loss.sum")
	return v.Data[0]
}

// State returns the state after the step: the StateOut tensors under their
// state names, step count Step+1.
func (tr *OpTrace) State() *spec.State {
	st := &spec.State{Step: tr.Step + 1}
	for _, i := range tr.Graph.stateOut {
		info := tr.Graph.Tensors[i]
		st.Tensors = append(st.Tensors, spec.Tensor{Name: info.StateName, Shape: append([]int(nil), info.Shape...), Data: to32(tr.Value[i].Data)})
	}
	return st
}

// Recompute runs operators from, from+1, … again on the values in tr,
// overwriting their outputs: after a value is changed, it brings
// everything downstream in line.
func (tr *OpTrace) Recompute(from int) error {
	g := tr.Graph
	if from < 0 || from > len(g.Ops) {
		return fmt.Errorf("%w: operator %d of %d", ErrBadOpInput, from, len(g.Ops))
	}
	for k := from; k < len(g.Ops); k++ {
		o := &g.Ops[k]
		in := make([]Tensor, len(o.Inputs))
		for i, name := range o.Inputs {
			in[i] = tr.Value[g.byName[name]]
		}
		out, err := g.run(tr.Step, k, in)
		if err != nil {
			return err
		}
		for i, name := range o.Outputs {
			tr.Value[g.byName[name]] = out[i]
		}
	}
	return nil
}

// BatchTensors returns the batch as the graph's sources: batch.x
// [len(x), features] (feature bytes) and batch.y [len(y)] (labels). Every
// sample must have the same length.
func BatchTensors(x [][]uint8, y []uint8) (bx, by Tensor, err error) {
	if len(x) == 0 || len(x) != len(y) {
		return Tensor{}, Tensor{}, fmt.Errorf("%w: %d samples and %d labels", ErrBadOpInput, len(x), len(y))
	}
	f := len(x[0])
	bx = Tensor{Shape: []int{len(x), f}, Data: make([]int64, 0, len(x)*f)}
	for b, sample := range x {
		if len(sample) != f {
			return Tensor{}, Tensor{}, fmt.Errorf("%w: sample %d has %d features, want %d", ErrBadOpInput, b, len(sample), f)
		}
		for _, v := range sample {
			bx.Data = append(bx.Data, int64(v))
		}
	}
	by = Tensor{Shape: []int{len(y)}, Data: make([]int64, len(y))}
	for b, v := range y {
		by.Data[b] = int64(v)
	}
	return bx, by, nil
}

// StepOps runs step t (SPEC.md §8) on st operator by operator and returns
// the trace of every tensor and the new state; st is not modified. The new
// state equals what Step computes. x and y are the batch in the order the
// Sampler gives.
func StepOps(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*OpTrace, *spec.State, error) {
	g, err := NewGraph(s)
	if err != nil {
		return nil, nil, err
	}
	tr, err := g.Trace(st, t, x, y)
	if err != nil {
		return nil, nil, err
	}
	return tr, tr.State(), nil
}

// Trace is StepOps on a graph already built; it returns the trace only.
func (g *Graph) Trace(st *spec.State, t int64, x [][]uint8, y []uint8) (*OpTrace, error) {
	if st == nil || st.Step != t {
		return nil, fmt.Errorf("%w: the state is not the state after %d steps", ErrBadOpInput, t)
	}
	if len(st.Tensors) != len(g.stateIn) {
		return nil, fmt.Errorf("%w: the state has %d tensors, want %d", ErrBadOpInput, len(st.Tensors), len(g.stateIn))
	}
	tr := &OpTrace{Graph: g, Step: t, Value: make([]Tensor, len(g.Tensors))}
	for k, i := range g.stateIn {
		info, have := g.Tensors[i], st.Tensors[k]
		if have.Name != info.StateName {
			return nil, fmt.Errorf("%w: state tensor %d is %q, want %q", ErrBadOpInput, k, have.Name, info.StateName)
		}
		v := Tensor{Shape: append([]int(nil), have.Shape...), Data: to64(have.Data)}
		if err := info.Check(v); err != nil {
			return nil, err
		}
		tr.Value[i] = v
	}
	if len(x) != g.spec.BatchSize {
		return nil, fmt.Errorf("%w: batch has %d samples, want %d", ErrBadOpInput, len(x), g.spec.BatchSize)
	}
	bx, by, err := BatchTensors(x, y)
	if err != nil {
		return nil, err
	}
	for _, v := range []struct {
		name string
		t    Tensor
	}{{"batch.x", bx}, {"batch.y", by}} {
		i := g.byName[v.name]
		if err := g.Tensors[i].Check(v.t); err != nil {
			return nil, err
		}
		tr.Value[i] = v.t
	}
	if err := tr.Recompute(0); err != nil {
		return nil, err
	}
	return tr, nil
}
