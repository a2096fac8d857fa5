package gptref

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// ErrBadOpInput: an operator's inputs (or a step's state or batch) do not
// have the names, shapes or value ranges that SPEC.md §20 implies. It is
// opgraph.ErrBadOpInput, shared with every operator graph.
var ErrBadOpInput = opgraph.ErrBadOpInput

// ErrGPT2: the configuration has GPT-2 blocks (SPEC.md §22: LayerNorm,
// GELU, biases, a tied head), which are served, never trained (§22.4):
// NewGraph has no training step for them (NewForwardGraph accepts them).
var ErrGPT2 = errors.New("gptref: GPT-2 blocks (SPEC.md §22) are served, not trained: they have no training step graph")

// ErrOverflow: an operator's exact result leaves int64 (inputs that no
// valid step produces, or a value beyond the bounds of SPEC.md §20.16).
var ErrOverflow = errors.New("gptref: value outside int64")

// Tensor is a value of the graph: int64 elements, row-major, and a shape.
// Exponents and the loss have shape [1]; per-row exponents [N]. The type
// is spec/opgraph's, shared with the MLP's graph (spec/ref).
type Tensor = opgraph.Tensor

// TensorKind says where a tensor comes from.
type TensorKind = opgraph.TensorKind

// Tensor kinds: StateIn is a state tensor before the step (SPEC.md
// §20.10), BatchIn is tokens or targets ([N] bytes, row r = bT + j),
// StateOut a state tensor after the step, named "next." + its state name.
const (
	StateIn      = opgraph.StateIn
	BatchIn      = opgraph.BatchIn
	Intermediate = opgraph.Intermediate
	StateOut     = opgraph.StateOut
)

// TensorInfo describes one tensor of the graph. StateName is P, P.m or
// P.v for the state tensors (§20.10) before and after the step.
type TensorInfo = opgraph.TensorInfo

// Op is one operator: a pure function of its named inputs (and the step
// number, which only AdamW reads) to its named outputs.
type Op struct {
	Name string
	// Kind names the operator's formula, the same for every instance:
	// quantize, embed, rmsnorm, qkv, attn, residual (the out and down
	// products with their residual add), up, silu, head, loss, linear.bwd
	// (the head, down, up and out products' backward), silu.bwd,
	// rmsnorm.bwd, add, attn.bwd, qkv.bwd, embed.bwd, adamw.norm, adamw;
	// and in the forward graph of GPT-2 blocks (SPEC.md §22) layernorm,
	// qkv.bias, residual.bias (the out and down products with their bias
	// and residual add), up.bias and gelu (its quantize over tok_emb and
	// head over tok_emb.wq are the kinds above).
	Kind    string
	Inputs  []string
	Outputs []string
	// Work counts the multiply-accumulates (or element operations) of one
	// run: what recomputing the operator costs.
	Work int64

	// run computes the outputs (in Outputs order) from checked inputs (in
	// Inputs order); arithmetic that could leave int64 goes through ar.
	run func(t int64, in [][]int64, ar *arith) [][]int64
}

// Graph is the operator graph of one configuration's training step.
// Operators are in an order where every input is a source or an output of
// an earlier operator.
type Graph struct {
	cfg     gpt.Config
	tensors []TensorInfo
	ops     []Op
	byName  map[string]int
	params  []gpt.Param
	// forward: a forward graph (NewForwardGraph), whose sources are the
	// weights and the tokens.
	forward bool
}

// Config returns the configuration of the graph.
func (g *Graph) Config() gpt.Config { return g.cfg }

// Ops returns the operators in execution order (a copy).
func (g *Graph) Ops() []Op { return slices.Clone(g.ops) }

// Tensors returns every tensor of the graph (a copy): the sources first.
func (g *Graph) Tensors() []TensorInfo { return slices.Clone(g.tensors) }

// Tensor returns the description of the named tensor.
func (g *Graph) Tensor(name string) (TensorInfo, bool) {
	i, ok := g.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return g.tensors[i], true
}

var _ opgraph.Graph = (*Graph)(nil)

// Layout implements opgraph.Graph: the tensors and operators (a copy).
func (g *Graph) Layout() opgraph.Layout {
	l := opgraph.Layout{Tensors: make([]TensorInfo, len(g.tensors)), Ops: make([]opgraph.OpInfo, len(g.ops))}
	for i, info := range g.tensors {
		info.Shape = slices.Clone(info.Shape)
		l.Tensors[i] = info
	}
	for i, o := range g.ops {
		l.Ops[i] = opgraph.OpInfo{Name: o.Name, Inputs: slices.Clone(o.Inputs), Outputs: slices.Clone(o.Outputs), Work: o.Work}
	}
	return l
}

// Work returns the summed Work of all operators: what a step costs.
func (g *Graph) Work() int64 {
	var w int64
	for _, o := range g.ops {
		w += o.Work
	}
	return w
}

// RunOp recomputes operator i of step t from its inputs, keyed by tensor
// name. The inputs must be exactly the operator's (no more, no fewer), and
// each is checked (shape, value range) before anything is computed; the
// outputs are checked against their ranges too. Errors wrap ErrBadOpInput
// or ErrOverflow.
func (g *Graph) RunOp(i int, inputs map[string]Tensor, t int64) (map[string]Tensor, error) {
	if i < 0 || i >= len(g.ops) {
		return nil, fmt.Errorf("%w: operator %d of %d", ErrBadOpInput, i, len(g.ops))
	}
	o := &g.ops[i]
	if t < 0 {
		return nil, fmt.Errorf("%w: %s: step %d is negative", ErrBadOpInput, o.Name, t)
	}
	if len(inputs) != len(o.Inputs) {
		return nil, fmt.Errorf("%w: %s takes the %d inputs %v, got %v", ErrBadOpInput, o.Name, len(o.Inputs), o.Inputs, slices.Sorted(maps.Keys(inputs)))
	}
	in := make([][]int64, len(o.Inputs))
	for k, name := range o.Inputs {
		v, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s needs input %s", ErrBadOpInput, o.Name, name)
		}
		if err := g.tensors[g.byName[name]].Check(v); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		in[k] = v.Data
	}
	ar := &arith{op: o.Name}
	out := o.run(t, in, ar)
	if ar.err != nil {
		return nil, ar.err
	}
	res := make(map[string]Tensor, len(out))
	for k, name := range o.Outputs {
		info := g.tensors[g.byName[name]]
		v := Tensor{Shape: slices.Clone(info.Shape), Data: out[k]}
		if err := info.Check(v); err != nil {
			// Unreachable on inputs that a valid step produces: a range
			// below is narrower than the spec allows.
			return nil, fmt.Errorf("%w: %s computed an output outside its range: %w", ErrOverflow, o.Name, err)
		}
		res[name] = v
	}
	return res, nil
}

// Step runs one training step (SPEC.md §20.11–§20.14) of c on st with the
// batch tokens, targets (N = Batch·Context bytes each, row r = bT + j),
// every operator in order, and returns the state after it (step count
// st.Step + 1) and the summed loss in Q16 nats. st is not modified.
func Step(c gpt.Config, st *gpt.State, tokens, targets []byte) (*gpt.State, int64, error) {
	g, err := NewGraph(c)
	if err != nil {
		return nil, 0, err
	}
	vals, err := g.Run(st, tokens, targets)
	if err != nil {
		return nil, 0, err
	}
	return g.nextState(vals, st.Step), vals["loss.sum"].Data[0], nil
}

// nextState collects the StateOut tensors of a completed run of step t.
func (g *Graph) nextState(vals map[string]Tensor, t int64) *gpt.State {
	next := &gpt.State{Step: t + 1}
	for _, p := range g.params {
		w, m, v := vals["next."+p.Name].Data, vals["next."+p.Name+".m"].Data, vals["next."+p.Name+".v"].Data
		w32, m32 := make([]int32, len(w)), make([]int32, len(m))
		for i := range w {
			w32[i], m32[i] = int32(w[i]), int32(m[i]) // in range: checked
		}
		next.W, next.M, next.V = append(next.W, w32), append(next.M, m32), append(next.V, slices.Clone(v))
	}
	return next
}

// Run computes every tensor of the step that takes st to the next state on
// the given batch, operator by operator, and returns them by name.
func (g *Graph) Run(st *gpt.State, tokens, targets []byte) (map[string]Tensor, error) {
	if g.forward {
		return nil, fmt.Errorf("%w: a forward graph has no targets: run it with Forward", ErrBadOpInput)
	}
	vals, err := g.sources(st, tokens, targets)
	if err != nil {
		return nil, err
	}
	return g.runOps(vals, st.Step)
}

// Forward computes every tensor of a forward graph (NewForwardGraph) for
// the model st (its weights; M and V are not read) on the graph's n
// tokens, operator by operator, and returns them by name: act.logits row r
// is the model's prediction after tokens[:r+1].
func (g *Graph) Forward(st *gpt.State, tokens []byte) (map[string]Tensor, error) {
	if !g.forward {
		return nil, fmt.Errorf("%w: a training step's graph: run it with Run", ErrBadOpInput)
	}
	vals, err := g.sources(st, tokens, nil)
	if err != nil {
		return nil, err
	}
	return g.runOps(vals, 0)
}

// IsForward reports whether g is a forward graph (NewForwardGraph).
func (g *Graph) IsForward() bool { return g.forward }

// runOps runs every operator in order on the sources in vals, adding the
// outputs to it.
func (g *Graph) runOps(vals map[string]Tensor, step int64) (map[string]Tensor, error) {
	for i, o := range g.ops {
		in := make(map[string]Tensor, len(o.Inputs))
		for _, name := range o.Inputs {
			in[name] = vals[name]
		}
		out, err := g.RunOp(i, in, step)
		if err != nil {
			return nil, err
		}
		maps.Copy(vals, out)
	}
	return vals, nil
}

// put checks v against the named tensor's shape and range and stores it.
func (g *Graph) put(vals map[string]Tensor, name string, data []int64) error {
	info := g.tensors[g.byName[name]]
	t := Tensor{Shape: slices.Clone(info.Shape), Data: data}
	if err := info.Check(t); err != nil {
		return err
	}
	vals[name] = t
	return nil
}

// sources returns the graph's sources from a state and a batch.
func (g *Graph) sources(st *gpt.State, tokens, targets []byte) (map[string]Tensor, error) {
	if st == nil {
		return nil, fmt.Errorf("%w: no state", ErrBadOpInput)
	}
	if st.Step < 0 {
		return nil, fmt.Errorf("%w: state step %d is negative", ErrBadOpInput, st.Step)
	}
	np := len(g.params)
	if g.forward {
		if len(st.W) != np {
			return nil, fmt.Errorf("%w: the model has %d weight tensors, want %d", ErrBadOpInput, len(st.W), np)
		}
		if n := g.tensors[g.byName["tokens"]].Len(); len(tokens) != n {
			return nil, fmt.Errorf("%w: %d tokens, the forward graph has %d rows", ErrBadOpInput, len(tokens), n)
		}
		vals := map[string]Tensor{}
		for i, p := range g.params {
			if err := g.put(vals, p.Name, widen(st.W[i])); err != nil {
				return nil, err
			}
		}
		return vals, g.put(vals, "tokens", widen(tokens))
	}
	if len(st.W) != np || len(st.M) != np || len(st.V) != np {
		return nil, fmt.Errorf("%w: the state has %d/%d/%d tensors per kind, want %d", ErrBadOpInput, len(st.W), len(st.M), len(st.V), np)
	}
	n := g.cfg.Tokens()
	if len(tokens) != n || len(targets) != n {
		return nil, fmt.Errorf("%w: batch of %d tokens and %d targets, want %d each", ErrBadOpInput, len(tokens), len(targets), n)
	}
	vals := map[string]Tensor{}
	put := func(name string, data []int64) error {
		info := g.tensors[g.byName[name]]
		t := Tensor{Shape: slices.Clone(info.Shape), Data: data}
		if err := info.Check(t); err != nil {
			return err
		}
		vals[name] = t
		return nil
	}
	for i, p := range g.params {
		if err := put(p.Name, widen(st.W[i])); err != nil {
			return nil, err
		}
		if err := put(p.Name+".m", widen(st.M[i])); err != nil {
			return nil, err
		}
		if err := put(p.Name+".v", slices.Clone(st.V[i])); err != nil {
			return nil, err
		}
	}
	if err := put("tokens", widen(tokens)); err != nil {
		return nil, err
	}
	if err := put("targets", widen(targets)); err != nil {
		return nil, err
	}
	return vals, nil
}

func widen[T int32 | byte](v []T) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
