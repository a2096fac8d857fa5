package service

import (
	"context"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/report"
)

// TestJobMovementsAndStatementsNameTheJob: a settled job's movements are
// its escrow account's transfers, named by account, in journal order,
// leaving the escrow empty; and every statement line of a job transfer
// carries the job's ID.
func TestJobMovementsAndStatementsNameTheJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newMemService(t)
	j := auditWindow(t, s, 21)
	id := mustJobID(j.ID)
	enrol(t, s, "ver1", 100_000_000)
	must(s.AssignAudit(ctx, id, "ver1"))
	must(s.Settle(ctx, j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 1}}))
	ms := must(s.JobMovements(ctx, id))
	esc := report.EscrowAccount(j.ID)
	var net int64
	seen := map[string]bool{}
	for i, m := range ms {
		if i > 0 && m.Seq <= ms[i-1].Seq {
			t.Fatalf("movements out of order: %+v", ms)
		}
		seen[m.Debit], seen[m.Credit] = true, true
		if m.Kind == report.Posted || m.Kind == report.PostPending {
			if m.Credit == esc {
				net += m.AmountMicroUSD
			} else {
				net -= m.AmountMicroUSD
			}
		}
	}
	for _, want := range []string{esc, "client:acme", "solver_bond:gpu1", "solver_earnings:gpu1", "verifier_bond:ver1", "verifier_earnings:ver1", "platform_fees"} {
		if !seen[want] {
			t.Errorf("no movement of %s in %+v", want, ms)
		}
	}
	if net != 0 {
		t.Errorf("escrow left with %d", net)
	}
	st := must(s.Statement(ctx, AccountRef{KindSolverEarnings, "gpu1"}, ""))
	if len(st.Lines) == 0 {
		t.Fatal("no statement lines")
	}
	for _, l := range st.Lines {
		if l.JobID != j.ID {
			t.Errorf("statement line %s names job %q, want %s", l.Code, l.JobID, j.ID)
		}
	}
	for _, l := range must(s.Statement(ctx, AccountRef{KindClientFunds, "acme"}, "")).Lines {
		if (l.Code == "deposit") != (l.JobID == "") {
			t.Errorf("client statement line %s names job %q", l.Code, l.JobID)
		}
	}
	if _, err := s.Report(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a report before one was stored: %v", err)
	}
	noErr(t, s.SetReport(ctx, id, []byte(`{"version":1}`)))
	if b := must(s.Report(ctx, id)); string(b) != `{"version":1}` {
		t.Fatalf("stored report %s", b)
	}
}
