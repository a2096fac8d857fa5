package inferdispute

import (
	"fmt"
	"maps"
	"slices"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// Names of the tensors the game adds after the forward graph's logits.
const (
	// SampledTensor is the bytes sampled at the output positions: [m]
	// bytes, byte k drawn (§20.17) from the logits row p−1+k.
	SampledTensor = "sampled"
	// RootTensor is the position root (§21.2) over the m leaves (k, the
	// sampled byte, the logits row p−1+k and its exponent): [32] bytes.
	RootTensor = "positions.root"
)

// maxLogitSpread bounds max − min of a logits row for the sampling
// operator: (max − z)·94548 must stay inside int64. A valid pass's rows
// span at most 2·D·(2^b − 1)² < 2^41.
const maxLogitSpread = 1 << 45

// maxLogitExp bounds a logits row's exponent for the sampling operator;
// a valid pass's are within ±2^7.
const maxLogitExp = 1 << 10

// Graph is a dispute's operator graph: spec/gptref's forward graph over
// the record's text (prompt + output, n = p + m ≤ T tokens), then two
// operators of §21 that tie the logits to the receipt:
//
//	sample     act.logits[.exp] → sampled          (§20.17 at rows p−1 … n−2)
//	positions  act.logits[.exp], sampled → positions.root   (§21.2)
//
// It is an opgraph.Graph: RunOp recomputes one operator. The request's
// seed, temperature and prompt length are part of the graph, as the step
// number is part of a training step's.
type Graph struct {
	fwd     *gptref.Graph
	nFwd    int // operators of the forward graph
	p, m    int
	seed    uint64
	temp    int64
	tensors []opgraph.TensorInfo
	ops     []opgraph.OpInfo
	byName  map[string]int
	weights []int // indices of the weight sources, in state order
	tokens  int   // index of the tokens source
	work    int64
}

var _ opgraph.Graph = (*Graph)(nil)

// NewGraph returns the dispute graph of model c for req answered with
// output (1 ≤ len(output), len(req.Prompt) + len(output) ≤ c.Context).
func NewGraph(c gpt.Config, req *inference.Request, output []byte) (*Graph, error) {
	p, m := len(req.Prompt), len(output)
	if p < 1 || m < 1 || p+m > c.Context {
		return nil, fmt.Errorf("%w: a prompt of %d and an output of %d bytes in a context of %d", ErrNoDispute, p, m, c.Context)
	}
	fwd, err := gptref.NewForwardGraph(c, p+m)
	if err != nil {
		return nil, err
	}
	g := &Graph{fwd: fwd, p: p, m: m, seed: req.Seed, temp: req.Temperature, byName: map[string]int{}}
	l := fwd.Layout()
	g.tensors, g.ops, g.nFwd = l.Tensors, l.Ops, len(l.Ops)
	logits, ok := fwd.Tensor("act.logits")
	if !ok {
		return nil, fmt.Errorf("inferdispute: the forward graph has no logits")
	}
	g.ops = append(g.ops,
		opgraph.OpInfo{Name: "sample", Inputs: []string{"act.logits", "act.logits.exp"}, Outputs: []string{SampledTensor}, Work: int64(m) * gpt.Vocab},
		opgraph.OpInfo{Name: "positions", Inputs: []string{"act.logits", "act.logits.exp", SampledTensor}, Outputs: []string{RootTensor}, Work: int64(m) * gpt.Vocab})
	g.tensors = append(g.tensors,
		opgraph.TensorInfo{Name: SampledTensor, Kind: opgraph.Intermediate, Shape: []int{m}, Min: 0, Max: 255, Producer: g.nFwd},
		opgraph.TensorInfo{Name: RootTensor, Kind: opgraph.Intermediate, Shape: []int{len(merkle.Digest{})}, Min: 0, Max: 255, Producer: g.nFwd + 1})
	_ = logits
	for i, info := range g.tensors {
		g.byName[info.Name] = i
		switch info.Kind {
		case opgraph.StateIn:
			g.weights = append(g.weights, i)
		case opgraph.BatchIn:
			g.tokens = i
		}
	}
	for _, o := range g.ops {
		g.work += o.Work
	}
	return g, nil
}

// Layout implements opgraph.Graph.
func (g *Graph) Layout() opgraph.Layout {
	l := opgraph.Layout{Tensors: slices.Clone(g.tensors), Ops: slices.Clone(g.ops)}
	for i := range l.Tensors {
		l.Tensors[i].Shape = slices.Clone(l.Tensors[i].Shape)
	}
	return l
}

// Work is the summed Work of every operator: what the whole pass costs.
func (g *Graph) Work() int64 { return g.work }

// index returns the position of the named tensor, or −1.
func (g *Graph) index(name string) int {
	if i, ok := g.byName[name]; ok {
		return i
	}
	return -1
}

// RunOp implements opgraph.Graph: operator op from exactly its inputs,
// each checked before anything is computed (t is not read).
func (g *Graph) RunOp(op int, in map[string]opgraph.Tensor, t int64) (map[string]opgraph.Tensor, error) {
	if op < g.nFwd {
		return g.fwd.RunOp(op, in, t)
	}
	if op >= len(g.ops) {
		return nil, fmt.Errorf("%w: operator %d of %d", opgraph.ErrBadOpInput, op, len(g.ops))
	}
	o := g.ops[op]
	if len(in) != len(o.Inputs) {
		return nil, fmt.Errorf("%w: %s takes the %d inputs %v, got %v", opgraph.ErrBadOpInput, o.Name, len(o.Inputs), o.Inputs, slices.Sorted(maps.Keys(in)))
	}
	for _, name := range o.Inputs {
		v, ok := in[name]
		if !ok {
			return nil, fmt.Errorf("%w: %s needs input %s", opgraph.ErrBadOpInput, o.Name, name)
		}
		if err := g.tensors[g.byName[name]].Check(v); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
	}
	z, ez := in["act.logits"].Data, in["act.logits.exp"].Data
	const V = gpt.Vocab
	row := func(k int) ([]int64, int) { r := g.p - 1 + k; return z[r*V : (r+1)*V], int(ez[r]) }
	var out opgraph.Tensor
	switch o.Name {
	case "sample":
		out = opgraph.Tensor{Shape: []int{g.m}, Data: make([]int64, g.m)}
		for k := range g.m {
			zr, e := row(k)
			lo, hi := slices.Min(zr), slices.Max(zr)
			if hi-lo >= maxLogitSpread || e < -maxLogitExp || e > maxLogitExp {
				return nil, fmt.Errorf("%w: sample: logits row %d spans %d at exponent %d, which no valid pass computes", opgraph.ErrBadOpInput, g.p-1+k, hi-lo, e)
			}
			out.Data[k] = int64(gpt.Sample(zr, e, g.temp, g.seed, int64(k)))
		}
	default: // positions
		sampled := in[SampledTensor].Data
		leaves := make([]merkle.Digest, g.m)
		buf := make([]byte, 0, 13+8*V)
		for k := range g.m {
			zr, e := row(k)
			buf = inference.LeafData(buf[:0], k, byte(sampled[k]), zr, e)
			leaves[k] = inference.PositionTree.Leaf(buf)
		}
		out = digestTensor(inference.PositionTree.Root(leaves))
	}
	return map[string]opgraph.Tensor{o.Outputs[0]: out}, nil
}

// digestTensor is a 32-byte digest as the [32] tensor of its bytes.
func digestTensor(d merkle.Digest) opgraph.Tensor {
	t := opgraph.Tensor{Shape: []int{len(d)}, Data: make([]int64, len(d))}
	for i, b := range d {
		t.Data[i] = int64(b)
	}
	return t
}

// bytesTensor is a byte string as a tensor of shape [len(b)].
func bytesTensor(b []byte) opgraph.Tensor {
	t := opgraph.Tensor{Shape: []int{len(b)}, Data: make([]int64, len(b))}
	for i, v := range b {
		t.Data[i] = int64(v)
	}
	return t
}

// Forward computes every tensor of the graph for the model st (its
// weights) on the text tokens (prompt + output), operator by operator,
// calling after (if not nil) with each operator's outputs before they are
// used, so a test can alter them; it returns the values in the graph's
// tensor order.
func (g *Graph) Forward(st *gpt.State, text []byte, after func(op int, out map[string]opgraph.Tensor)) ([]opgraph.Tensor, error) {
	if st == nil || len(st.W) != len(g.weights) {
		return nil, fmt.Errorf("%w: the model has the wrong parameters", opgraph.ErrBadOpInput)
	}
	vals := map[string]opgraph.Tensor{}
	for k, i := range g.weights {
		info := g.tensors[i]
		w := make([]int64, len(st.W[k]))
		for j, v := range st.W[k] {
			w[j] = int64(v)
		}
		t := opgraph.Tensor{Shape: slices.Clone(info.Shape), Data: w}
		if err := info.Check(t); err != nil {
			return nil, err
		}
		vals[info.Name] = t
	}
	tok := bytesTensor(text)
	if err := g.tensors[g.tokens].Check(tok); err != nil {
		return nil, err
	}
	vals["tokens"] = tok
	for k, o := range g.ops {
		in := make(map[string]opgraph.Tensor, len(o.Inputs))
		for _, name := range o.Inputs {
			in[name] = vals[name]
		}
		out, err := g.RunOp(k, in, 0)
		if err != nil {
			return nil, err
		}
		if after != nil {
			after(k, out)
		}
		maps.Copy(vals, out)
	}
	res := make([]opgraph.Tensor, len(g.tensors))
	for i, info := range g.tensors {
		res[i] = vals[info.Name]
	}
	return res, nil
}

// claimOf hashes values (one per tensor of g) with dispute.HashTensor:
// the weights hash to their state-tree leaves.
func (g *Graph) claimOf(values []opgraph.Tensor) ([]merkle.Digest, error) {
	if len(values) != len(g.tensors) {
		return nil, fmt.Errorf("inferdispute: %d values for %d tensors", len(values), len(g.tensors))
	}
	h := make([]merkle.Digest, len(values))
	for i, info := range g.tensors {
		d, err := dispute.HashTensor(info, values[i])
		if err != nil {
			return nil, err
		}
		h[i] = d
	}
	return h, nil
}
