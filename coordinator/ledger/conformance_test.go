package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// Opener makes a fresh, empty ledger driven by clock for one test; the
// suite closes it.
type Opener func(t *testing.T, clock func() time.Time) Ledger

// RunConformance runs the behaviour every Ledger implementation must have
// (like testing/fstest.TestFS). Every write is followed by CheckInvariants.
func RunConformance(t *testing.T, open Opener) {
	run := func(name string, f func(h *harness)) {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			l := open(t, clock.Now)
			defer func() {
				if err := l.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			f(&harness{t: t, l: l, clock: clock, ctx: context.Background()})
		})
	}
	run("Accounts", testAccountsRules)
	run("BaseBalances", testBaseBalances)
	run("Rejections", testRejections)
	run("Precedence", testPrecedence)
	run("Idempotency", testIdempotency)
	run("FailureDoesNotReserveID", testFailureDoesNotReserveID)
	run("Limits", testLimits)
	run("PendingLifecycle", testPendingLifecycle)
	run("Expiry", testExpiry)
	run("LinkedChains", testLinkedChains)
	run("DuplicatesInBatch", testDuplicatesInBatch)
	run("Lookups", testLookups)
	run("Statement", testStatement)
	run("Timestamps", testTimestamps)
	run("EmptyAndCancelled", testEmptyAndCancelled)
	t.Run("Close", func(t *testing.T) {
		clock := newFakeClock()
		l := open(t, clock.Now)
		ctx := context.Background()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close = %v, want ErrClosed", err)
		}
		if _, err := l.Submit(ctx, []Transfer{tx("x", bank, client, 1)}); !errors.Is(err, ErrClosed) {
			t.Errorf("Submit after Close = %v, want ErrClosed", err)
		}
		if _, err := l.CreateAccounts(ctx, testAccounts()); !errors.Is(err, ErrClosed) {
			t.Errorf("CreateAccounts after Close = %v, want ErrClosed", err)
		}
		if _, err := l.Expire(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Expire after Close = %v, want ErrClosed", err)
		}
		if _, err := l.Account(ctx, bank); !errors.Is(err, ErrClosed) {
			t.Errorf("Account after Close = %v, want ErrClosed", err)
		}
		if _, err := l.Transfer(ctx, DeriveTransferID("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Transfer after Close = %v, want ErrClosed", err)
		}
	})
}

func testAccountsRules(h *harness) {
	good := Account{ID: DeriveAccountID("a"), Ledger: LedgerUSD, Code: CodeJobEscrow, Flags: DebitsMustNotExceedCredits}
	mod := func(f func(*Account)) Account { a := good; f(&a); return a }
	cases := []struct {
		name string
		a    Account
		want error
	}{
		{"zero id", mod(func(a *Account) { a.ID = AccountID{} }), ErrZeroID},
		{"unknown flag", mod(func(a *Account) { a.Flags = 1 << 5 }), ErrInvalidFlags},
		{"both limits", mod(func(a *Account) { a.Flags = DebitsMustNotExceedCredits | CreditsMustNotExceedDebits }), ErrInvalidFlags},
		{"balance set", mod(func(a *Account) { a.CreditsPostedMicroUSD = 5 }), ErrLedgerAssignedField},
		{"pending set", mod(func(a *Account) { a.DebitsPendingMicroUSD = 5 }), ErrLedgerAssignedField},
		{"timestamp set", mod(func(a *Account) { a.TimestampUnixNano = 5 }), ErrLedgerAssignedField},
		{"zero ledger", mod(func(a *Account) { a.Ledger = 0 }), ErrInvalidLedger},
		{"zero code", mod(func(a *Account) { a.Code = 0 }), ErrInvalidCode},
		{"unknown code", mod(func(a *Account) { a.Code = maxAccountCode + 1 }), ErrInvalidCode},
		{"precedence", mod(func(a *Account) { a.ID = AccountID{}; a.Code = 0 }), ErrZeroID},
	}
	for _, c := range cases {
		res, err := h.l.CreateAccounts(h.ctx, []Account{c.a})
		if err != nil {
			h.t.Fatal(err)
		}
		if !errors.Is(res[0].Err, c.want) {
			h.t.Errorf("%s: got %v, want %v", c.name, res[0].Err, c.want)
		}
		if _, err := h.l.Account(h.ctx, c.a.ID); !errors.Is(err, ErrAccountNotFound) {
			h.t.Errorf("%s: rejected account exists (%v)", c.name, err)
		}
	}
	h.clock.Advance(time.Second)
	other := good
	other.ID = DeriveAccountID("b")
	res, err := h.l.CreateAccounts(h.ctx, []Account{good, good, mod(func(a *Account) { a.Code = CodeSolverBond }), other})
	if err != nil {
		h.t.Fatal(err)
	}
	now := h.clock.Now().UnixNano()
	if res[0] != (Result{TimestampUnixNano: now}) {
		h.t.Errorf("create: %+v", res[0])
	}
	if res[1] != (Result{Existed: true, TimestampUnixNano: now}) {
		h.t.Errorf("duplicate in batch: %+v", res[1])
	}
	if res[2].Err != ErrExistsDifferent {
		h.t.Errorf("different fields: %+v", res[2])
	}
	if res[3].Err != nil {
		h.t.Errorf("second account: %+v", res[3])
	}
	h.clock.Advance(time.Second)
	res, _ = h.l.CreateAccounts(h.ctx, []Account{good})
	if res[0] != (Result{Existed: true, TimestampUnixNano: now}) {
		h.t.Errorf("retry: %+v", res[0])
	}
	got := h.account(good.ID)
	want := good
	want.TimestampUnixNano = now
	if got != want {
		h.t.Errorf("stored %+v, want %+v", got, want)
	}
	h.check()
}

func testBaseBalances(h *harness) {
	h.base()
	want := map[AccountID]Balances{
		bank:   {CreditsPostedMicroUSD: 0, DebitsPostedMicroUSD: 1000},
		client: {DebitsPendingMicroUSD: 300, DebitsPostedMicroUSD: 110, CreditsPostedMicroUSD: 1000},
		escrow: {CreditsPendingMicroUSD: 300, CreditsPostedMicroUSD: 100},
		solver: {CreditsPostedMicroUSD: 10},
		bank2:  {DebitsPostedMicroUSD: math.MaxInt64 - 5},
		sink:   {CreditsPostedMicroUSD: math.MaxInt64 - 5},
	}
	for id, b := range want {
		if got := h.balances(id); got != b {
			h.t.Errorf("account %s: %+v, want %+v", id, got, b)
		}
	}
	if got := h.balances(client).AvailableMicroUSD(); got != 590 {
		h.t.Errorf("client available %d, want 590", got)
	}
	for name, st := range map[string]PendingState{"hold": StatePending, "hold-posted": StatePosted, "hold-voided": StateVoided, "hold-exp": StateExpired} {
		p, err := h.l.Pending(h.ctx, DeriveTransferID(name))
		if err != nil || p.State != st {
			h.t.Errorf("%s: %+v, %v; want %s", name, p, err, st)
		}
	}
	p, _ := h.l.Pending(h.ctx, DeriveTransferID("hold-posted"))
	if p.ResolvedBy != DeriveTransferID("post-1") || p.PostedMicroUSD != 100 || p.ResolvedSeq != 8 {
		h.t.Errorf("hold-posted status %+v", p)
	}
}

func testRejections(h *harness) {
	h.base()
	set := func(f func(*Transfer)) func(*Transfer) { return f }
	cases := []struct {
		name string
		t    Transfer
		want error
	}{
		{"zero id", tx("r", bank, client, 1, set(func(t *Transfer) { t.ID = TransferID{} })), ErrZeroID},
		{"unknown flag", tx("r", bank, client, 1, set(func(t *Transfer) { t.Flags = 1 << 9 })), ErrInvalidFlags},
		{"pending and post", tx("r", client, escrow, 1, pending(0), post("hold")), ErrInvalidFlags},
		{"post and void", tx("r", client, escrow, 1, post("hold"), set(func(t *Transfer) { t.Flags |= VoidPending })), ErrInvalidFlags},
		{"seq set", tx("r", bank, client, 1, set(func(t *Transfer) { t.Seq = 99 })), ErrLedgerAssignedField},
		{"timestamp set", tx("r", bank, client, 1, set(func(t *Transfer) { t.TimestampUnixNano = 99 })), ErrLedgerAssignedField},
		{"post without pending id", tx("r", client, escrow, 1, set(func(t *Transfer) { t.Flags = PostPending })), ErrInvalidPendingID},
		{"void of itself", tx("r", client, escrow, 1, void("r")), ErrInvalidPendingID},
		{"pending id on plain", tx("r", bank, client, 1, set(func(t *Transfer) { t.PendingID = DeriveTransferID("hold") })), ErrInvalidPendingID},
		{"timeout on plain", tx("r", bank, client, 1, set(func(t *Transfer) { t.TimeoutSec = 5 })), ErrInvalidTimeout},
		{"timeout on post", tx("r", client, escrow, 1, post("hold"), set(func(t *Transfer) { t.TimeoutSec = 5 })), ErrInvalidTimeout},
		{"zero amount", tx("r", bank, client, 0), ErrInvalidAmount},
		{"negative amount", tx("r", bank, client, -5), ErrInvalidAmount},
		{"min amount", tx("r", bank, client, math.MinInt64), ErrInvalidAmount},
		{"same account", tx("r", client, client, 1), ErrSameAccount},
		{"zero ledger", tx("r", bank, client, 1, set(func(t *Transfer) { t.Ledger = 0 })), ErrInvalidLedger},
		{"zero code", tx("r", bank, client, 1, set(func(t *Transfer) { t.Code = 0 })), ErrInvalidCode},
		{"id taken, other amount", tx("deposit", bank, client, 1001), ErrExistsDifferent},
		{"id taken, other flags", tx("deposit", bank, client, 1000, pending(0)), ErrExistsDifferent},
		{"id taken by pending", tx("hold", client, escrow, 300), ErrExistsDifferent},
		{"id taken, user data", tx("deposit", bank, client, 1000, set(func(t *Transfer) { t.UserData[0] = 1 })), ErrExistsDifferent},
		{"unknown debit account", tx("r", missing, client, 1), ErrAccountNotFound},
		{"unknown credit account", tx("r", bank, missing, 1), ErrAccountNotFound},
		{"zero debit account", tx("r", AccountID{}, client, 1), ErrAccountNotFound},
		{"accounts on other ledgers", tx("r", client, eur, 1), ErrLedgerMismatch},
		{"transfer on other ledger", tx("r", bank, client, 1, set(func(t *Transfer) { t.Ledger = ledgerEUR })), ErrLedgerMismatch},
		{"post unknown pending", tx("r", client, escrow, 1, post("nope")), ErrPendingNotFound},
		{"post a plain transfer", tx("r", client, solver, 1, post("plain")), ErrNotPending},
		{"post a post", tx("r", client, escrow, 1, post("post-1")), ErrNotPending},
		{"post to other account", tx("r", client, solver, 1, post("hold")), ErrPendingMismatch},
		{"void from other account", tx("r", bank, escrow, 300, void("hold")), ErrPendingMismatch},
		{"post twice", tx("r", client, escrow, 100, post("hold-posted")), ErrAlreadyPosted},
		{"void after post", tx("r", client, escrow, 100, void("hold-posted")), ErrAlreadyPosted},
		{"post after void", tx("r", client, escrow, 50, post("hold-voided")), ErrAlreadyVoided},
		{"void twice", tx("r", client, escrow, 50, void("hold-voided")), ErrAlreadyVoided},
		{"post after expiry", tx("r", client, escrow, 20, post("hold-exp")), ErrPendingExpired},
		{"void after expiry", tx("r", client, escrow, 20, void("hold-exp")), ErrPendingExpired},
		{"post more than held", tx("r", client, escrow, 301, post("hold")), ErrExceedsPendingAmount},
		{"void less than held", tx("r", client, escrow, 299, void("hold")), ErrPendingAmountMismatch},
		{"void more than held", tx("r", client, escrow, 301, void("hold")), ErrPendingAmountMismatch},
		{"credit overflow", tx("r", bank2, sink, 6), ErrOverflow},
		{"pending credit total overflow", tx("r", bank, sink, 6, pending(0)), ErrOverflow},
		{"pending debit total overflow", tx("r", bank2, bank, 6, pending(0)), ErrOverflow},
		{"max amount", tx("r", bank, escrow, math.MaxInt64), ErrOverflow},
		{"insufficient funds", tx("r", client, solver, 591), ErrExceedsCredits},
		{"insufficient funds, pending", tx("r", client, escrow, 591, pending(0)), ErrExceedsCredits},
		{"empty escrow", tx("r", escrow, solver, 101), ErrExceedsCredits},
		{"credits over debits", tx("r", bank, capped, 1), ErrExceedsDebits},
		{"credits over debits, pending", tx("r", bank, capped, 1, pending(0)), ErrExceedsDebits},
	}
	before, n := h.snapshot()
	for _, c := range cases {
		res := h.submit(c.t)
		if res[0].Err != c.want {
			h.t.Errorf("%s: got %v, want %v", c.name, res[0].Err, c.want)
		}
		if res[0].Seq != 0 || res[0].Existed {
			h.t.Errorf("%s: result %+v", c.name, res[0])
		}
		after, m := h.snapshot()
		if fmt.Sprint(after) != fmt.Sprint(before) || m != n {
			h.t.Fatalf("%s: a rejected transfer changed the ledger", c.name)
		}
		if !c.t.ID.IsZero() && c.want != ErrExistsDifferent {
			if _, err := h.l.Transfer(h.ctx, c.t.ID); !errors.Is(err, ErrTransferNotFound) {
				h.t.Errorf("%s: rejected transfer stored (%v)", c.name, err)
			}
		}
	}
	// The exact limits pass.
	h.ok(tx("all-in", client, solver, 590))
	h.ok(tx("escrow-out", escrow, solver, 100))
	h.ok(tx("fill", bank2, sink, 5))
}

func testPrecedence(h *harness) {
	h.base()
	set := func(f func(*Transfer)) func(*Transfer) { return f }
	cases := []struct {
		name string
		t    Transfer
		want error
	}{
		{"zero id over amount", tx("p", bank, client, 0, set(func(t *Transfer) { t.ID = TransferID{} })), ErrZeroID},
		{"flags over amount", tx("p", bank, client, 0, set(func(t *Transfer) { t.Flags = 1 << 12 })), ErrInvalidFlags},
		{"amount over same account", tx("p", client, client, 0), ErrInvalidAmount},
		{"static over existing", tx("deposit", bank, client, 0), ErrInvalidAmount},
		{"existing over missing account", tx("deposit", missing, client, 1000), ErrExistsDifferent},
		{"missing account over ledger", tx("p", missing, eur, 1), ErrAccountNotFound},
		{"ledger over funds", tx("p", client, eur, 100000), ErrLedgerMismatch},
		{"resolved over amount", tx("p", client, escrow, 5000, post("hold-posted")), ErrAlreadyPosted},
		{"overflow over limits", tx("p", client, sink, 1000), ErrOverflow},
	}
	for _, c := range cases {
		if res := h.submit(c.t); res[0].Err != c.want {
			h.t.Errorf("%s: got %v, want %v", c.name, res[0].Err, c.want)
		}
	}
}

func testIdempotency(h *harness) {
	h.base()
	d, err := h.l.Transfer(h.ctx, DeriveTransferID("deposit"))
	if err != nil {
		h.t.Fatal(err)
	}
	before, n := h.snapshot()
	h.clock.Advance(time.Minute)
	res := h.submit(tx("deposit", bank, client, 1000), tx("hold", client, escrow, 300, pending(0)), tx("post-1", client, escrow, 100, post("hold-posted")))
	for i, r := range res {
		if r.Err != nil || !r.Existed || r.Seq == 0 {
			h.t.Errorf("retry %d: %+v", i, r)
		}
	}
	if res[0].Seq != d.Seq || res[0].TimestampUnixNano != d.TimestampUnixNano {
		h.t.Errorf("retry result %+v, stored %+v", res[0], d)
	}
	after, m := h.snapshot()
	if fmt.Sprint(after) != fmt.Sprint(before) || m != n {
		h.t.Fatal("an idempotent retry changed the ledger")
	}
	// A retry of the expired transfer's pending still reports "existed".
	if res := h.submit(tx("hold-exp", client, escrow, 20, pending(1))); !res[0].Existed {
		h.t.Errorf("retry of expired pending: %+v", res[0])
	}
}

func testFailureDoesNotReserveID(h *harness) {
	h.base()
	pay := tx("settle/job1/solver", escrow, solver, 250)
	h.want([]Transfer{pay}, ErrExceedsCredits)
	h.ok(tx("fund-escrow", client, escrow, 250))
	res := h.ok(pay)
	if res[0].Existed {
		h.t.Error("the failed attempt reserved the ID")
	}
	// A failed chain does not reserve its members' IDs either.
	a := tx("chain-a", client, solver, 1, linked)
	b := tx("chain-b", client, solver, 1_000_000)
	h.want([]Transfer{a, b}, ErrLinkedEventFailed, ErrExceedsCredits)
	b.AmountMicroUSD = 1
	h.ok(a, b)
}

func testLimits(h *harness) {
	h.createTestAccounts()
	h.ok(tx("d", bank, client, 100))
	// Pending debits count against the limit; pending credits do not help.
	h.ok(tx("h1", client, escrow, 60, pending(0)))
	h.want([]Transfer{tx("h2", client, escrow, 41, pending(0))}, ErrExceedsCredits)
	h.want([]Transfer{tx("e1", escrow, solver, 1)}, ErrExceedsCredits)
	h.ok(tx("p1", client, escrow, 60, post("h1")))
	h.ok(tx("e1", escrow, solver, 60))
	h.want([]Transfer{tx("e2", escrow, solver, 1)}, ErrExceedsCredits)
	// CreditsMustNotExceedDebits: capped may be credited only what it was debited.
	h.ok(tx("c1", capped, bank, 30))
	h.want([]Transfer{tx("c2", bank, capped, 31)}, ErrExceedsDebits)
	h.ok(tx("c3", bank, capped, 20, pending(0)))
	h.want([]Transfer{tx("c4", bank, capped, 11)}, ErrExceedsDebits)
	h.ok(tx("c5", bank, capped, 10))
}

func testPendingLifecycle(h *harness) {
	h.createTestAccounts()
	h.ok(tx("d", bank, client, 1000))
	h.ok(tx("h", client, escrow, 400, pending(0)))
	if b := h.balances(client); b.DebitsPendingMicroUSD != 400 || b.AvailableMicroUSD() != 600 {
		h.t.Errorf("after hold: %+v", b)
	}
	if b := h.balances(escrow); b.CreditsPendingMicroUSD != 400 || b.CreditsPostedMicroUSD != 0 {
		h.t.Errorf("escrow after hold: %+v", b)
	}
	// Partial post: 250 posted, 150 released.
	res := h.ok(tx("p", client, escrow, 250, post("h")))
	c, e := h.balances(client), h.balances(escrow)
	if c != (Balances{DebitsPostedMicroUSD: 250, CreditsPostedMicroUSD: 1000}) {
		h.t.Errorf("client after post: %+v", c)
	}
	if e != (Balances{CreditsPostedMicroUSD: 250}) {
		h.t.Errorf("escrow after post: %+v", e)
	}
	st, err := h.l.Pending(h.ctx, DeriveTransferID("h"))
	want := PendingStatus{ID: DeriveTransferID("h"), State: StatePosted, ResolvedBy: DeriveTransferID("p"), ResolvedSeq: res[0].Seq, PostedMicroUSD: 250}
	if err != nil || st != want {
		h.t.Errorf("status %+v, %v; want %+v", st, err, want)
	}
	// Void.
	h.ok(tx("h2", client, escrow, 700, pending(0)))
	h.want([]Transfer{tx("x", client, solver, 51)}, ErrExceedsCredits)
	h.ok(tx("v2", client, escrow, 700, void("h2")))
	if c := h.balances(client); c.AvailableMicroUSD() != 750 || c.DebitsPendingMicroUSD != 0 {
		h.t.Errorf("client after void: %+v", c)
	}
	// Exactly once: the retry is a no-op, another resolution fails.
	if r := h.submit(tx("v2", client, escrow, 700, void("h2"))); !r[0].Existed {
		h.t.Errorf("void retry: %+v", r[0])
	}
	h.want([]Transfer{tx("v3", client, escrow, 700, void("h2")), tx("p3", client, escrow, 1, post("h2"))}, ErrAlreadyVoided, ErrAlreadyVoided)
	// Post the full amount.
	h.ok(tx("h3", client, escrow, 750, pending(0)))
	h.ok(tx("p4", client, escrow, 750, post("h3")))
	if c := h.balances(client); c.AvailableMicroUSD() != 0 {
		h.t.Errorf("client after full post: %+v", c)
	}
}

func testExpiry(h *harness) {
	h.createTestAccounts()
	h.ok(tx("d", bank, client, 1000))
	start := h.clock.Now()
	h.ok(
		tx("h10", client, escrow, 100, pending(10)),
		tx("h5", client, escrow, 200, pending(5)),
		tx("hnever", client, escrow, 300, pending(0)),
	)
	// Not yet due.
	h.clock.Advance(4 * time.Second)
	if ids, err := h.l.Expire(h.ctx); err != nil || len(ids) != 0 {
		h.t.Fatalf("Expire early = %v, %v", ids, err)
	}
	// Exactly at the deadline: due. Submit expires before it applies, so
	// posting at the deadline fails.
	h.clock.Advance(time.Second)
	h.want([]Transfer{tx("p5", client, escrow, 200, post("h5"))}, ErrPendingExpired)
	st, err := h.l.Pending(h.ctx, DeriveTransferID("h5"))
	if err != nil || st.State != StateExpired || st.ExpiresAtUnixNano != start.Add(5*time.Second).UnixNano() || st.ResolvedBy != (TransferID{}) {
		h.t.Errorf("h5 status %+v, %v", st, err)
	}
	if c := h.balances(client); c.DebitsPendingMicroUSD != 400 {
		h.t.Errorf("client after expiry: %+v", c)
	}
	// Resolved before the deadline: the expiry skips it.
	h.ok(tx("v10", client, escrow, 100, void("h10")))
	h.clock.Advance(time.Hour)
	if ids, err := h.l.Expire(h.ctx); err != nil || len(ids) != 0 {
		h.t.Fatalf("Expire = %v, %v; nothing is due", ids, err)
	}
	h.check()
	// Several due at once expire in deadline order, then ID order, and
	// each exactly once.
	h.ok(tx("a", client, escrow, 1, pending(3)), tx("b", client, escrow, 1, pending(2)), tx("c", client, escrow, 1, pending(2)))
	h.clock.Advance(3 * time.Second)
	ids, err := h.l.Expire(h.ctx)
	if err != nil || len(ids) != 3 {
		h.t.Fatalf("Expire = %v, %v", ids, err)
	}
	b, c := DeriveTransferID("b"), DeriveTransferID("c")
	if string(c[:]) < string(b[:]) {
		b, c = c, b
	}
	if ids[0] != b || ids[1] != c || ids[2] != DeriveTransferID("a") {
		h.t.Errorf("expiry order %v", ids)
	}
	if ids, _ := h.l.Expire(h.ctx); len(ids) != 0 {
		h.t.Errorf("expired twice: %v", ids)
	}
	var expiries int
	if err := h.l.(Auditor).ScanJournal(h.ctx, 0, func(e Entry) error {
		if e.Kind == EntryExpiry {
			expiries++
		}
		return nil
	}); err != nil || expiries != 4 {
		h.t.Errorf("journal has %d expiries, want 4 (%v)", expiries, err)
	}
	// A pending transfer with a timeout can be created and posted in one
	// batch, and a CreateAccounts commit also expires.
	h.ok(tx("q", client, escrow, 5, pending(1)), tx("qp", client, escrow, 5, post("q")))
	h.ok(tx("r", client, escrow, 5, pending(1)))
	h.clock.Advance(time.Second)
	if _, err := h.l.CreateAccounts(h.ctx, []Account{{ID: DeriveAccountID("late"), Ledger: LedgerUSD, Code: CodeJobEscrow}}); err != nil {
		h.t.Fatal(err)
	}
	if st, _ := h.l.Pending(h.ctx, DeriveTransferID("r")); st.State != StateExpired {
		h.t.Errorf("CreateAccounts did not expire: %+v", st)
	}
	h.check()
}

func testLinkedChains(h *harness) {
	h.createTestAccounts()
	h.ok(tx("d", bank, client, 1000))
	h.ok(tx("lock", client, escrow, 600))
	// Settlement: pay solver, fee, refund in one chain.
	settle := []Transfer{
		tx("s/solver", escrow, solver, 400, linked),
		tx("s/fee", escrow, sink, 50, linked),
		tx("s/refund", escrow, client, 150),
	}
	h.ok(settle...)
	if e := h.balances(escrow); e.CreditBalanceMicroUSD() != 0 {
		h.t.Errorf("escrow after settlement: %+v", e)
	}
	// A whole-chain retry is a no-op.
	for i, r := range h.ok(settle...) {
		if !r.Existed {
			h.t.Errorf("retry %d: %+v", i, r)
		}
	}
	// One failure undoes the chain: the first two would succeed alone.
	before, n := h.snapshot()
	h.want([]Transfer{
		tx("f1", client, solver, 100, linked),
		tx("f2", client, escrow, 100, pending(0), linked),
		tx("f3", client, solver, 10_000, linked),
		tx("f4", client, solver, 1),
	}, ErrLinkedEventFailed, ErrLinkedEventFailed, ErrExceedsCredits, ErrLinkedEventFailed)
	after, m := h.snapshot()
	if fmt.Sprint(before) != fmt.Sprint(after) || n != m {
		h.t.Fatal("a failed chain changed the ledger")
	}
	// Chains are independent of each other and of unlinked neighbours.
	h.want([]Transfer{
		tx("g1", client, solver, 1),
		tx("g2", client, solver, 1, linked),
		tx("g3", missing, solver, 1),
		tx("g4", client, solver, 1, linked),
		tx("g5", client, solver, 1),
		tx("g6", client, client, 1),
	}, nil, ErrLinkedEventFailed, ErrAccountNotFound, nil, nil, ErrSameAccount)
	// Later members see earlier ones: hold and post in one chain; a chain
	// that spends money credited earlier in it.
	h.ok(
		tx("k1", client, escrow, 100, pending(30), linked),
		tx("k2", client, escrow, 100, post("k1"), linked),
		tx("k3", escrow, solver, 100),
	)
	// Within a failed chain, a transfer that depended on an earlier member
	// is rolled back with it.
	h.want([]Transfer{
		tx("m1", client, escrow, 10, pending(0), linked),
		tx("m2", client, escrow, 10, post("m1"), linked),
		tx("m3", client, escrow, 10, post("m1")),
	}, ErrLinkedEventFailed, ErrLinkedEventFailed, ErrAlreadyPosted)
	if _, err := h.l.Transfer(h.ctx, DeriveTransferID("m1")); !errors.Is(err, ErrTransferNotFound) {
		h.t.Errorf("m1 survived its chain: %v", err)
	}
	// An open chain at the end of the batch fails, alone.
	h.want([]Transfer{tx("o0", client, solver, 1), tx("o1", client, solver, 1, linked), tx("o2", client, solver, 1, linked)},
		nil, ErrLinkedChainOpen, ErrLinkedChainOpen)
	// A chain counts an existing identical member as a success.
	h.ok(tx("x1", client, solver, 1, linked), tx("x2", client, solver, 1))
	res := h.ok(tx("x1", client, solver, 1, linked), tx("x3", client, solver, 1))
	if !res[0].Existed || res[1].Existed {
		h.t.Errorf("mixed chain: %+v", res)
	}
	// A chain that is too long fails whole; MaxChainTransfers passes.
	long := make([]Transfer, MaxChainTransfers+1)
	for i := range long {
		long[i] = tx(fmt.Sprint("long", i), bank, escrow, 1, linked)
	}
	long[len(long)-1].Flags = 0
	res = h.submit(long...)
	for i := range res {
		if res[i].Err != ErrChainTooLong {
			h.t.Fatalf("long chain %d: %v", i, res[i].Err)
		}
	}
	long = long[1:]
	h.ok(long...)
}

func testDuplicatesInBatch(h *harness) {
	h.createTestAccounts()
	d := tx("d", bank, client, 100)
	res := h.submit(d, d, tx("d", bank, client, 101))
	if res[0].Err != nil || res[0].Existed || !res[1].Existed || res[1].Seq != res[0].Seq || res[2].Err != ErrExistsDifferent {
		h.t.Errorf("duplicates: %+v", res)
	}
	// A failure does not reserve the ID even within the batch.
	res = h.submit(tx("e", client, solver, 500), tx("e", client, solver, 50))
	if res[0].Err != ErrExceedsCredits || res[1].Err != nil || res[1].Existed {
		h.t.Errorf("retry in batch: %+v", res)
	}
	if b := h.balances(client); b.DebitsPostedMicroUSD != 50 {
		h.t.Errorf("client %+v", b)
	}
}

func testLookups(h *harness) {
	h.base()
	if _, err := h.l.Account(h.ctx, missing); !errors.Is(err, ErrAccountNotFound) {
		h.t.Errorf("Account(missing) = %v", err)
	}
	if _, err := h.l.Transfer(h.ctx, DeriveTransferID("nope")); !errors.Is(err, ErrTransferNotFound) {
		h.t.Errorf("Transfer(nope) = %v", err)
	}
	if _, err := h.l.Pending(h.ctx, DeriveTransferID("nope")); !errors.Is(err, ErrTransferNotFound) {
		h.t.Errorf("Pending(nope) = %v", err)
	}
	if _, err := h.l.Pending(h.ctx, DeriveTransferID("plain")); !errors.Is(err, ErrNotPending) {
		h.t.Errorf("Pending(plain) = %v", err)
	}
	tr, err := h.l.Transfer(h.ctx, DeriveTransferID("hold-exp"))
	want := tx("hold-exp", client, escrow, 20, pending(1))
	want.Seq, want.TimestampUnixNano = tr.Seq, tr.TimestampUnixNano
	if err != nil || tr != want || tr.Seq != 5 || tr.TimestampUnixNano != newFakeClock().Now().UnixNano() {
		h.t.Errorf("Transfer(hold-exp) = %+v, %v", tr, err)
	}
}

func testStatement(h *harness) {
	h.base()
	page := func(id AccountID, after TransferID, limit int) []string {
		ts, err := h.l.AccountTransfers(h.ctx, id, after, limit)
		if err != nil {
			h.t.Fatalf("AccountTransfers: %v", err)
		}
		var names []string
		for _, t := range ts {
			for _, n := range []string{"deposit", "hold", "hold-posted", "hold-voided", "hold-exp", "plain", "huge", "post-1", "void-1", "later"} {
				if t.ID == DeriveTransferID(n) {
					names = append(names, n)
				}
			}
		}
		return names
	}
	all := fmt.Sprint(page(client, TransferID{}, 0))
	if want := "[deposit hold hold-posted hold-voided hold-exp plain post-1 void-1]"; all != want {
		h.t.Errorf("client statement %s, want %s", all, want)
	}
	if got := fmt.Sprint(page(client, DeriveTransferID("hold-voided"), 3)); got != "[hold-exp plain post-1]" {
		h.t.Errorf("page = %s", got)
	}
	// Any transfer serves as a cursor, also one of another account.
	if got := fmt.Sprint(page(client, DeriveTransferID("huge"), 100)); got != "[post-1 void-1]" {
		h.t.Errorf("page after foreign cursor = %s", got)
	}
	if got := page(solver, DeriveTransferID("plain"), 10); len(got) != 0 {
		h.t.Errorf("page past the end = %v", got)
	}
	h.ok(tx("later", solver, bank, 10))
	if got := fmt.Sprint(page(solver, DeriveTransferID("plain"), 10)); got != "[later]" {
		h.t.Errorf("page after new transfer = %s", got)
	}
	if _, err := h.l.AccountTransfers(h.ctx, missing, TransferID{}, 10); !errors.Is(err, ErrAccountNotFound) {
		h.t.Errorf("statement of missing account: %v", err)
	}
	if _, err := h.l.AccountTransfers(h.ctx, client, DeriveTransferID("nope"), 10); !errors.Is(err, ErrTransferNotFound) {
		h.t.Errorf("statement after missing cursor: %v", err)
	}
	// Paging through in steps of 1 yields the whole statement.
	var walked []string
	cursor := TransferID{}
	for range 100 {
		ts, err := h.l.AccountTransfers(h.ctx, client, cursor, 1)
		if err != nil {
			h.t.Fatal(err)
		}
		if len(ts) == 0 {
			break
		}
		walked = append(walked, page(client, cursor, 1)...)
		cursor = ts[0].ID
	}
	if fmt.Sprint(walked) != all {
		h.t.Errorf("walked %v, want %s", walked, all)
	}
}

func testTimestamps(h *harness) {
	h.createTestAccounts()
	t0 := h.clock.Now().UnixNano()
	r1 := h.ok(tx("a", bank, client, 1), tx("b", bank, client, 1))
	if r1[0].TimestampUnixNano != t0 || r1[1].TimestampUnixNano != t0 || r1[1].Seq != r1[0].Seq+1 {
		h.t.Errorf("results %+v", r1)
	}
	// The clock going backwards does not make the ledger's time go back.
	h.clock.Advance(-time.Hour)
	r2 := h.ok(tx("c", bank, client, 1))
	if r2[0].TimestampUnixNano != t0 {
		h.t.Errorf("timestamp went back: %d < %d", r2[0].TimestampUnixNano, t0)
	}
	h.clock.Advance(2 * time.Hour)
	r3 := h.ok(tx("d", bank, client, 1, pending(60)))
	if r3[0].TimestampUnixNano != t0+int64(time.Hour) {
		h.t.Errorf("timestamp %d", r3[0].TimestampUnixNano)
	}
	st, _ := h.l.Pending(h.ctx, DeriveTransferID("d"))
	if st.ExpiresAtUnixNano != r3[0].TimestampUnixNano+int64(time.Minute) {
		h.t.Errorf("deadline %d", st.ExpiresAtUnixNano)
	}
}

func testEmptyAndCancelled(h *harness) {
	h.createTestAccounts()
	if res, err := h.l.Submit(h.ctx, nil); err != nil || len(res) != 0 {
		h.t.Errorf("empty Submit = %v, %v", res, err)
	}
	if res, err := h.l.CreateAccounts(h.ctx, nil); err != nil || len(res) != 0 {
		h.t.Errorf("empty CreateAccounts = %v, %v", res, err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	if _, err := h.l.Submit(ctx, []Transfer{tx("a", bank, client, 1)}); !errors.Is(err, context.Canceled) {
		h.t.Errorf("Submit with cancelled context = %v", err)
	}
	if _, err := h.l.Transfer(h.ctx, DeriveTransferID("a")); !errors.Is(err, ErrTransferNotFound) {
		h.t.Errorf("cancelled submit applied: %v", err)
	}
}
