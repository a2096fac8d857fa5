package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/spec"
)

// AuditAssignment is one verifier's audit of a job: the bond it locked
// into the job's escrow for it. At most one assignment of a job is
// unreleased at a time (the current auditor's); settlement, a ruling and
// expiry release or post it.
type AuditAssignment struct {
	VerifierID    string `json:"verifier_id"`
	BondMicroUSD  int64  `json:"bond_micro_usd"`
	BondPendingID string `json:"bond_pending_id"`
	Released      bool   `json:"released,omitempty"`
}

// VerifierBond is the bond a verifier locks to audit job j: the larger of
// the policy's VerifierBondMicroUSD and the audit plan's deterrent bond
// (plan.Bond) for a gain of the job's maximum cost at the spec's
// confidence. A verifier that passes a cheat lets the client pay for a
// wrong result, so it must stand to lose at least what a cheating solver
// stands to gain.
func (s *Service) VerifierBond(j *Job) (int64, error) {
	sp, err := spec.Decode(j.Spec)
	if err != nil {
		return 0, fmt.Errorf("%w: job %s spec: %w", ErrInvalid, j.ID, err)
	}
	b, err := plan.Bond(j.MaxCostMicroUSD, sp.Audit.ConfidencePPM)
	if err != nil {
		return 0, fmt.Errorf("%w: verifier bond of job %s: %w", ErrInvalid, j.ID, err)
	}
	return max(b, s.cfg.policy.VerifierBondMicroUSD), nil
}

// Enrolled reports whether party holds a usable API key (not revoked, not
// expired) of the verifier role: the operator enrols a verifier by issuing
// it one (POST /v1/keys) for its party ID.
func (s *Service) Enrolled(ctx context.Context, party string) (bool, error) {
	if err := CheckPartyID(party); err != nil {
		return false, err
	}
	now := s.cfg.now()
	found := false
	err := s.store.scan("apikey/", func(key string, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var rec auth.Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", strings.TrimPrefix(key, "apikey/"), err)
		}
		if rec.Role == auth.RoleVerifier && rec.Subject == party && rec.RevokedAt.IsZero() &&
			(rec.ExpiresAt.IsZero() || now.Before(rec.ExpiresAt)) {
			found = true
		}
		return nil
	})
	return found, err
}

// AssignAudit gives the audit of job id (in its audit window) to
// verifierID: the verifier must be enrolled (Enrolled), and its bond
// (VerifierBond) is reserved into the job's escrow, where it stays until
// the job settles, a dispute it raises is ruled, the audit is given to
// another verifier (which releases it), or the job expires. A verifier
// whose bond account cannot cover it gets ErrInsufficientFunds and
// nothing changes.
func (s *Service) AssignAudit(ctx context.Context, id spec.JobID, verifierID string) (*Job, error) {
	ok, err := s.Enrolled(ctx, verifierID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q is not an enrolled verifier", ErrInvalid, verifierID)
	}
	return s.update(ctx, id.String(), lifecycle.EventAssignAudit, func(j, n *Job) ([]ledger.Transfer, error) {
		bond, err := s.VerifierBond(j)
		if err != nil {
			return nil, err
		}
		vb := AccountRef{KindVerifierBond, verifierID}
		// Check the bond first so that a refused verifier creates no
		// account (the ledger re-checks atomically).
		va, err := s.led.Account(ctx, vb.ID())
		if errors.Is(err, ledger.ErrAccountNotFound) || err == nil && va.AvailableMicroUSD() < bond {
			return nil, fmt.Errorf("%w: verifier %s cannot lock a bond of %d micro-dollars", ErrInsufficientFunds, verifierID, bond)
		} else if err != nil {
			return nil, fmt.Errorf("verifier bond: %w", ledgerError(err))
		}
		if err := s.ensureAccounts(ctx, vb, AccountRef{KindVerifierEarnings, verifierID}); err != nil {
			return nil, err
		}
		ts := s.releaseAuditors(j, n, "")
		t := s.jobTransfer(j.ID, n.Seq, lifecycle.LockVerifierBond, verifierID, vb, AccountRef{KindEscrow, j.ID}, bond)
		t.Flags = ledger.Pending
		n.Auditors = append(n.Auditors, AuditAssignment{VerifierID: verifierID, BondMicroUSD: bond, BondPendingID: t.ID.String()})
		return append(ts, t), nil
	})
}

// auditor returns the index of j's current auditor (the unreleased
// assignment) if it is verifierID, or -1.
func auditor(j *Job, verifierID string) int {
	for i, a := range j.Auditors {
		if !a.Released && a.VerifierID == verifierID {
			return i
		}
	}
	return -1
}

// releaseAuditors voids every unreleased audit bond of j but the one
// reserved by the pending transfer skip ("": none), marking them released
// in n.
func (s *Service) releaseAuditors(j, n *Job, skip string) []ledger.Transfer {
	var ts []ledger.Transfer
	for i, a := range j.Auditors {
		if a.Released || a.BondPendingID == skip {
			continue
		}
		t := s.jobTransfer(j.ID, n.Seq, lifecycle.ReleaseVerifierBond, fmt.Sprint("audit/", i, "/", a.VerifierID), AccountRef{KindVerifierBond, a.VerifierID}, AccountRef{KindEscrow, j.ID}, a.BondMicroUSD)
		t.Flags, t.PendingID = ledger.VoidPending, mustTID(a.BondPendingID)
		ts = append(ts, t)
		n.Auditors[i].Released = true
	}
	return ts
}

// markAuditorReleased marks the assignment whose bond the pending
// transfer pendingID reserved as released in n (its bond was posted or
// voided by the caller's chain).
func markAuditorReleased(n *Job, pendingID string) {
	for i, a := range n.Auditors {
		if a.BondPendingID == pendingID {
			n.Auditors[i].Released = true
		}
	}
}

// Expire ends job id, which outlived its deadline, from whatever state it
// is in: the escrow goes back to the client and every bond still reserved
// for it (solvers', auditors', a disputing verifier's) is released, in one
// linked chain. Nobody is paid: the job produced no audited result.
func (s *Service) Expire(ctx context.Context, id spec.JobID) (*Job, error) {
	return s.update(ctx, id.String(), lifecycle.EventExpire, func(j, n *Job) ([]ledger.Transfer, error) {
		ev := s.jobTransfer(j.ID, n.Seq, lifecycle.RefundClientEscrow, j.ClientID, AccountRef{KindClientFunds, j.ClientID}, AccountRef{KindEscrow, j.ID}, j.EscrowMicroUSD)
		ev.Flags, ev.PendingID = ledger.VoidPending, mustTID(j.EscrowPendingID)
		ts := append([]ledger.Transfer{ev}, s.releaseBonds(j, n, -1)...)
		return append(ts, s.releaseAuditors(j, n, "")...), nil
	})
}

// ResumeAudit reopens the audit window of a job whose false-accusation
// ruling was recorded (SlashVerifier does both in turn; this completes
// the second after a crash between them).
func (s *Service) ResumeAudit(ctx context.Context, id spec.JobID) (*Job, error) {
	return s.update(ctx, id.String(), lifecycle.EventResumeAudit, func(j, n *Job) ([]ledger.Transfer, error) { return nil, nil })
}
