// Package audit is the verifier's replay audit: after a solver has
// committed its trace root, public randomness picks segments of the run;
// the verifier has the solver open the state at each segment's start,
// checks it against the committed digest, replays the segment with the
// spec's semantics and data, and compares the digest at its end.
//
// # Soundness
//
// The segments are drawn from a seed that hashes the trace root and a
// beacon the solver could not know when it committed (protocol/core/challenge),
// so the solver cannot place honest work where the samples will fall. A
// replay uses only the verifier's own copy of the data, checked against the
// spec's dataset commitment (an MLP's training set, a GPT's corpus: the
// replay refuses data that is not the spec's), and the spec's integer
// semantics (spec/model), which every
// conforming implementation computes bit for bit; any deviation the solver
// made inside a sampled segment therefore shows as a digest mismatch. A
// solver that cannot open a committed digest fails the segment too.
package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"

	"github.com/beluga-compute/beluga/protocol/core/challenge"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/model"
)

// Solver is what an audit needs from the solver: its committed trace and
// openings of committed states.
type Solver interface {
	Trace(ctx context.Context) (*trace.Trace, error)
	Open(ctx context.Context, step int64) (*spec.State, error)
}

var _ Solver = (*rundir.Run)(nil)

// Config is one audit.
type Config struct {
	Spec *spec.Spec
	// Data is the verifier's own copy of the job's data (an MLP's
	// training set, a GPT's corpus), checked against the spec's
	// commitment (model.LoadData; Run checks it again).
	Data *model.Data
	// Beacon is the public randomness published after the trace root.
	Beacon []byte
	// Samples is the number of segments to replay; 0 asks the planner for
	// the count that meets the spec's audit policy.
	Samples int
	// Model configures the replays (kernel, threads; the digests never
	// depend on them).
	Model []model.Option
	// Solver is the audited solver's peer ID, for the findings (empty
	// for a local run directory).
	Solver string
}

// Verdicts.
const (
	Pass = report.Pass
	Fail = report.Fail
)

// Run audits solver under cfg and returns its findings (the report
// package's one type, which a verifier signs and the coordinator's report
// embeds): the segments the beacon draws in order, each with its outcome;
// the audit stops at the first mismatch, and the segments after it are
// Skipped.
func Run(ctx context.Context, cfg Config, solver Solver) (*report.Findings, error) {
	s := cfg.Spec
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	if err := challenge.CheckBeacon(cfg.Beacon); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := model.CheckData(s, cfg.Data); err != nil {
		return nil, fmt.Errorf("audit: the verifier's data: %w", err)
	}
	tr, err := solver.Trace(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: trace: %w", err)
	}
	if tr.Job != job {
		return nil, fmt.Errorf("audit: trace is of job %s, not %s", tr.Job, job)
	}
	if err := tr.Check(s); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	root := tr.Root()
	segments := len(tr.Entries) - 1
	samples := cfg.Samples
	if samples <= 0 {
		n, err := plan.SampleCount(s.Steps, s.DigestInterval, s.Audit.CheatFractionPPM, s.Audit.ConfidencePPM, plan.Clustered)
		if err != nil {
			return nil, fmt.Errorf("audit: plan: %w", err)
		}
		samples = int(min(n, int64(segments)))
	}
	samples = min(samples, segments)
	seed := challenge.Seed(job, root, cfg.Beacon)
	picked, err := challenge.Sample(seed, segments, samples)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	rep := &report.Findings{
		Verdict: Pass, JobID: job.String(), Solver: cfg.Solver, TraceRoot: hex.EncodeToString(root[:]), Beacon: hex.EncodeToString(cfg.Beacon),
		Method: report.MethodReplay, Population: int64(segments),
	}
	var h commit.Hasher
	var replayed int64
	for _, seg := range picked {
		a, b := tr.Entries[seg], tr.Entries[seg+1]
		check := report.SegmentCheck{Segment: int64(seg), FromStep: a.Step, ToStep: b.Step, Outcome: report.Skipped}
		if rep.Verdict == Pass {
			reason, err := checkSegment(ctx, cfg, solver, &h, job, a, b)
			if err != nil {
				return nil, err
			}
			replayed += b.Step - a.Step
			check.Outcome = report.Match
			if reason != "" {
				first := a.Step
				rep.Verdict, rep.FirstBadStep, rep.Reason, check.Outcome = Fail, &first, reason, report.Mismatch
			} else {
				rep.StepsChecked += b.Step - a.Step
			}
		}
		rep.Segments = append(rep.Segments, check)
	}
	rep.ReplayedPPM = mulDiv(replayed, plan.PPM, s.Steps)
	rep.ConfidencePPM = int64(plan.Confidence(s.Steps, s.DigestInterval, int64(len(picked)), s.Audit.CheatFractionPPM, plan.Clustered) * plan.PPM)
	return rep, nil
}

// mulDiv is ⌊a·b/c⌋ without overflow (a ≤ c).
func mulDiv(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}

// checkSegment returns "" when the segment a→b replays to the committed
// digest, or why not. Errors are the verifier's own failures (I/O,
// cancellation), never the solver's.
func checkSegment(ctx context.Context, cfg Config, solver Solver, h *commit.Hasher, job spec.JobID, a, b trace.Entry) (string, error) {
	st, err := solver.Open(ctx, a.Step)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "", err
		}
		return fmt.Sprintf("solver could not open its commitment at step %d: %v", a.Step, err), nil
	}
	if st.Step != a.Step || h.StateDigest(job, st) != a.Digest {
		return fmt.Sprintf("the state opened at step %d does not match its committed digest", a.Step), nil
	}
	end, err := rundir.Replay(ctx, cfg.Spec, cfg.Data, st, b.Step, cfg.Model...)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "", err
	}
	if err != nil {
		// The data was checked before the first segment, and a state
		// an honest run reached always steps: the committed state is not
		// one of the job's (wrong tensors, values out of range).
		return fmt.Sprintf("the state committed at step %d does not replay: %v", a.Step, err), nil
	}
	if got := h.StateDigest(job, end); got != b.Digest {
		return fmt.Sprintf("replaying steps %d..%d gives digest %s, the solver committed %s",
			a.Step, b.Step-1, short(got), short(b.Digest)), nil
	}
	return "", nil
}

func short(d merkle.Digest) string { return hex.EncodeToString(d[:8]) }
