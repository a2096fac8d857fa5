package dispute

import (
	"context"
	"fmt"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
	"github.com/beluga-compute/beluga/spec/ref"
)

// Cost is what the referee spent on one dispute.
type Cost struct {
	Rounds int // step-bisection rounds: ⌈log2(End-Start)⌉ at most
	// OpsRun counts operators recomputed: at most 1.
	OpsRun int
	// OpWork is the work (multiply-accumulates) of the operator
	// recomputed; StepWork that of the whole step, for comparison.
	OpWork, StepWork int64
	// HashedBytes counts the tensor bytes hashed to check openings and the
	// recomputed outputs.
	HashedBytes int64
	// SamplesChecked counts batch samples (a GPT's windows) verified
	// against the data root.
	SamplesChecked int
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

// Referee plays disputes of one job. It holds no state between disputes
// and trusts nothing but the spec and hashes.
type Referee struct {
	spec *spec.Spec
	// runOp recomputes an operator; tests count its calls.
	runOp opRunner
}

// opRunner recomputes operator op of step t on a graph.
type opRunner func(g opgraph.Graph, t int64, op int, in map[string]ref.Tensor) (map[string]ref.Tensor, error)

func runOp(g opgraph.Graph, t int64, op int, in map[string]ref.Tensor) (map[string]ref.Tensor, error) {
	return g.RunOp(op, in, t)
}

// NewReferee returns the referee of job s: an MLP's disputes are played
// over spec/ref's operator graph, a GPT's (s.IsGPT) over spec/gptref's.
func NewReferee(s *spec.Spec) (*Referee, error) {
	if _, err := newJudge(s, nil); err != nil {
		return nil, err
	}
	return &Referee{spec: s, runOp: runOp}, nil
}

// Play decides the dispute over seg between solver and verifier:
//
//  1. step bisection: both report their digest after m steps, m halving
//     (Start, End) until the agreed step t and the disputed t+1 remain;
//  2. both commit to their operator trace of step t (Claim); a claim that
//     does not rebuild the agreed digest after t steps and the party's
//     own digest after t+1 loses;
//  3. otherwise the first disputed point is the batch (settled by its
//     samples' or windows' proofs against the spec's data root) or the
//     first operator whose outputs differ: its inputs all agree, one
//     party opens them, the referee checks them against the agreed
//     hashes, recomputes that operator once and compares with both
//     claims.
//
// A party that does not answer, or opens values that do not match, loses
// by forfeit (when both parties fail to open agreed values, both do).
// Errors are the referee's own: a segment that is no dispute, a cancelled
// context.
func (r *Referee) Play(ctx context.Context, seg Segment, solver, verifier Party) (*Result, error) {
	res := &Result{}
	j, err := newJudge(r.spec, &res.Cost)
	if err != nil {
		return nil, err
	}
	j.runOp = r.runOp
	if err := j.checkSegment(seg); err != nil {
		return nil, err
	}
	ev := &Evidence{Job: j.job, Segment: seg, Op: NoOp}
	forfeit := func(what string, errS, errV error) (*Result, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case errS != nil && errV != nil:
			res.Verdict = Verdict{LoserBoth, ReasonForfeit}
			res.Forfeit = fmt.Sprintf("%s: solver: %v; verifier: %v", what, errS, errV)
		case errS != nil:
			res.Verdict = Verdict{LoserSolver, ReasonForfeit}
			res.Forfeit = fmt.Sprintf("%s: solver: %v", what, errS)
		default:
			res.Verdict = Verdict{LoserVerifier, ReasonForfeit}
			res.Forfeit = fmt.Sprintf("%s: verifier: %v", what, errV)
		}
		return res, nil
	}

	// 1. Step bisection.
	lo, hi := seg.Start, seg.End
	for hi-lo > 1 {
		m := bisect(lo, hi)
		ds, errS := solver.DigestAt(ctx, m)
		dv, errV := verifier.DigestAt(ctx, m)
		if errS != nil || errV != nil {
			return forfeit(fmt.Sprintf("digest after %d steps", m), errS, errV)
		}
		ev.Rounds = append(ev.Rounds, Round{Step: m, Solver: ds, Verifier: dv})
		res.Cost.Rounds++
		if ds == dv {
			lo = m
		} else {
			hi = m
		}
	}
	t, agreed, sNext, vNext, err := j.endpoints(seg, ev.Rounds)
	if err != nil {
		return nil, err
	}
	ev.Step = t

	// 2. Operator traces of step t.
	sc, errS := solver.Claim(ctx, t)
	vc, errV := verifier.Claim(ctx, t)
	if errS != nil || errV != nil {
		return forfeit(fmt.Sprintf("claim of step %d", t), errS, errV)
	}
	// Copies: the evidence must not change if a party reuses its slices.
	sc, vc = Claim{Hashes: append([]merkle.Digest(nil), sc.Hashes...)}, Claim{Hashes: append([]merkle.Digest(nil), vc.Hashes...)}
	ev.Solver, ev.Verifier = sc, vc
	v, pt, err := j.examine(t, agreed, sNext, vNext, sc, vc)
	if err != nil {
		return nil, err
	}
	if v != nil {
		return r.finish(res, ev, *v), nil
	}

	// 3. The disputed point. Its inputs are agreed, so either party can
	// open them; the solver is asked first, the verifier if the solver's
	// opening fails.
	parties := []Party{solver, verifier}
	var failures [2]error
	if pt.batch {
		for i, p := range parties {
			o, err := p.OpenBatch(ctx, t)
			if err == nil {
				var bv Verdict
				if bv, err = j.settleBatch(t, o, sc, vc); err == nil {
					ev.Batch = o
					return r.finish(res, ev, bv), nil
				}
			}
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			failures[i] = err
		}
		return forfeit(fmt.Sprintf("batch of step %d", t), failures[0], failures[1])
	}
	for i, p := range parties {
		opened, in, err := r.open(ctx, j, p, t, pt.op, sc)
		if err == nil {
			ev.Op, ev.Inputs = pt.op, opened
			ov, err := j.recompute(t, pt.op, in, sc, vc)
			if err != nil {
				return nil, err
			}
			return r.finish(res, ev, ov), nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		failures[i] = err
	}
	return forfeit(fmt.Sprintf("inputs of %s at step %d", j.l.ops[pt.op].Name, t), failures[0], failures[1])
}

func (r *Referee) finish(res *Result, ev *Evidence, v Verdict) *Result {
	ev.Verdict = v
	res.Verdict, res.Evidence = v, ev
	return res
}

// open asks p for operator op's inputs and checks them against the agreed
// hashes in c.
func (r *Referee) open(ctx context.Context, j *judge, p Party, t int64, op int, c Claim) ([]NamedTensor, map[string]ref.Tensor, error) {
	names := j.l.ops[op].Inputs
	opened := make([]NamedTensor, len(names))
	for k, name := range names {
		v, err := p.Open(ctx, t, name)
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", name, err)
		}
		opened[k] = NamedTensor{Name: name, Tensor: v.Clone()}
	}
	in, err := j.verifyInputs(op, opened, c)
	if err != nil {
		return nil, nil, err
	}
	return opened, in, nil
}
