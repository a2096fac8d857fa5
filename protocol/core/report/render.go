package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Render writes r for people: what was trained, by whom, what was
// checked and how each check came out, who was slashed, where the money
// went, and who signed it. It shows; it does not verify (Verify does).
func (r *Report) Render(w io.Writer) error {
	p := &printer{w: w}
	p.f("Audit report of job %s\n", r.JobID)
	p.f("  outcome          %s", r.Outcome.State)
	if r.Outcome.Verdict != "" {
		p.f(" (audit %s, confidence %s)", r.Outcome.Verdict, ppm(r.Outcome.ConfidencePPM))
	}
	if r.Outcome.Reason != "" {
		p.f(": %s", r.Outcome.Reason)
	}
	p.f("\n")
	if r.Spec != nil {
		p.f("  spec             %q, %d steps, batch %d, digest every %d steps\n", r.Spec.Name, r.Spec.Steps, r.Spec.BatchSize, r.Spec.DigestInterval)
	}
	p.f("  client           %s\n", r.Client)
	p.f("  confidential     %v\n", r.Confidential)
	p.f("  dataset          %s, train root %s", r.Dataset.Source, r.Dataset.TrainRoot)
	if r.Dataset.TestRoot != "" {
		p.f(", test root %s", r.Dataset.TestRoot)
	}
	p.f("\n")
	for _, s := range r.Solvers {
		p.f("  solver           %s (party %s, %d steps)\n", s.PeerID, s.Party, s.Steps)
	}
	if t := r.Trace; t != nil {
		p.f("  trace root       %s (%d entries)\n", t.Root, t.Entries)
		p.f("  final digest     %s (proof of %d hashes)\n", t.FinalDigest, len(t.FinalProof))
		if t.ZKRoot != "" {
			p.f("  zk trace root    %s\n", t.ZKRoot)
		}
	} else {
		p.f("  trace            none committed\n")
	}
	if b := r.Beacon; b != nil {
		p.f("  beacon           %s\n                   %s, at %s\n", b.Value, b.Source, stamp(b.DrawnAt))
	}
	p.f("  policy           catch cheating on %s of steps with %s: %d samples\n", ppm(r.Policy.CheatFractionPPM), ppm(r.Policy.ConfidencePPM), r.Policy.RequiredSamples)
	for i, a := range r.Audits {
		f := &a.Signed.Findings
		p.f("\nAudit %d by verifier %s (party %s), reported %s\n", i+1, a.Verifier.PeerID, a.Verifier.Party, stamp(a.ReportedAt))
		p.f("  verdict          %s: %d steps checked, confidence %s, %s of the run replayed\n", f.Verdict, f.StepsChecked, ppm(f.ConfidencePPM), ppm(f.ReplayedPPM))
		if f.FirstBadStep != nil {
			p.f("  first bad step   %d: %s\n", *f.FirstBadStep, f.Reason)
		}
		p.f("  signed by        %s\n", a.Signed.Signature.PeerID)
		for _, s := range f.Segments {
			p.f("    segment %-8d steps %d..%d  %s\n", s.Segment, s.FromStep, s.ToStep, s.Outcome)
		}
		for _, t := range f.Tiles {
			p.f("    step %-8d layer %d tile (%d, %d)  %s\n", t.Step, t.Layer, t.Row, t.Col, t.Outcome)
		}
	}
	if len(r.Disputes) > 0 {
		p.f("\nDisputes\n")
		for _, d := range r.Disputes {
			p.f("  %s accused %s at step %d: the %s lost (%s)\n", d.Verifier, d.Solver, d.FirstBadStep, d.Loser, d.Why)
		}
	}
	if len(r.Slashes) > 0 {
		p.f("\nSlashed\n")
		for _, s := range r.Slashes {
			p.f("  %s %s  %s\n", s.Role, s.PeerID, usd(s.AmountMicroUSD))
		}
	}
	p.f("\nLedger (%d movements)\n", len(r.Ledger))
	for _, m := range r.Ledger {
		p.f("  %s  %-28s %-12s %14s  %s -> %s\n", stamp(m.At), m.Code, m.Kind, usd(m.AmountMicroUSD), m.Debit, m.Credit)
	}
	t := r.Times
	p.f("\nPosted %s", stamp(t.PostedAt))
	if t.CommittedAt != nil {
		p.f(", committed %s", stamp(*t.CommittedAt))
	}
	p.f(", ended %s, issued %s\n", stamp(t.EndedAt), stamp(t.IssuedAt))
	if s := r.Signature; s != nil {
		p.f("Signed by coordinator %s\n", s.PeerID)
	} else {
		p.f("Not signed\n")
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

func ppm(v int64) string { return fmt.Sprintf("%d.%04d%%", v/10_000, v%10_000) }

func usd(micro int64) string {
	sign := ""
	if micro < 0 {
		sign, micro = "-", -micro
	}
	return fmt.Sprintf("%s$%d.%06d", sign, micro/1_000_000, micro%1_000_000)
}

func stamp(t time.Time) string { return strings.TrimSuffix(t.UTC().Format(time.RFC3339), "Z") + "Z" }
