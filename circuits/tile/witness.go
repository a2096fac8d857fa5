package tile

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"

	"github.com/beluga-compute/beluga/protocol/core/zkcommit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/ref"
)

// ParamsFor returns the circuit parameters for the weight tiles of linear
// layer j of s (plan order). s must have passed Validate.
func ParamsFor(s *spec.Spec, j int) (Params, error) {
	plan := s.Plan()
	if j < 0 || j >= len(plan.Linear) {
		return Params{}, fmt.Errorf("%w: layer %d of %d", ErrParams, j, len(plan.Linear))
	}
	layout, err := zkcommit.NewLayout(s)
	if err != nil {
		return Params{}, err
	}
	g, err := ref.NewGraph(s)
	if err != nil {
		return Params{}, err
	}
	var emin, emax int64
	found := false
	for _, op := range g.Ops {
		if op.Kind == ref.OpUpdate && op.Layer == j {
			info := g.Tensors[g.Index(op.Inputs[len(op.Inputs)-1])]
			emin, emax, found = info.Min, info.Max, true
		}
	}
	if !found {
		return Params{}, fmt.Errorf("%w: no update of layer %d", ErrParams, j)
	}
	n := &s.Numeric
	off := plan.Linear[j].InFrac - n.MasterFrac + s.Optimizer.LRShift
	p := Params{
		Batch: s.BatchSize, Depth: layout.Depth,
		SMin: off - int(emax), SMax: off - int(emin), ShiftOffset: off,
		MuNum: s.Optimizer.Momentum.Num, MuShift: s.Optimizer.Momentum.Shift,
		MasterMax: plan.MasterMax,
	}
	return p, p.Validate()
}

// Public is what the verifier knows: the statement's public inputs.
type Public struct {
	RootIn, RootOut             fr.Element
	Step                        int64
	StateIdx, GradIdx, InputIdx int
	LR                          int64
}

// PublicFor computes the public inputs of the challenge (layer j, row
// block r, column block c, step t) from the job alone and the two roots
// taken from the solver's zk trace.
func PublicFor(s *spec.Spec, l *zkcommit.Layout, j, r, c int, t int64, rootIn, rootOut fr.Element) (Public, error) {
	if t < 0 || t >= s.Steps {
		return Public{}, fmt.Errorf("%w: step %d of %d", ErrParams, t, s.Steps)
	}
	si, err := l.StateLeaf(j, r, c)
	if err != nil {
		return Public{}, err
	}
	gi, _ := l.GradLeaf(j, r)
	ai, _ := l.InputLeaf(j, c)
	return Public{RootIn: rootIn, RootOut: rootOut, Step: t, StateIdx: si, GradIdx: gi, InputIdx: ai, LR: s.Optimizer.LRAt(t)}, nil
}

// Assignment returns a circuit assignment holding only the public inputs,
// for frontend.NewWitness(…, frontend.PublicOnly()).
func (pub Public) Assignment(p Params) *Circuit {
	c, _ := New(p)
	c.RootIn, c.RootOut = pub.RootIn, pub.RootOut
	c.Step, c.StateIdx, c.GradIdx, c.InputIdx, c.LR = pub.Step, pub.StateIdx, pub.GradIdx, pub.InputIdx, pub.LR
	zero := func(v []frontend.Variable) {
		for i := range v {
			v[i] = 0
		}
	}
	zero(c.G)
	zero(c.A)
	zero(c.W)
	zero(c.V)
	zero(c.PathState)
	zero(c.PathGrad)
	zero(c.PathInput)
	zero(c.PathOut)
	c.E = 0
	return c
}

// Witness is a full assignment of the tile statement.
type Witness struct {
	Public
	G, A, W, V                              []int64
	E                                       int64
	PathState, PathGrad, PathInput, PathOut []fr.Element
}

// Build assembles the witness for tile (r, c) of layer j at step t from
// the solver's stored values: st is the state before step t, vals the
// step's gradients and inputs (zkcommit.StepValues), treeIn and treeOut the
// commitments of steps t and t+1.
func Build(s *spec.Spec, l *zkcommit.Layout, j, r, c int, st *spec.State, vals []zkcommit.LayerValues, treeIn, treeOut *zkcommit.Tree) (*Witness, error) {
	pub, err := PublicFor(s, l, j, r, c, st.Step, treeIn.Root(), treeOut.Root())
	if err != nil {
		return nil, err
	}
	if len(vals) != len(l.Layers) {
		return nil, fmt.Errorf("%w: values of %d layers", ErrParams, len(vals))
	}
	ll := l.Layers[j]
	tile := l.StateTile(st, j, r, c)
	w := &Witness{Public: pub, W: tile[:T*T], V: tile[T*T:], E: vals[j].E,
		G: l.Block(vals[j].G, ll.Out, r), A: l.Block(vals[j].A, ll.In, c)}
	for _, x := range []struct {
		dst  *[]fr.Element
		tree *zkcommit.Tree
		idx  int
	}{{&w.PathState, treeIn, pub.StateIdx}, {&w.PathGrad, treeIn, pub.GradIdx}, {&w.PathInput, treeIn, pub.InputIdx}, {&w.PathOut, treeOut, pub.StateIdx}} {
		if *x.dst, err = x.tree.Path(x.idx); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Assignment returns the full circuit assignment.
func (w *Witness) Assignment(p Params) *Circuit {
	c := w.Public.Assignment(p)
	set := func(dst []frontend.Variable, src []int64) {
		for i := range dst {
			dst[i] = src[i]
		}
	}
	setF := func(dst []frontend.Variable, src []fr.Element) {
		for i := range dst {
			dst[i] = src[i]
		}
	}
	set(c.G, w.G)
	set(c.A, w.A)
	set(c.W, w.W)
	set(c.V, w.V)
	c.E = w.E
	setF(c.PathState, w.PathState)
	setF(c.PathGrad, w.PathGrad)
	setF(c.PathInput, w.PathInput)
	setF(c.PathOut, w.PathOut)
	return c
}
