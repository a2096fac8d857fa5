package ledger

import (
	"context"
	"fmt"
	"math/big"
)

// Replayed is the state a replay of the journal computes from zero.
type Replayed struct {
	Balances  map[AccountID]Balances
	Pending   map[TransferID]PendingStatus
	LastSeq   uint64
	Transfers int // transfer entries (the rest are expiries)
}

func violation(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvariant}, args...)...)
}

// Replay recomputes every balance and pending status from the journal,
// checking each entry as it goes: sequence numbers run 1, 2, 3, … without
// gaps, timestamps never decrease, transfer IDs are unique, each transfer
// obeys the static rules and its accounts' ledger and flags, and each
// pending transfer is resolved (posted, voided or expired) at most once,
// by a resolution that matches it. The first violation is returned,
// wrapping ErrInvariant.
func Replay(ctx context.Context, a Auditor) (*Replayed, error) {
	accts := make(map[AccountID]Account)
	if err := a.ScanAccounts(ctx, func(ac Account) error {
		accts[ac.ID] = ac
		return nil
	}); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	r := &Replayed{Balances: make(map[AccountID]Balances), Pending: make(map[TransferID]PendingStatus)}
	seen := make(map[TransferID]bool)
	pendings := make(map[TransferID]Transfer)
	var lastTS int64
	err := a.ScanJournal(ctx, 0, func(e Entry) error {
		if e.Seq != r.LastSeq+1 {
			return violation("journal entry %d follows %d", e.Seq, r.LastSeq)
		}
		r.LastSeq = e.Seq
		if e.TimestampUnixNano < lastTS {
			return violation("journal entry %d is timestamped before entry %d", e.Seq, e.Seq-1)
		}
		lastTS = e.TimestampUnixNano
		var dID, cID AccountID
		var dDelta, cDelta Balances // signed changes
		switch e.Kind {
		case EntryTransfer:
			t := e.Transfer
			if t.Seq != e.Seq || t.TimestampUnixNano != e.TimestampUnixNano {
				return violation("journal entry %d holds transfer %s stamped %d", e.Seq, t.ID, t.Seq)
			}
			bare := t
			bare.Seq, bare.TimestampUnixNano = 0, 0
			if err := checkTransfer(&bare, true); err != nil {
				return violation("journal entry %d: transfer %s: %v", e.Seq, t.ID, err)
			}
			if seen[t.ID] {
				return violation("transfer %s applied twice (again at %d)", t.ID, e.Seq)
			}
			seen[t.ID] = true
			r.Transfers++
			dr, okD := accts[t.DebitAccountID]
			cr, okC := accts[t.CreditAccountID]
			if !okD || !okC {
				return violation("transfer %s moves money of a missing account", t.ID)
			}
			if dr.Ledger != t.Ledger || cr.Ledger != t.Ledger {
				return violation("transfer %s crosses ledgers", t.ID)
			}
			dID, cID = dr.ID, cr.ID
			amt := t.AmountMicroUSD
			switch {
			case t.Flags&Pending != 0:
				deadline, err := expiresAt(t.TimestampUnixNano, t.TimeoutSec)
				if err != nil {
					return violation("transfer %s: deadline overflows", t.ID)
				}
				pendings[t.ID] = t
				r.Pending[t.ID] = PendingStatus{ID: t.ID, State: StatePending, ExpiresAtUnixNano: deadline}
				dDelta.DebitsPendingMicroUSD, cDelta.CreditsPendingMicroUSD = amt, amt
			case t.Flags&(PostPending|VoidPending) != 0:
				p, ok := pendings[t.PendingID]
				ps := r.Pending[t.PendingID]
				switch {
				case !ok:
					return violation("transfer %s resolves %s, which is not an earlier pending transfer", t.ID, t.PendingID)
				case ps.State != StatePending:
					return violation("pending transfer %s resolved twice (%s, then by %s)", p.ID, ps.State, t.ID)
				case p.DebitAccountID != dID || p.CreditAccountID != cID:
					return violation("transfer %s resolves %s with other accounts", t.ID, p.ID)
				case t.Flags&PostPending != 0 && amt > p.AmountMicroUSD:
					return violation("transfer %s posts more than %s holds", t.ID, p.ID)
				case t.Flags&VoidPending != 0 && amt != p.AmountMicroUSD:
					return violation("transfer %s voids another amount than %s holds", t.ID, p.ID)
				}
				if e.TimestampUnixNano >= ps.ExpiresAtUnixNano && ps.ExpiresAtUnixNano != 0 {
					return violation("transfer %s resolves %s after its deadline", t.ID, p.ID)
				}
				dDelta.DebitsPendingMicroUSD, cDelta.CreditsPendingMicroUSD = -p.AmountMicroUSD, -p.AmountMicroUSD
				ps.ResolvedBy, ps.ResolvedSeq = t.ID, t.Seq
				if t.Flags&PostPending != 0 {
					ps.State, ps.PostedMicroUSD = StatePosted, amt
					dDelta.DebitsPostedMicroUSD, cDelta.CreditsPostedMicroUSD = amt, amt
				} else {
					ps.State = StateVoided
				}
				r.Pending[p.ID] = ps
			default:
				dDelta.DebitsPostedMicroUSD, cDelta.CreditsPostedMicroUSD = amt, amt
			}
		case EntryExpiry:
			p, ok := pendings[e.ExpiredID]
			ps := r.Pending[e.ExpiredID]
			switch {
			case !ok:
				return violation("expiry %d of %s, which is not an earlier pending transfer", e.Seq, e.ExpiredID)
			case ps.State != StatePending:
				return violation("pending transfer %s resolved twice (%s, then expired at %d)", p.ID, ps.State, e.Seq)
			case ps.ExpiresAtUnixNano == 0 || ps.ExpiresAtUnixNano > e.TimestampUnixNano:
				return violation("pending transfer %s expired at %d before its deadline", p.ID, e.Seq)
			}
			ps.State, ps.ResolvedSeq = StateExpired, e.Seq
			r.Pending[p.ID] = ps
			dID, cID = p.DebitAccountID, p.CreditAccountID
			dDelta.DebitsPendingMicroUSD, cDelta.CreditsPendingMicroUSD = -p.AmountMicroUSD, -p.AmountMicroUSD
		default:
			return violation("journal entry %d has kind %d", e.Seq, e.Kind)
		}
		for _, side := range []struct {
			id    AccountID
			delta Balances
		}{{dID, dDelta}, {cID, cDelta}} {
			b := r.Balances[side.id]
			var err error
			for _, f := range []struct{ p, d *int64 }{
				{&b.DebitsPendingMicroUSD, &side.delta.DebitsPendingMicroUSD},
				{&b.DebitsPostedMicroUSD, &side.delta.DebitsPostedMicroUSD},
				{&b.CreditsPendingMicroUSD, &side.delta.CreditsPendingMicroUSD},
				{&b.CreditsPostedMicroUSD, &side.delta.CreditsPostedMicroUSD},
			} {
				if err == nil {
					*f.p, err = add(*f.p, *f.d)
				}
			}
			if err == nil {
				err = flagsHold(accts[side.id].Flags, b)
			}
			if err != nil {
				return violation("journal entry %d leaves account %s: %v", e.Seq, side.id, err)
			}
			r.Balances[side.id] = b
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return r, nil
}

// CheckInvariants checks everything the ledger promises about its stored
// state: Σ debits_posted = Σ credits_posted and Σ debits_pending =
// Σ credits_pending over all accounts; no account breaks its flags; every
// balance and pending status equals a replay of the journal (which also
// checks that no pending transfer is resolved twice and no transfer is
// applied twice); and every journaled transfer is found by its ID. Run it
// on a quiescent ledger or inside a snapshot (Badger.Verify).
func CheckInvariants(ctx context.Context, a Auditor) error {
	r, err := Replay(ctx, a)
	if err != nil {
		return err
	}
	var sums [4]big.Int // debits pending, debits posted, credits pending, credits posted
	n := 0
	err = a.ScanAccounts(ctx, func(ac Account) error {
		n++
		if err := flagsHold(ac.Flags, ac.Balances); err != nil {
			return violation("account %s: %v", ac.ID, err)
		}
		if want := r.Balances[ac.ID]; ac.Balances != want {
			return violation("account %s has balances %+v, the journal gives %+v", ac.ID, ac.Balances, want)
		}
		for i, v := range []int64{ac.DebitsPendingMicroUSD, ac.DebitsPostedMicroUSD, ac.CreditsPendingMicroUSD, ac.CreditsPostedMicroUSD} {
			sums[i].Add(&sums[i], big.NewInt(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n < len(r.Balances) {
		return violation("the journal moves money of %d accounts, %d exist", len(r.Balances), n)
	}
	if sums[1].Cmp(&sums[3]) != 0 {
		return violation("Σ debits posted %s ≠ Σ credits posted %s", &sums[1], &sums[3])
	}
	if sums[0].Cmp(&sums[2]) != 0 {
		return violation("Σ debits pending %s ≠ Σ credits pending %s", &sums[0], &sums[2])
	}
	n = 0
	err = a.ScanPending(ctx, func(p PendingStatus) error {
		n++
		if want, ok := r.Pending[p.ID]; !ok || p != want {
			return violation("pending transfer %s has status %+v, the journal gives %+v", p.ID, p, want)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n != len(r.Pending) {
		return violation("%d pending statuses stored, the journal gives %d", n, len(r.Pending))
	}
	return a.ScanJournal(ctx, 0, func(e Entry) error {
		if e.Kind != EntryTransfer {
			return nil
		}
		t, err := a.Transfer(ctx, e.Transfer.ID)
		if err != nil {
			return violation("journaled transfer %s: %v", e.Transfer.ID, err)
		}
		if t != e.Transfer {
			return violation("transfer %s by ID is %+v, journal has %+v", t.ID, t, e.Transfer)
		}
		return nil
	})
}
