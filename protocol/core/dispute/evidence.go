package dispute

import (
	"fmt"

	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/ref"
)

// Segment is what a dispute starts from: steps [Start, End] of a job, the
// state digest after Start steps that both parties accept (the solver's
// committed one, which the verifier's opened state matched) and the two
// different digests the parties claim after End steps.
type Segment struct {
	Start, End  int64
	StartDigest merkle.Digest
	SolverEnd   merkle.Digest
	VerifierEnd merkle.Digest
	// Anchor, when present, ties StartDigest and SolverEnd to the solver's
	// published trace root (protocol/core/trace).
	Anchor *Anchor
}

// Anchor holds the inclusion proofs of the segment's ends in the solver's
// trace tree.
type Anchor struct {
	TraceRoot  merkle.Digest
	StartProof merkle.Proof
	EndProof   merkle.Proof
}

// Round is one bisection query: both parties' digests after Step steps.
type Round struct {
	Step     int64
	Solver   merkle.Digest
	Verifier merkle.Digest
}

// Loser says who lost a dispute.
type Loser uint8

// Losers.
const (
	LoserSolver Loser = iota + 1
	LoserVerifier
	// LoserBoth: both parties' claims are false (neither matches the
	// recomputation, or both are inconsistent, or both failed to answer).
	// At least one of them is the cheater the dispute is about; the other
	// lied too, so both bonds are forfeit.
	LoserBoth
)

func (l Loser) String() string {
	switch l {
	case LoserSolver:
		return "solver"
	case LoserVerifier:
		return "verifier"
	case LoserBoth:
		return "both"
	}
	return fmt.Sprintf("Loser(%d)", uint8(l))
}

// Reason says how a verdict was reached.
type Reason uint8

// Reasons.
const (
	// ReasonInconsistent: the loser's claim does not rebuild the agreed
	// digest before the step or its own digest after it (or is malformed).
	ReasonInconsistent Reason = iota + 1
	// ReasonBatch: the parties disagree on the step's batch; the samples
	// proven against the spec's data commitment decide.
	ReasonBatch
	// ReasonOp: one operator was recomputed from agreed inputs.
	ReasonOp
	// ReasonForfeit: the loser did not answer, or answered with openings
	// that do not match its own hashes. Not re-checkable: no Evidence.
	ReasonForfeit
)

func (r Reason) String() string {
	switch r {
	case ReasonInconsistent:
		return "inconsistent claim"
	case ReasonBatch:
		return "batch"
	case ReasonOp:
		return "operator recomputed"
	case ReasonForfeit:
		return "forfeit"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Verdict is the outcome of a dispute.
type Verdict struct {
	Loser  Loser
	Reason Reason
}

func (v Verdict) String() string { return fmt.Sprintf("%v loses (%v)", v.Loser, v.Reason) }

// NamedTensor is an opened tensor of the graph.
type NamedTensor struct {
	Name   string
	Tensor ref.Tensor
}

// Evidence is the self-contained record of a decided dispute: anyone with
// the spec re-checks it with Check, trusting neither party nor the referee.
type Evidence struct {
	Job     spec.JobID
	Segment Segment
	// Rounds is the step bisection, in order; it ends at Step.
	Rounds []Round
	// Step is t: both agree on the digest after t steps and disagree after
	// t+1; the claims are of step t.
	Step     int64
	Solver   Claim
	Verifier Claim
	// Op is the operator recomputed (Reason ReasonOp), else -1.
	Op int
	// Inputs are Op's inputs, in the order of its Inputs, as opened.
	Inputs []NamedTensor
	// Batch is the batch opening (Reason ReasonBatch).
	Batch   *BatchOpening
	Verdict Verdict
}

// NoOp is Evidence.Op when no operator was recomputed.
const NoOp = -1

// Check re-decides the dispute recorded in ev from the spec alone and
// returns the verdict; it fails with ErrBadEvidence when ev does not hold
// up or records another verdict. It costs what the referee paid: one
// operator (or one batch's proofs) and hashing.
func Check(s *spec.Spec, ev Evidence) (Verdict, error) {
	j, err := newJudge(s, nil)
	if err != nil {
		return Verdict{}, err
	}
	if ev.Job != j.job {
		return Verdict{}, fmt.Errorf("%w: evidence of job %s, the spec is job %s", ErrBadEvidence, ev.Job, j.job)
	}
	t, agreed, sEnd, vEnd, err := j.endpoints(ev.Segment, ev.Rounds)
	if err != nil {
		return Verdict{}, err
	}
	if ev.Step != t {
		return Verdict{}, fmt.Errorf("%w: the bisection ends at step %d, the evidence says %d", ErrBadEvidence, t, ev.Step)
	}
	v, pt, err := j.examine(t, agreed, sEnd, vEnd, ev.Solver, ev.Verifier)
	if err != nil {
		return Verdict{}, err
	}
	switch {
	case v != nil:
		if ev.Op != NoOp || len(ev.Inputs) != 0 || ev.Batch != nil {
			return Verdict{}, fmt.Errorf("%w: openings in a dispute decided by the claims alone", ErrBadEvidence)
		}
	case pt.batch:
		if ev.Op != NoOp || len(ev.Inputs) != 0 || ev.Batch == nil {
			return Verdict{}, fmt.Errorf("%w: the batch is disputed; the evidence must open it and nothing else", ErrBadEvidence)
		}
		bv, err := j.settleBatch(t, ev.Batch, ev.Solver, ev.Verifier)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrBadEvidence, err)
		}
		v = &bv
	default:
		if ev.Op != pt.op || ev.Batch != nil {
			return Verdict{}, fmt.Errorf("%w: operator %d is disputed, the evidence opens %d", ErrBadEvidence, pt.op, ev.Op)
		}
		in, err := j.verifyInputs(pt.op, ev.Inputs, ev.Solver)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrBadEvidence, err)
		}
		ov, err := j.recompute(t, pt.op, in, ev.Solver, ev.Verifier)
		if err != nil {
			return Verdict{}, err
		}
		v = &ov
	}
	if *v != ev.Verdict {
		return *v, fmt.Errorf("%w: the dispute decides %v, the evidence records %v", ErrBadEvidence, *v, ev.Verdict)
	}
	return *v, nil
}

// judge holds what deciding needs: the spec's graph, the job, the operator
// runner and the cost account. Both Play and Check decide with it.
type judge struct {
	s     *spec.Spec
	l     *layout
	job   spec.JobID
	runOp opRunner
	cost  *Cost
}

func newJudge(s *spec.Spec, cost *Cost) (*judge, error) {
	l, err := graphOf(s)
	if err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	if cost == nil {
		cost = &Cost{}
	}
	cost.StepWork = l.work
	return &judge{s: s, l: l, job: job, runOp: runOp, cost: cost}, nil
}

// checkSegment verifies that seg is a dispute inside the job, and its
// anchor if it has one.
func (j *judge) checkSegment(seg Segment) error {
	if seg.Start < 0 || seg.Start >= seg.End || seg.End > j.s.Steps {
		return fmt.Errorf("%w: segment [%d, %d] of a %d-step job", ErrNoDispute, seg.Start, seg.End, j.s.Steps)
	}
	if seg.SolverEnd == seg.VerifierEnd {
		return fmt.Errorf("%w: both claim the same digest after %d steps", ErrNoDispute, seg.End)
	}
	if a := seg.Anchor; a != nil {
		if err := trace.Verify(a.TraceRoot, trace.Entry{Step: seg.Start, Digest: seg.StartDigest}, a.StartProof); err != nil {
			return fmt.Errorf("%w: start digest not in the solver's trace: %w", ErrBadEvidence, err)
		}
		if err := trace.Verify(a.TraceRoot, trace.Entry{Step: seg.End, Digest: seg.SolverEnd}, a.EndProof); err != nil {
			return fmt.Errorf("%w: end digest not in the solver's trace: %w", ErrBadEvidence, err)
		}
	}
	return nil
}

// maxRounds bounds a bisection: ⌈log2(2^40)⌉ rounds for the longest job.
const maxRounds = 64

// endpoints replays the bisection recorded in rounds and returns where it
// ends: t, the agreed digest after t steps and both claims after t+1.
func (j *judge) endpoints(seg Segment, rounds []Round) (t int64, agreed, sNext, vNext merkle.Digest, err error) {
	if err := j.checkSegment(seg); err != nil {
		return 0, agreed, sNext, vNext, err
	}
	if len(rounds) > maxRounds {
		return 0, agreed, sNext, vNext, fmt.Errorf("%w: %d bisection rounds", ErrBadEvidence, len(rounds))
	}
	lo, hi := seg.Start, seg.End
	agreed, sNext, vNext = seg.StartDigest, seg.SolverEnd, seg.VerifierEnd
	for i, r := range rounds {
		if hi-lo <= 1 {
			return 0, agreed, sNext, vNext, fmt.Errorf("%w: round %d after the bisection ended", ErrBadEvidence, i)
		}
		if m := bisect(lo, hi); r.Step != m {
			return 0, agreed, sNext, vNext, fmt.Errorf("%w: round %d asks step %d, bisection asks %d", ErrBadEvidence, i, r.Step, m)
		}
		if r.Solver == r.Verifier {
			lo, agreed = r.Step, r.Solver
		} else {
			hi, sNext, vNext = r.Step, r.Solver, r.Verifier
		}
	}
	if hi-lo != 1 {
		return 0, agreed, sNext, vNext, fmt.Errorf("%w: the bisection stops at [%d, %d]", ErrBadEvidence, lo, hi)
	}
	return lo, agreed, sNext, vNext, nil
}

// bisect is the query of a round over (lo, hi).
func bisect(lo, hi int64) int64 { return lo + (hi-lo)/2 }

// point is where two consistent claims first part: the batch, or an
// operator whose inputs all agree.
type point struct {
	batch bool
	op    int
}

// examine decides from the claims alone when one of them is inconsistent
// (malformed, or not rebuilding the agreed digest before the step or its
// own digest after it); otherwise it locates the disputed point.
func (j *judge) examine(t int64, agreed, sNext, vNext merkle.Digest, sc, vc Claim) (*Verdict, point, error) {
	sOK, vOK := j.consistent(t, agreed, sNext, sc), j.consistent(t, agreed, vNext, vc)
	switch {
	case !sOK && !vOK:
		return &Verdict{LoserBoth, ReasonInconsistent}, point{}, nil
	case !sOK:
		return &Verdict{LoserSolver, ReasonInconsistent}, point{}, nil
	case !vOK:
		return &Verdict{LoserVerifier, ReasonInconsistent}, point{}, nil
	}
	g := j.l
	for i, info := range g.tensors {
		if info.Producer < 0 && sc.Hashes[i] != vc.Hashes[i] {
			if info.Kind == ref.BatchIn {
				return nil, point{batch: true}, nil
			}
			// Both rebuild the same state root from different leaves.
			return nil, point{}, fmt.Errorf("dispute: claims differ on %s yet rebuild the same digest: hash collision", info.Name)
		}
	}
	for k, o := range g.ops {
		for _, name := range o.Outputs {
			if i := g.index(name); sc.Hashes[i] != vc.Hashes[i] {
				// Every input is a source or an earlier output: all agree.
				return nil, point{op: k}, nil
			}
		}
	}
	return nil, point{}, fmt.Errorf("dispute: claims agree everywhere yet rebuild different digests: hash collision")
}

// consistent reports whether c is well formed and rebuilds the agreed
// digest after t steps and the party's own digest after t+1.
func (j *judge) consistent(t int64, agreed, next merkle.Digest, c Claim) bool {
	if checkClaimLen(j.l, c) != nil {
		return false
	}
	before, after := stateDigests(j.l, j.job, t, c)
	return before == agreed && after == next
}

// settleBatch decides a batch dispute from an opening of the batch: the
// claims' hashes of the graph's two batch sources against the verified
// opening's.
func (j *judge) settleBatch(t int64, o *BatchOpening, sc, vc Claim) (Verdict, error) {
	b0, b1, err := VerifyBatch(j.s, t, o)
	if err != nil {
		return Verdict{}, err
	}
	j.cost.SamplesChecked += len(o.Samples) + len(o.Windows)
	sOK, vOK := true, true
	for k, v := range [2]ref.Tensor{b0, b1} {
		i := j.l.batch[k]
		h, err := j.hash(i, v)
		if err != nil {
			return Verdict{}, err
		}
		sOK = sOK && sc.Hashes[i] == h
		vOK = vOK && vc.Hashes[i] == h
	}
	return decide(ReasonBatch, sOK, vOK)
}

// verifyInputs checks that opened are operator op's inputs, in order, each
// matching the agreed hash in c, and returns them keyed by name.
func (j *judge) verifyInputs(op int, opened []NamedTensor, c Claim) (map[string]ref.Tensor, error) {
	return CheckOpening(&j.l.ops[op], opened, c.Hashes, j.hashAt, ErrBadOpening)
}

// recompute runs operator op once on verified inputs and compares its
// outputs with both claims.
func (j *judge) recompute(t int64, op int, in map[string]ref.Tensor, sc, vc Claim) (Verdict, error) {
	o := &j.l.ops[op]
	j.cost.OpsRun++
	j.cost.OpWork += o.Work
	out, err := j.runOp(j.l.g, t, op, in)
	if err != nil {
		// The inputs are in range and match hashes both parties signed,
		// yet the operator refuses them: values no valid step produces
		// (a GPT product leaving int64). Both claims rest on a computation
		// that is not the spec's; an honest party, whose values a valid
		// step produced, never signs such inputs.
		return decide(ReasonOp, false, false)
	}
	sOK, vOK, err := MatchOutputs(o, out, sc.Hashes, vc.Hashes, j.hashAt)
	if err != nil {
		return Verdict{}, fmt.Errorf("dispute: recompute %s: %w", o.Name, err)
	}
	return decide(ReasonOp, sOK, vOK)
}

func (j *judge) hash(i int, v ref.Tensor) (merkle.Digest, error) {
	info := j.l.tensors[i]
	j.cost.HashedBytes += tensorBytes(info)
	return HashTensor(info, v)
}

// hashAt is a HashAt of the judge's graph.
func (j *judge) hashAt(name string, v ref.Tensor) (int, merkle.Digest, error) {
	i := j.l.index(name)
	h, err := j.hash(i, v)
	return i, h, err
}

// decide turns "whose claim matches the recomputation" into a verdict.
func decide(r Reason, solverOK, verifierOK bool) (Verdict, error) {
	switch {
	case solverOK && verifierOK:
		return Verdict{}, fmt.Errorf("dispute: both claims match the recomputation of a disputed value: hash collision")
	case solverOK:
		return Verdict{LoserVerifier, r}, nil
	case verifierOK:
		return Verdict{LoserSolver, r}, nil
	}
	return Verdict{LoserBoth, r}, nil
}
