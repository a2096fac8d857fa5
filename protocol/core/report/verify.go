package report

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"

	"github.com/beluga-compute/beluga/protocol/core/challenge"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Verify checks a report file offline: its form (Decode), the
// coordinator's signature over the canonical encoding of everything but
// the signature (by pin, if pin is not nil; else by the key the report
// names), every verifier's signature over its findings, and the report's
// consistency (Check). It returns the report and the coordinator's key.
func Verify(b []byte, pin ed25519.PublicKey) (*Report, ed25519.PublicKey, error) {
	r, err := Decode(b)
	if err != nil {
		return nil, nil, err
	}
	if r.Signature == nil {
		return nil, nil, fmt.Errorf("%w: the report is not signed", ErrBadSignature)
	}
	c, err := Canonical(b, "signature")
	if err != nil {
		return nil, nil, err
	}
	key, err := r.Signature.verify(ReportDomain, c)
	if err != nil {
		return nil, nil, fmt.Errorf("coordinator's signature: %w", err)
	}
	if pin != nil && !bytes.Equal(pin, key) {
		return nil, nil, fmt.Errorf("%w: signed by %s, not by the pinned coordinator %s", ErrBadSignature, r.Signature.PeerID, PeerID(pin))
	}
	if err := r.Check(); err != nil {
		return nil, nil, err
	}
	return r, key, nil
}

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInconsistent}, a...)...)
}

// hex32 parses 64 lower-case hex digits.
func hex32(s, what string) ([32]byte, error) {
	var d [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != s {
		return d, fmt.Errorf("%w: %s %q is not 64 lower-case hex digits", ErrMalformed, what, s)
	}
	copy(d[:], b)
	return d, nil
}

// beaconBytes parses a beacon: 1 to 256 bytes in lower-case hex.
func beaconBytes(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: beacon is not lower-case hex", ErrMalformed)
	}
	if err := challenge.CheckBeacon(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// CheckForm checks what findings must be on their own: hex fields, a
// known method and verdict, outcomes that match the verdict (samples that
// match, then on a fail one mismatch and the rest skipped), StepsChecked
// and FirstBadStep as the samples say. It does not check the samples
// against the challenge rules (CheckAgainst does).
func (f *Findings) CheckForm() error {
	if _, err := hex32(f.JobID, "job ID"); err != nil {
		return err
	}
	if _, err := hex32(f.TraceRoot, "trace root"); err != nil {
		return err
	}
	if _, err := beaconBytes(f.Beacon); err != nil {
		return err
	}
	if f.Solver != "" {
		if _, err := KeyOfPeerID(f.Solver); err != nil {
			return err
		}
	}
	if f.Verdict != Pass && f.Verdict != Fail {
		return fmt.Errorf("%w: verdict %q", ErrMalformed, f.Verdict)
	}
	if f.Population < 1 || f.ConfidencePPM < 0 || f.ConfidencePPM > plan.PPM || f.ReplayedPPM < 0 || f.ReplayedPPM > plan.PPM {
		return fmt.Errorf("%w: population %d, confidence %d ppm, replayed %d ppm", ErrMalformed, f.Population, f.ConfidencePPM, f.ReplayedPPM)
	}
	type sample struct {
		from, to int64
		outcome  string
	}
	var ss []sample
	switch f.Method {
	case MethodReplay:
		if len(f.Tiles) > 0 || f.ZKTraceRoot != "" || len(f.Segments) == 0 || int64(len(f.Segments)) > f.Population {
			return fmt.Errorf("%w: a replay audit lists %d segments of %d and %d tiles", ErrMalformed, len(f.Segments), f.Population, len(f.Tiles))
		}
		for i, s := range f.Segments {
			if s.Segment < 0 || s.Segment >= f.Population || (i > 0 && s.Segment <= f.Segments[i-1].Segment) || s.FromStep < 0 || s.ToStep <= s.FromStep {
				return fmt.Errorf("%w: segment %d (steps %d..%d) out of order or range", ErrMalformed, s.Segment, s.FromStep, s.ToStep)
			}
			ss = append(ss, sample{s.FromStep, s.ToStep, s.Outcome})
		}
	case MethodZK:
		if len(f.Segments) > 0 || len(f.Tiles) == 0 || int64(len(f.Tiles)) > f.Population {
			return fmt.Errorf("%w: a zk audit lists %d tiles of %d steps and %d segments", ErrMalformed, len(f.Tiles), f.Population, len(f.Segments))
		}
		if _, err := hex32(f.ZKTraceRoot, "zk trace root"); err != nil {
			return err
		}
		for _, t := range f.Tiles {
			if t.Step < 0 || t.Step >= f.Population || t.Layer < 0 || t.Row < 0 || t.Col < 0 {
				return fmt.Errorf("%w: tile (%d, %d, %d) at step %d", ErrMalformed, t.Layer, t.Row, t.Col, t.Step)
			}
			if t.ProofSHA256 != "" {
				if _, err := hex32(t.ProofSHA256, "proof hash"); err != nil {
					return err
				}
			}
			ss = append(ss, sample{t.Step, t.Step + 1, t.Outcome})
		}
	default:
		return fmt.Errorf("%w: method %q", ErrMalformed, f.Method)
	}
	var checked int64
	var firstBad *int64
	for i, s := range ss {
		switch {
		case s.outcome == Match && firstBad == nil:
			checked += s.to - s.from
		case s.outcome == Mismatch && firstBad == nil:
			from := s.from
			firstBad = &from
		case s.outcome == Skipped && firstBad != nil:
		default:
			return fmt.Errorf("%w: sample %d is %q after %d checked", ErrMalformed, i, s.outcome, i)
		}
	}
	if f.Method == MethodZK {
		checked = 0
		for _, s := range ss {
			if s.outcome == Match {
				checked++
			}
		}
	}
	switch {
	case (firstBad == nil) != (f.Verdict == Pass):
		return fmt.Errorf("%w: verdict %s, but the samples say otherwise", ErrMalformed, f.Verdict)
	case checked != f.StepsChecked:
		return fmt.Errorf("%w: %d steps checked, the samples say %d", ErrMalformed, f.StepsChecked, checked)
	case (firstBad == nil) != (f.FirstBadStep == nil) || (firstBad != nil && *firstBad != *f.FirstBadStep):
		return fmt.Errorf("%w: first bad step does not match the samples", ErrMalformed)
	}
	return nil
}

// CheckAgainst checks that f audits the run (s, traceRoot, zkRoot) with
// beacon, with the samples the protocol draws: the segments of §15 (or
// tiles of §17.3) for seed(job, root, beacon), as many as the policy
// requires when required > 0.
func (f *Findings) CheckAgainst(s *spec.Spec, traceRoot, zkRoot [32]byte, beacon []byte, required int64) error {
	if err := f.CheckForm(); err != nil {
		return err
	}
	job, err := s.ID()
	if err != nil {
		return err
	}
	root, _ := hex32(f.TraceRoot, "trace root")
	fb, _ := beaconBytes(f.Beacon)
	switch {
	case f.JobID != job.String():
		return bad("findings of job %s, not %s", f.JobID, job)
	case root != traceRoot:
		return bad("findings of trace root %s, not the committed one", f.TraceRoot)
	case !bytes.Equal(fb, beacon):
		return bad("findings with beacon %s, not the job's", f.Beacon)
	}
	n := int64(len(f.Segments) + len(f.Tiles))
	if required > 0 && n != required {
		return bad("%d samples checked, the policy requires %d", n, required)
	}
	if s.Audit.Confidential {
		if f.Method != MethodZK {
			return bad("a confidential job audited by %s", f.Method)
		}
		if z, _ := hex32(f.ZKTraceRoot, "zk trace root"); z != zkRoot {
			return bad("findings of zk trace root %s, not the committed one", f.ZKTraceRoot)
		}
		if f.Population != s.Steps {
			return bad("zk population %d, the job has %d steps", f.Population, s.Steps)
		}
		chs, err := zkchallenge.Challenges(s, traceRoot, zkRoot, beacon, int(n))
		if err != nil {
			return bad("challenges: %v", err)
		}
		for i, c := range chs {
			t := f.Tiles[i]
			if t.Step != c.Step || t.Layer != int64(c.Layer) || t.Row != int64(c.Row) || t.Col != int64(c.Col) {
				return bad("tile %d is (%d, %d, %d) at step %d; the beacon draws %v", i, t.Layer, t.Row, t.Col, t.Step, c)
			}
		}
		return nil
	}
	if f.Method != MethodReplay {
		return bad("a public job audited by %s", f.Method)
	}
	if N := s.Digests() - 1; f.Population != N {
		return bad("%d segments, the job's trace has %d", f.Population, N)
	}
	picked, err := challenge.Sample(challenge.Seed(job, merkle.Digest(traceRoot), beacon), int(f.Population), int(n))
	if err != nil {
		return bad("sampling: %v", err)
	}
	for i, p := range picked {
		sc := f.Segments[i]
		from, _ := trace.StepAt(s, int64(p))
		to, _ := trace.StepAt(s, int64(p)+1)
		if sc.Segment != int64(p) || sc.FromStep != from || sc.ToStep != to {
			return bad("sample %d is segment %d (steps %d..%d); the beacon draws segment %d (steps %d..%d)", i, sc.Segment, sc.FromStep, sc.ToStep, p, from, to)
		}
	}
	return nil
}

// RequiredSamples is the number of samples the policy of s requires: for
// a public job the least count of §15 (at most the trace's segments), for
// a confidential one the tile count of §17.3.
func RequiredSamples(s *spec.Spec) (int64, error) {
	if s.Audit.Confidential {
		n, err := zkchallenge.Count(s)
		return int64(n), err
	}
	n, err := plan.SampleCount(s.Steps, s.DigestInterval, s.Audit.CheatFractionPPM, s.Audit.ConfidencePPM, plan.Clustered)
	if err != nil {
		return 0, err
	}
	return min(n, s.Digests()-1), nil
}

// Check checks r's consistency with itself and the protocol's rules
// (everything Verify checks besides the coordinator's signature).
func (r *Report) Check() error {
	s := r.Spec
	if s == nil {
		return fmt.Errorf("%w: no spec", ErrMalformed)
	}
	if err := s.Validate(); err != nil {
		return bad("spec: %v", err)
	}
	job, err := s.ID()
	if err != nil {
		return bad("spec: %v", err)
	}
	if r.JobID != job.String() {
		return bad("job ID %s, but the spec's ID is %s", r.JobID, job)
	}
	if r.Confidential != s.Audit.Confidential {
		return bad("confidential %v, the spec says %v", r.Confidential, s.Audit.Confidential)
	}
	test := ""
	if s.Data.Test != nil {
		test = s.Data.Test.Root
	}
	if r.Dataset != (Dataset{Source: s.Data.Source, TrainRoot: s.Data.Train.Root, TestRoot: test}) {
		return bad("dataset commitment differs from the spec's")
	}
	required, err := RequiredSamples(s)
	if err != nil {
		return bad("audit policy: %v", err)
	}
	if r.Policy != (Policy{CheatFractionPPM: s.Audit.CheatFractionPPM, ConfidencePPM: s.Audit.ConfidencePPM, RequiredSamples: required}) {
		return bad("policy %+v differs from the spec's (required samples %d)", r.Policy, required)
	}
	for _, p := range r.Solvers {
		if _, err := KeyOfPeerID(p.PeerID); err != nil {
			return err
		}
	}
	var root, zroot [32]byte
	if r.Trace != nil {
		if err := r.checkTrace(s); err != nil {
			return err
		}
		root, _ = hex32(r.Trace.Root, "trace root")
		if s.Audit.Confidential {
			zroot, _ = hex32(r.Trace.ZKRoot, "zk root")
		}
	}
	var beacon []byte
	if r.Beacon != nil {
		if r.Trace == nil {
			return bad("a beacon without a committed trace")
		}
		if beacon, err = beaconBytes(r.Beacon.Value); err != nil {
			return err
		}
	}
	if len(r.Audits) > 0 && r.Beacon == nil {
		return bad("audits without a beacon")
	}
	fails := map[string]*Findings{}
	for i := range r.Audits {
		a := &r.Audits[i]
		key, err := a.Signed.Verify()
		if err != nil {
			return fmt.Errorf("audit %d: verifier's signature: %w", i, err)
		}
		if a.Verifier.PeerID != PeerID(key) {
			return bad("audit %d is signed by %s, not by its verifier %s", i, PeerID(key), a.Verifier.PeerID)
		}
		if err := a.Signed.Findings.CheckAgainst(s, root, zroot, beacon, required); err != nil {
			return fmt.Errorf("audit %d by %s: %w", i, a.Verifier.PeerID, err)
		}
		if a.Signed.Findings.Verdict == Fail {
			fails[a.Verifier.PeerID] = &a.Signed.Findings
		}
	}
	for i, d := range r.Disputes {
		f := fails[d.Verifier]
		if f == nil || *f.FirstBadStep != d.FirstBadStep || f.Solver != d.Solver {
			return bad("dispute %d: no failing audit by %s of %s at step %d", i, d.Verifier, d.Solver, d.FirstBadStep)
		}
		if d.Loser != LoserSolver && d.Loser != LoserVerifier {
			return bad("dispute %d: loser %q", i, d.Loser)
		}
	}
	if err := r.checkLedger(); err != nil {
		return err
	}
	return r.checkOutcome()
}

func (r *Report) checkTrace(s *spec.Spec) error {
	t := r.Trace
	root, err := hex32(t.Root, "trace root")
	if err != nil {
		return err
	}
	if t.Steps != s.Steps || t.DigestInterval != s.DigestInterval || t.Entries != s.Digests() {
		return bad("trace of %d steps, interval %d, %d entries; the spec says %d, %d, %d", t.Steps, t.DigestInterval, t.Entries, s.Steps, s.DigestInterval, s.Digests())
	}
	final, err := hex32(t.FinalDigest, "final digest")
	if err != nil {
		return err
	}
	if len(t.FinalProof) > merkle.MaxDepth {
		return bad("final proof of %d siblings", len(t.FinalProof))
	}
	p := merkle.Proof{Index: uint64(t.Entries - 1), Count: uint64(t.Entries)}
	for _, h := range t.FinalProof {
		d, err := hex32(h, "proof sibling")
		if err != nil {
			return err
		}
		p.Siblings = append(p.Siblings, merkle.Digest(d))
	}
	if err := trace.Verify(merkle.Digest(root), trace.Entry{Step: s.Steps, Digest: merkle.Digest(final)}, p); err != nil {
		return bad("the final digest is not the trace's last entry: %v", err)
	}
	if s.Audit.Confidential {
		if _, err := hex32(t.ZKRoot, "zk root"); err != nil {
			return err
		}
	} else if t.ZKRoot != "" {
		return bad("a zk root for a public job")
	}
	return nil
}

// checkLedger: movements in journal order, positive amounts, and a job
// that has ended leaves nothing in its escrow account: what was posted
// into it was posted out of it.
func (r *Report) checkLedger() error {
	esc := EscrowAccount(r.JobID)
	var net int64
	for i, m := range r.Ledger {
		if m.AmountMicroUSD <= 0 || (i > 0 && m.Seq <= r.Ledger[i-1].Seq) || m.Debit == m.Credit {
			return bad("ledger line %d: amount %d, seq %d", i, m.AmountMicroUSD, m.Seq)
		}
		if m.Debit != esc && m.Credit != esc {
			return bad("ledger line %d moves %s → %s, not through the job's escrow", i, m.Debit, m.Credit)
		}
		var effect int64
		switch m.Kind {
		case Posted, PostPending:
			effect = m.AmountMicroUSD
		case Pending, VoidPending:
		default:
			return bad("ledger line %d: kind %q", i, m.Kind)
		}
		if m.Credit == esc {
			net += effect
		} else {
			net -= effect
		}
	}
	if net != 0 {
		return bad("the job's escrow account is left holding %d µUSD", net)
	}
	return nil
}

func (r *Report) checkOutcome() error {
	o := r.Outcome
	var last *Findings
	if n := len(r.Audits); n > 0 {
		last = &r.Audits[n-1].Signed.Findings
	}
	switch o.State {
	case StateSettled:
		if last == nil || last.Verdict != Pass || o.Verdict != Pass || o.ConfidencePPM != last.ConfidencePPM {
			return bad("settled without a passing audit as the last")
		}
	case StateAdjudicatedCheat:
		n := len(r.Disputes)
		if last == nil || last.Verdict != Fail || o.Verdict != Fail || n == 0 || r.Disputes[n-1].Loser != LoserSolver {
			return bad("adjudicated a cheat without a failed audit the referee upheld")
		}
	case StateExpired, StateCancelled:
		if o.Verdict != "" {
			return bad("%s with verdict %q", o.State, o.Verdict)
		}
	default:
		return bad("end state %q", o.State)
	}
	for i, d := range r.Disputes {
		who := d.Solver
		if d.Loser == LoserVerifier {
			who = d.Verifier
		}
		found := false
		for _, s := range r.Slashes {
			found = found || (s.PeerID == who && s.Role == d.Loser)
		}
		if !found {
			return bad("dispute %d: the loser %s was not slashed", i, who)
		}
	}
	t := r.Times
	if t.EndedAt.Before(t.PostedAt) || t.IssuedAt.Before(t.EndedAt) || (t.CommittedAt != nil && (t.CommittedAt.Before(t.PostedAt) || t.EndedAt.Before(*t.CommittedAt))) {
		return bad("times out of order")
	}
	return nil
}
