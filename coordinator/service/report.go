package service

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/spec"
)

// MaxJobMovements bounds the ledger lines of one job (a job moves money a
// few dozen times).
const MaxJobMovements = 10_000

// JobMovements lists the ledger transfers of job id in journal order:
// every job transfer moves money into or out of the job's escrow account
// and carries the job ID, so they are that account's transfers. Accounts
// are named "kind:party" (AccountRef.String); ErrNotFound if the job has
// no escrow account.
func (s *Service) JobMovements(ctx context.Context, id spec.JobID) ([]report.Movement, error) {
	esc := AccountRef{Kind: KindEscrow, Party: id.String()}
	escID := esc.ID()
	if _, err := s.led.Account(ctx, escID); err != nil {
		return nil, fmt.Errorf("%w: escrow of job %s: %w", ErrNotFound, id, err)
	}
	names := map[ledger.AccountID]string{escID: esc.String()}
	name := func(aid ledger.AccountID) (string, error) {
		if n, ok := names[aid]; ok {
			return n, nil
		}
		a, err := s.led.Account(ctx, aid)
		if err != nil {
			return "", err
		}
		n := hex.EncodeToString(aid[:])
		for k, code := range kindCodes {
			if code != a.Code {
				continue
			}
			ref := AccountRef{Kind: k}
			if !k.platform() {
				ref.Party = partyOf(a)
			}
			if ref.ID() == aid {
				n = ref.String()
			}
		}
		names[aid] = n
		return n, nil
	}
	var out []report.Movement
	var after ledger.TransferID
	for {
		ts, err := s.led.AccountTransfers(ctx, escID, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if len(out) >= MaxJobMovements {
				return nil, fmt.Errorf("%w: job %s has more than %d ledger movements", ErrLedger, id, MaxJobMovements)
			}
			dr, err := name(t.DebitAccountID)
			if err != nil {
				return nil, err
			}
			cr, err := name(t.CreditAccountID)
			if err != nil {
				return nil, err
			}
			m := report.Movement{TransferID: t.ID.String(), Seq: int64(t.Seq), At: time.Unix(0, t.TimestampUnixNano).UTC(), Code: CodeName(t.Code),
				Kind: transferKind(t), Debit: dr, Credit: cr, AmountMicroUSD: t.AmountMicroUSD}
			if t.PendingID != (ledger.TransferID{}) {
				m.PendingID = t.PendingID.String()
			}
			out = append(out, m)
		}
		if len(ts) < 1000 {
			return out, nil
		}
		after = ts[len(ts)-1].ID
	}
}

// transferKind is how statements and reports name a transfer's flags.
func transferKind(t ledger.Transfer) string {
	switch {
	case t.Flags&ledger.Pending != 0:
		return report.Pending
	case t.Flags&ledger.VoidPending != 0:
		return report.VoidPending
	case t.Flags&ledger.PostPending != 0:
		return report.PostPending
	}
	return report.Posted
}

func reportKey(id spec.JobID) string { return "report/" + id.String() }

// SetReport stores the signed audit report of job id (its JSON file,
// report.Report.Marshal), once the job has ended.
func (s *Service) SetReport(_ context.Context, id spec.JobID, b []byte) error {
	if len(b) > report.MaxReportBytes {
		return fmt.Errorf("%w: report of %d bytes (max %d)", ErrInvalid, len(b), report.MaxReportBytes)
	}
	return s.store.PutRaw(reportKey(id), b)
}

// Report returns the stored audit report of job id, or ErrNotFound.
func (s *Service) Report(_ context.Context, id spec.JobID) ([]byte, error) {
	b, ok, err := s.store.GetRaw(reportKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: no report for job %s", ErrNotFound, id)
	}
	return b, nil
}
