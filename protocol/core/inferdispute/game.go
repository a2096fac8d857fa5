package inferdispute

import (
	"context"
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// Model is a published model as the referee knows it: the configuration
// and the checkpoint its state digest names (the job, whose spec gives
// the configuration, and the step).
type Model struct {
	Config gpt.Config
	Job    spec.JobID
	Step   int64
	Digest merkle.Digest
}

// Case is what a dispute is about: a receipt, the request it answers and
// the output it claims (an inference.Record's contents).
type Case struct {
	Request *inference.Request
	Output  []byte
	Receipt *inference.Receipt
}

// text is the teacher-forced window: prompt + output.
func (c *Case) text() []byte {
	return append(append(make([]byte, 0, len(c.Request.Prompt)+len(c.Output)), c.Request.Prompt...), c.Output...)
}

// Claim is a party's commitment to its forward pass over the case's text:
// the hash (dispute.HashTensor) of every tensor of the dispute's Graph, in
// its order — the weights hash to their state-tree leaves — and the
// state-tree leaves of the checkpoint's other tensors (P.m and P.v per
// parameter, in parameter order), so that with the weights' leaves they
// rebuild the model's state digest.
type Claim struct {
	Hashes  []merkle.Digest
	Moments []merkle.Digest
}

// Party is one side of an inference dispute as the referee sees it, for
// one case: the solver or the verifier. Every answer is checked; none is
// trusted.
type Party interface {
	// Claim returns the party's claim of the case's forward pass.
	Claim(ctx context.Context) (Claim, error)
	// Open returns the value of the named tensor of that pass.
	Open(ctx context.Context, name string) (opgraph.Tensor, error)
}

// Reason says how a verdict was reached.
type Reason uint8

// Reasons.
const (
	// ReasonReceipt: the signed receipt alone is fraud (its counts, its
	// bindings to the request, the stop rule): no forward pass needed.
	ReasonReceipt Reason = iota + 1
	// ReasonInconsistent: the loser's claim is malformed, or its sources
	// are not the published model's weights (they do not rebuild the
	// state digest) or the record's text, or — the solver's — its sampled
	// bytes and position root are not the receipt's, or — the verifier's
	// — they are (it accuses nothing).
	ReasonInconsistent
	// ReasonOp: one operator was recomputed from agreed inputs.
	ReasonOp
	// ReasonForfeit: the loser did not answer, or opened values that do
	// not match its own hashes. Not re-checkable: no Evidence.
	ReasonForfeit
)

func (r Reason) String() string {
	switch r {
	case ReasonReceipt:
		return "receipt"
	case ReasonInconsistent:
		return "inconsistent claim"
	case ReasonOp:
		return "operator recomputed"
	case ReasonForfeit:
		return "forfeit"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Verdict is the outcome of a dispute.
type Verdict struct {
	Loser  dispute.Loser
	Reason Reason
}

func (v Verdict) String() string { return fmt.Sprintf("%v loses (%v)", v.Loser, v.Reason) }

// Cost is what the referee spent on one dispute.
type Cost struct {
	// OpsRun counts operators recomputed: at most 1.
	OpsRun int
	// Op names the operator recomputed ("" if none).
	Op string
	// OpWork is the Work of the operator recomputed; PassWork that of the
	// whole graph (the forward pass, sampling and the root), for
	// comparison.
	OpWork, PassWork int64
	// HashedBytes counts the tensor bytes hashed to check the public
	// sources and the openings and the recomputed outputs.
	HashedBytes int64
}

// Result is the outcome of Play.
type Result struct {
	Verdict Verdict
	// Evidence records the decision for anyone to re-check; nil when the
	// verdict is a forfeit.
	Evidence *Evidence
	// Forfeit says who failed to answer and how (Reason ReasonForfeit).
	Forfeit string
	Cost    Cost
}

// Evidence is the self-contained record of a decided inference dispute:
// anyone with the model's configuration and checkpoint name re-checks it
// with Check, trusting neither party nor the referee.
type Evidence struct {
	Case     Case
	Solver   Claim
	Verifier Claim
	// Op is the operator recomputed (Reason ReasonOp), else NoOp.
	Op int
	// Inputs are Op's inputs, in the order of its Inputs, as opened.
	Inputs  []dispute.NamedTensor
	Verdict Verdict
}

// NoOp is Evidence.Op when no operator was recomputed.
const NoOp = -1

// Referee plays inference disputes. It holds no state between disputes
// and trusts nothing but the spec and hashes.
type Referee struct {
	// runOp recomputes an operator; tests count its calls.
	runOp func(g *Graph, op int, in map[string]opgraph.Tensor) (map[string]opgraph.Tensor, error)
}

// NewReferee returns a referee.
func NewReferee() *Referee { return &Referee{runOp: runOp} }

func runOp(g *Graph, op int, in map[string]opgraph.Tensor) (map[string]opgraph.Tensor, error) {
	return g.RunOp(op, in, 0)
}

// Play decides the dispute over case cs of model m between the solver
// that signed its receipt and the verifier that accuses it:
//
//  1. the receipt's model-free claims (inference.CheckReceipt): a
//     receipt that is fraud on its face loses the solver the game;
//  2. both commit to their forward pass over prompt + output (Claim); a
//     claim whose weights do not rebuild the model's digest, whose tokens
//     are not the record's text, or whose sampled bytes and root are not
//     the receipt's (the solver's) or are (the verifier's) loses;
//  3. otherwise the first operator whose outputs the claims differ on has
//     inputs they agree on: one party opens them, the referee checks them
//     against the agreed hashes, recomputes that operator once and
//     compares with both claims.
//
// A party that does not answer, or opens values that do not match, loses
// by forfeit. Errors are the referee's own: a record that is no dispute
// (ErrNoDispute: a bad signature, a receipt for another request, output
// or model), a cancelled context.
func (r *Referee) Play(ctx context.Context, m Model, cs Case, solver, verifier Party) (*Result, error) {
	res := &Result{}
	j, v, err := newJudge(m, cs, &res.Cost)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{Case: cs, Op: NoOp}
	if v != nil {
		return finish(res, ev, *v), nil
	}
	j.runOp = r.runOp
	forfeit := func(what string, errS, errV error) (*Result, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case errS != nil && errV != nil:
			res.Verdict = Verdict{dispute.LoserBoth, ReasonForfeit}
			res.Forfeit = fmt.Sprintf("%s: solver: %v; verifier: %v", what, errS, errV)
		case errS != nil:
			res.Verdict = Verdict{dispute.LoserSolver, ReasonForfeit}
			res.Forfeit = fmt.Sprintf("%s: solver: %v", what, errS)
		default:
			res.Verdict = Verdict{dispute.LoserVerifier, ReasonForfeit}
			res.Forfeit = fmt.Sprintf("%s: verifier: %v", what, errV)
		}
		return res, nil
	}
	// Both parties compute their pass at once.
	var sc, vc Claim
	var errS, errV error
	done := make(chan struct{})
	go func() { defer close(done); vc, errV = verifier.Claim(ctx) }()
	sc, errS = solver.Claim(ctx)
	<-done
	if errS != nil || errV != nil {
		return forfeit("claim of the forward pass", errS, errV)
	}
	sc, vc = sc.clone(), vc.clone()
	ev.Solver, ev.Verifier = sc, vc
	v, op, err := j.examine(sc, vc)
	if err != nil {
		return nil, err
	}
	if v != nil {
		return finish(res, ev, *v), nil
	}
	var failures [2]error
	for i, p := range []Party{solver, verifier} {
		opened, in, err := j.open(ctx, p, op, sc)
		if err == nil {
			ev.Op, ev.Inputs = op, opened
			ov, err := j.recompute(op, in, sc, vc)
			if err != nil {
				return nil, err
			}
			return finish(res, ev, ov), nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		failures[i] = err
	}
	return forfeit("inputs of "+j.g.ops[op].Name, failures[0], failures[1])
}

func finish(res *Result, ev *Evidence, v Verdict) *Result {
	ev.Verdict = v
	res.Verdict, res.Evidence = v, ev
	return res
}

func (c Claim) clone() Claim {
	return Claim{Hashes: append([]merkle.Digest(nil), c.Hashes...), Moments: append([]merkle.Digest(nil), c.Moments...)}
}

// Check re-decides the dispute recorded in ev for model m from the spec
// alone and returns the verdict; it fails with ErrBadEvidence when ev does
// not hold up or records another verdict. It costs what the referee paid:
// at most one operator, and hashing.
func Check(m Model, ev Evidence) (Verdict, error) {
	j, v, err := newJudge(m, ev.Case, nil)
	if err != nil {
		return Verdict{}, err
	}
	if v == nil {
		var op int
		if v, op, err = j.examine(ev.Solver, ev.Verifier); err != nil {
			return Verdict{}, err
		}
		if v == nil {
			if ev.Op != op {
				return Verdict{}, fmt.Errorf("%w: operator %d is disputed, the evidence opens %d", ErrBadEvidence, op, ev.Op)
			}
			in, err := j.verifyInputs(op, ev.Inputs, ev.Solver)
			if err != nil {
				return Verdict{}, fmt.Errorf("%w: %w", ErrBadEvidence, err)
			}
			ov, err := j.recompute(op, in, ev.Solver, ev.Verifier)
			if err != nil {
				return Verdict{}, err
			}
			v = &ov
		}
	}
	if v.Reason != ReasonOp && (ev.Op != NoOp || len(ev.Inputs) != 0) {
		return Verdict{}, fmt.Errorf("%w: openings in a dispute decided without them", ErrBadEvidence)
	}
	if *v != ev.Verdict {
		return *v, fmt.Errorf("%w: the dispute decides %v, the evidence records %v", ErrBadEvidence, *v, ev.Verdict)
	}
	return *v, nil
}

// judge holds what deciding needs. Both Play and Check decide with it.
type judge struct {
	m     Model
	cs    Case
	g     *Graph
	runOp func(g *Graph, op int, in map[string]opgraph.Tensor) (map[string]opgraph.Tensor, error)
	cost  *Cost
	// The hashes every consistent claim has at the public tensors: the
	// record's text, and the receipt's output and root.
	tokens, sampled, root merkle.Digest
}

// newJudge checks the receipt's model-free claims; a receipt that is
// fraud on its face gives the verdict (the solver loses) at once.
func newJudge(m Model, cs Case, cost *Cost) (*judge, *Verdict, error) {
	if cs.Request == nil || cs.Receipt == nil {
		return nil, nil, fmt.Errorf("%w: no request or receipt", ErrNoDispute)
	}
	if cost == nil {
		cost = &Cost{}
	}
	err := inference.CheckReceipt(m.Config.Context, m.Digest, cs.Request, cs.Output, cs.Receipt)
	switch {
	case errors.Is(err, inference.ErrFraud):
		return nil, &Verdict{dispute.LoserSolver, ReasonReceipt}, nil
	case err != nil:
		return nil, nil, fmt.Errorf("%w: %w", ErrNoDispute, err)
	}
	g, err := NewGraph(m.Config, cs.Request, cs.Output)
	if err != nil {
		return nil, nil, err
	}
	cost.PassWork = g.work
	j := &judge{m: m, cs: cs, g: g, runOp: runOp, cost: cost}
	for _, x := range []struct {
		dst  *merkle.Digest
		name string
		t    opgraph.Tensor
	}{
		{&j.tokens, "tokens", bytesTensor(cs.text())},
		{&j.sampled, SampledTensor, bytesTensor(cs.Output)},
		{&j.root, RootTensor, digestTensor(cs.Receipt.Positions)},
	} {
		if *x.dst, err = j.hash(g.index(x.name), x.t); err != nil {
			return nil, nil, fmt.Errorf("inferdispute: %s: %w", x.name, err)
		}
	}
	return j, nil, nil
}

func (j *judge) hash(i int, v opgraph.Tensor) (merkle.Digest, error) {
	info := j.g.tensors[i]
	n := int64(info.Len()) * 8
	if info.Kind == opgraph.StateIn {
		n = int64(info.Len()) * 4
	}
	j.cost.HashedBytes += n
	return dispute.HashTensor(info, v)
}

// hashAt is a dispute.HashAt of the judge's graph.
func (j *judge) hashAt(name string, v opgraph.Tensor) (int, merkle.Digest, error) {
	i := j.g.index(name)
	h, err := j.hash(i, v)
	return i, h, err
}

// digestOf rebuilds the state digest that c's weight leaves and moments
// name for the model's checkpoint.
func (j *judge) digestOf(c Claim) merkle.Digest {
	leaves := make([]merkle.Digest, 0, 3*len(j.g.weights))
	for k, i := range j.g.weights {
		leaves = append(leaves, c.Hashes[i], c.Moments[2*k], c.Moments[2*k+1])
	}
	return commit.Digest(j.m.Job, j.m.Step, commit.TensorTree.Root(leaves))
}

// sources reports whether c is well formed and holds the model's weights
// and the record's text.
func (j *judge) sources(c Claim) bool {
	if len(c.Hashes) != len(j.g.tensors) || len(c.Moments) != 2*len(j.g.weights) {
		return false
	}
	return c.Hashes[j.g.tokens] == j.tokens && j.digestOf(c) == j.m.Digest
}

// receipts reports whether c's sampled bytes and root are the receipt's.
func (j *judge) receipts(c Claim) bool {
	return c.Hashes[j.g.index(SampledTensor)] == j.sampled && c.Hashes[j.g.index(RootTensor)] == j.root
}

// examine decides from the claims alone when one of them is inconsistent;
// otherwise it returns the first operator whose outputs differ.
func (j *judge) examine(sc, vc Claim) (*Verdict, int, error) {
	sOK := j.sources(sc) && j.receipts(sc)
	vOK := j.sources(vc) && !j.receipts(vc)
	switch {
	case !sOK && !vOK:
		return &Verdict{dispute.LoserBoth, ReasonInconsistent}, NoOp, nil
	case !sOK:
		return &Verdict{dispute.LoserSolver, ReasonInconsistent}, NoOp, nil
	case !vOK:
		return &Verdict{dispute.LoserVerifier, ReasonInconsistent}, NoOp, nil
	}
	for i, info := range j.g.tensors {
		if info.Producer < 0 && sc.Hashes[i] != vc.Hashes[i] {
			return nil, NoOp, fmt.Errorf("inferdispute: claims differ on %s yet both hold the model and the text: hash collision", info.Name)
		}
	}
	for k, o := range j.g.ops {
		for _, name := range o.Outputs {
			if i := j.g.index(name); sc.Hashes[i] != vc.Hashes[i] {
				return nil, k, nil // every input is a source or an earlier output: all agree
			}
		}
	}
	return nil, NoOp, fmt.Errorf("inferdispute: claims agree everywhere yet one is the receipt's and one is not: hash collision")
}

// open asks p for operator op's inputs and checks them against c.
func (j *judge) open(ctx context.Context, p Party, op int, c Claim) ([]dispute.NamedTensor, map[string]opgraph.Tensor, error) {
	names := j.g.ops[op].Inputs
	opened := make([]dispute.NamedTensor, len(names))
	for k, name := range names {
		v, err := p.Open(ctx, name)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", name, err)
		}
		opened[k] = dispute.NamedTensor{Name: name, Tensor: v.Clone()}
	}
	in, err := j.verifyInputs(op, opened, c)
	if err != nil {
		return nil, nil, err
	}
	return opened, in, nil
}

// verifyInputs checks that opened are operator op's inputs, in order,
// each matching the agreed hash in c.
func (j *judge) verifyInputs(op int, opened []dispute.NamedTensor, c Claim) (map[string]opgraph.Tensor, error) {
	return dispute.CheckOpening(&j.g.ops[op], opened, c.Hashes, j.hashAt, ErrBadOpening)
}

// recompute runs operator op once on verified inputs and compares its
// outputs with both claims.
func (j *judge) recompute(op int, in map[string]opgraph.Tensor, sc, vc Claim) (Verdict, error) {
	o := &j.g.ops[op]
	j.cost.OpsRun++
	j.cost.Op = o.Name
	j.cost.OpWork += o.Work
	out, err := j.runOp(j.g, op, in)
	if err != nil {
		// Agreed inputs in range that the operator refuses: values no
		// valid pass produces; an honest party never signs them.
		return decide(false, false)
	}
	sOK, vOK, err := dispute.MatchOutputs(o, out, sc.Hashes, vc.Hashes, j.hashAt)
	if err != nil {
		return Verdict{}, fmt.Errorf("inferdispute: recompute %s: %w", o.Name, err)
	}
	return decide(sOK, vOK)
}

// decide turns "whose claim matches the recomputation" into a verdict.
func decide(solverOK, verifierOK bool) (Verdict, error) {
	switch {
	case solverOK && verifierOK:
		return Verdict{}, fmt.Errorf("inferdispute: both claims match the recomputation of a disputed value: hash collision")
	case solverOK:
		return Verdict{dispute.LoserVerifier, ReasonOp}, nil
	case verifierOK:
		return Verdict{dispute.LoserSolver, ReasonOp}, nil
	}
	return Verdict{dispute.LoserBoth, ReasonOp}, nil
}
