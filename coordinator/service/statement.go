package service

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/payout"
)

// Statement is an account's history from the ledger. Amounts are signed
// as the account's credit balance sees them (credits posted minus debits
// posted): deposits and earnings are positive, escrow and payouts
// negative. Pending reservations and voids are listed with their own kind
// and do not change the balance.
type Statement struct {
	Account string `json:"account"`
	// Period, if set, limits the lines to [start, end).
	Period                 string          `json:"period,omitempty"`
	OpeningBalanceMicroUSD int64           `json:"opening_balance_micro_usd"`
	Lines                  []StatementLine `json:"lines"`
	ClosingBalanceMicroUSD int64           `json:"closing_balance_micro_usd"`
	// HeldMicroUSD is reserved by pending transfers at the end.
	HeldMicroUSD int64 `json:"held_micro_usd"`
}

// StatementLine is one transfer.
type StatementLine struct {
	TransferID     string    `json:"transfer_id"`
	Seq            uint64    `json:"seq"`
	At             time.Time `json:"at"`
	Code           string    `json:"code"`
	Kind           string    `json:"kind"` // posted, pending, post_pending, void_pending
	AmountMicroUSD int64     `json:"amount_micro_usd"`
	// JobID names the job a job transfer (escrow, bonds, pay, fees,
	// slashes) belongs to; empty for deposits and payouts.
	JobID string `json:"job_id,omitempty"`
}

// MaxStatementLines bounds one statement.
const MaxStatementLines = 100_000

// Statement lists an account's transfers (within a period if periodID is
// not empty) with running balances; ErrNotFound for an unknown account.
func (s *Service) Statement(ctx context.Context, ref AccountRef, periodID string) (*Statement, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	var p payout.Period
	if periodID != "" {
		var err error
		if p, err = s.cfg.schedule.ParsePeriodID(periodID); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	id := ref.ID()
	acct, err := s.led.Account(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: account %s: %w", ErrNotFound, ref, err)
	}
	st := &Statement{Account: ref.String(), Period: periodID, Lines: []StatementLine{}}
	var after ledger.TransferID
	var bal int64
	for {
		ts, err := s.led.AccountTransfers(ctx, id, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			l := StatementLine{TransferID: t.ID.String(), Seq: t.Seq, At: time.Unix(0, t.TimestampUnixNano).UTC(), Code: CodeName(t.Code), AmountMicroUSD: t.AmountMicroUSD}
			if t.Code != CodeDeposit && t.Code != CodePayout {
				l.JobID = hex.EncodeToString(t.UserData[:]) // jobTransfer puts the job ID there
			}
			sign := int64(1)
			if t.DebitAccountID == id {
				sign = -1
			}
			effect := int64(0)
			switch {
			case t.Flags&ledger.Pending != 0:
				l.Kind = "pending"
			case t.Flags&ledger.VoidPending != 0:
				l.Kind = "void_pending"
			case t.Flags&ledger.PostPending != 0:
				l.Kind, effect = "post_pending", t.AmountMicroUSD
			default:
				l.Kind, effect = "posted", t.AmountMicroUSD
			}
			l.AmountMicroUSD *= sign
			effect *= sign
			at := time.Unix(0, t.TimestampUnixNano)
			switch {
			case !p.IsZero() && at.Before(p.Start()):
				st.OpeningBalanceMicroUSD += effect
			case !p.IsZero() && !at.Before(p.End()):
				// after the period
			default:
				if len(st.Lines) >= MaxStatementLines {
					return nil, fmt.Errorf("%w: more than %d lines: ask for a period", ErrInvalid, MaxStatementLines)
				}
				st.Lines = append(st.Lines, l)
			}
			if p.IsZero() || at.Before(p.End()) {
				bal += effect
			}
		}
		if len(ts) < 1000 {
			break
		}
		after = ts[len(ts)-1].ID
	}
	st.ClosingBalanceMicroUSD = bal
	st.HeldMicroUSD = acct.DebitsPendingMicroUSD
	if p.IsZero() && bal != acct.CreditBalanceMicroUSD() {
		return nil, fmt.Errorf("%w: statement of %s sums to %d, the account holds %d", ErrLedger, ref, bal, acct.CreditBalanceMicroUSD())
	}
	return st, nil
}
