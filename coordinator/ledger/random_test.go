package ledger

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/spec/spectest"
)

// long reports whether the expensive variants run: BELUGA_SLOW=1 without
// -short.
func long() bool { return !testing.Short() && spectest.IsSlow() }

// gen makes random operations: valid and invalid transfers, pending
// transfers with timeouts, posts and voids (of live, resolved, expired and
// missing pendings, with right and wrong amounts), linked chains (closed
// and open), retries of stored and failed IDs, and amounts near overflow.
type gen struct {
	r        *rand.Rand
	seed     uint64
	n        int
	accts    []Account
	ids      []TransferID // every ID generated so far
	stored   []Transfer   // transfers the oracle accepted
	pendings []Transfer
}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x62656c756761)), seed: seed}
	flags := []AccountFlags{0, DebitsMustNotExceedCredits, DebitsMustNotExceedCredits, CreditsMustNotExceedDebits}
	for i := range 10 {
		a := Account{ID: DeriveAccountID("rand", fmt.Sprint(seed), fmt.Sprint(i)), Ledger: LedgerUSD,
			Code: AccountCode(1 + i%int(maxAccountCode)), Flags: flags[i%len(flags)]}
		if i == 0 {
			a.Flags = 0 // a source of money
		}
		if i == 9 {
			a.Ledger = ledgerEUR
		}
		g.accts = append(g.accts, a)
	}
	return g
}

func (g *gen) accountID() AccountID {
	switch g.r.IntN(40) {
	case 0:
		return missing
	case 1:
		return AccountID{}
	}
	return g.accts[g.r.IntN(len(g.accts))].ID
}

func (g *gen) freshID() TransferID {
	g.n++
	id := DeriveTransferID("rand", fmt.Sprint(g.seed), fmt.Sprint(g.n))
	g.ids = append(g.ids, id)
	return id
}

func (g *gen) amount() int64 {
	switch g.r.IntN(30) {
	case 0:
		return 0
	case 1:
		return -1 - g.r.Int64N(100)
	case 2:
		return math.MaxInt64 - g.r.Int64N(1000)
	case 3:
		return math.MaxInt64 / 3
	}
	return 1 + g.r.Int64N(2000)
}

func (g *gen) transfer() Transfer {
	t := Transfer{ID: g.freshID(), DebitAccountID: g.accountID(), CreditAccountID: g.accountID(),
		AmountMicroUSD: g.amount(), Ledger: LedgerUSD, Code: uint16(1 + g.r.IntN(3))}
	t.UserData[0] = byte(g.r.IntN(3))
	switch k := g.r.IntN(100); {
	case k < 20: // deposit from the source
		t.DebitAccountID = g.accts[0].ID
		t.AmountMicroUSD = 1000 + g.r.Int64N(10000)
	case k < 40: // pending
		t.Flags = Pending
		if g.r.IntN(2) == 0 {
			t.TimeoutSec = uint32(1 + g.r.IntN(4))
		}
	case k < 58 && len(g.pendings) > 0: // post or void
		p := g.pendings[g.r.IntN(len(g.pendings))]
		t.DebitAccountID, t.CreditAccountID, t.PendingID = p.DebitAccountID, p.CreditAccountID, p.ID
		t.Flags = PostPending
		if g.r.IntN(3) == 0 {
			t.Flags = VoidPending
		}
		switch g.r.IntN(6) {
		case 0:
			t.AmountMicroUSD = p.AmountMicroUSD + 1
		case 1, 2:
			t.AmountMicroUSD = p.AmountMicroUSD
		default:
			t.AmountMicroUSD = 1 + g.r.Int64N(p.AmountMicroUSD)
		}
		if g.r.IntN(15) == 0 {
			t.CreditAccountID = g.accountID()
		}
		if g.r.IntN(20) == 0 {
			t.PendingID = g.ids[g.r.IntN(len(g.ids))]
		}
	case k < 66 && len(g.stored) > 0: // retry a stored transfer
		t = g.stored[g.r.IntN(len(g.stored))]
		t.Seq, t.TimestampUnixNano = 0, 0
		if g.r.IntN(4) == 0 {
			t.AmountMicroUSD++
		}
	case k < 72: // reuse an earlier (maybe failed) ID
		t.ID = g.ids[g.r.IntN(len(g.ids))]
	case k < 76: // static nonsense
		switch g.r.IntN(6) {
		case 0:
			t.Flags = TransferFlags(g.r.IntN(64))
		case 1:
			t.TimeoutSec = 3
		case 2:
			t.Ledger = ledgerEUR
		case 3:
			t.Code = 0
		case 4:
			t.PendingID = g.ids[g.r.IntN(len(g.ids))]
		case 5:
			t.Seq = 1
		}
	}
	if g.r.IntN(4) == 0 {
		t.Flags |= Linked
	}
	return t
}

func (g *gen) batch() []Transfer {
	ts := make([]Transfer, 1+g.r.IntN(16))
	for i := range ts {
		ts[i] = g.transfer()
	}
	if g.r.IntN(3) == 0 {
		// A chain that must close: clear Linked on the last.
		ts[len(ts)-1].Flags &^= Linked
	}
	if g.r.IntN(10) == 0 && len(ts) > 1 {
		ts[g.r.IntN(len(ts))] = ts[g.r.IntN(len(ts))] // a duplicate inside the batch
	}
	return ts
}

// learn records what the oracle accepted.
func (g *gen) learn(ts []Transfer, res []Result) {
	for i, r := range res {
		if r.Err != nil || r.Existed {
			continue
		}
		t := ts[i]
		t.Seq, t.TimestampUnixNano = r.Seq, r.TimestampUnixNano
		g.stored = append(g.stored, t)
		if t.Flags&Pending != 0 {
			g.pendings = append(g.pendings, t)
		}
	}
}

// TestRandomAgainstMemory runs the same random operations on Badger and on
// the Memory oracle and requires identical results, identical state and
// the invariants after every batch.
func TestRandomAgainstMemory(t *testing.T) {
	seeds, batches := 3, 250
	if long() {
		seeds, batches = 20, 2000
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			randomRun(t, seed, batches)
		})
	}
}

func randomRun(t *testing.T, seed uint64, batches int) {
	ctx := context.Background()
	clock := newFakeClock()
	ref := NewMemory(WithClock(clock.Now))
	b := openTestBadger(t, "", clock.Now)
	defer b.Close()
	g := newGen(seed)
	ls := []Ledger{ref, b}

	both := func(what string, f func(l Ledger) (any, error)) any {
		t.Helper()
		want, werr := f(ref)
		got, gerr := f(b)
		if werr != nil || gerr != nil {
			t.Fatalf("%s: memory %v, badger %v", what, werr, gerr)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%s:\nmemory %+v\nbadger %+v", what, want, got)
		}
		return want
	}
	accts := append([]Account(nil), g.accts...)
	accts = append(accts, g.accts[2], Account{ID: g.accts[3].ID, Ledger: LedgerUSD, Code: CodeBankClearing}, Account{Ledger: LedgerUSD, Code: 1})
	both("create accounts", func(l Ledger) (any, error) { return l.CreateAccounts(ctx, accts) })

	var seq uint64 // journal compared up to here
	outcomes := map[string]int{}
	for i := range batches {
		switch k := g.r.IntN(100); {
		case k < 8:
			clock.Advance(time.Duration(g.r.IntN(3000)) * time.Millisecond)
			both("expire", func(l Ledger) (any, error) { return l.Expire(ctx) })
		case k < 12:
			clock.Advance(time.Duration(g.r.IntN(2000)) * time.Millisecond)
		default:
			if k < 40 {
				clock.Advance(time.Duration(g.r.IntN(1000)) * time.Millisecond)
			}
			ts := g.batch()
			res := both(fmt.Sprintf("batch %d", i), func(l Ledger) (any, error) { return l.Submit(ctx, ts) }).([]Result)
			g.learn(ts, res)
			for _, r := range res {
				switch {
				case r.Existed:
					outcomes["existed"]++
				case r.Err == nil:
					outcomes["ok"]++
				default:
					outcomes[r.Err.Error()[len("ledger: "):]]++
				}
			}
		}
		// Same state: accounts, pending statuses, the journal's new entries.
		for _, l := range ls {
			if err := CheckInvariants(ctx, l.(Auditor)); err != nil {
				t.Fatalf("batch %d: %T: %v", i, l, err)
			}
		}
		both("accounts", func(l Ledger) (any, error) {
			var as []Account
			return as, l.(Auditor).ScanAccounts(ctx, func(a Account) error { as = append(as, a); return nil })
		})
		both("pending", func(l Ledger) (any, error) {
			ps := map[TransferID]PendingStatus{}
			return ps, l.(Auditor).ScanPending(ctx, func(p PendingStatus) error { ps[p.ID] = p; return nil })
		})
		es := both("journal", func(l Ledger) (any, error) {
			var es []Entry
			return es, l.(Auditor).ScanJournal(ctx, seq, func(e Entry) error { es = append(es, e); return nil })
		}).([]Entry)
		if len(es) > 0 {
			seq = es[len(es)-1].Seq
		}
	}
	// The run must have exercised the interesting paths.
	counts := map[string]int{}
	_ = ref.ScanJournal(ctx, 0, func(e Entry) error {
		switch {
		case e.Kind == EntryExpiry:
			counts["expiry"]++
		case e.Transfer.Flags&PostPending != 0:
			counts["post"]++
		case e.Transfer.Flags&VoidPending != 0:
			counts["void"]++
		case e.Transfer.Flags&Linked != 0:
			counts["linked"]++
		}
		return nil
	})
	for _, k := range []string{"expiry", "post", "void", "linked"} {
		if counts[k] == 0 {
			t.Errorf("no %s entries in %d batches", k, batches)
		}
	}
	t.Logf("journal: %d entries, %v", seq, counts)
	t.Logf("outcomes: %v", outcomes)
}
