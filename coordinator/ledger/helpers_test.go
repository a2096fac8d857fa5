package ledger

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Test accounts.
var (
	bank    = DeriveAccountID("test", "bank")
	client  = DeriveAccountID("test", "client")
	escrow  = DeriveAccountID("test", "escrow")
	solver  = DeriveAccountID("test", "solver")
	capped  = DeriveAccountID("test", "capped")
	eur     = DeriveAccountID("test", "eur")
	bank2   = DeriveAccountID("test", "bank2")
	sink    = DeriveAccountID("test", "sink")
	missing = DeriveAccountID("test", "missing")

	allTestAccounts = []AccountID{bank, client, escrow, solver, capped, eur, bank2, sink}
)

const ledgerEUR LedgerCode = 978

func testAccounts() []Account {
	return []Account{
		{ID: bank, Ledger: LedgerUSD, Code: CodeBankClearing},
		{ID: client, Ledger: LedgerUSD, Code: CodeClientFunds, Flags: DebitsMustNotExceedCredits},
		{ID: escrow, Ledger: LedgerUSD, Code: CodeJobEscrow, Flags: DebitsMustNotExceedCredits},
		{ID: solver, Ledger: LedgerUSD, Code: CodeSolverEarnings, Flags: DebitsMustNotExceedCredits},
		{ID: capped, Ledger: LedgerUSD, Code: CodePayoutsInTransit, Flags: CreditsMustNotExceedDebits},
		{ID: eur, Ledger: ledgerEUR, Code: CodeClientFunds},
		{ID: bank2, Ledger: LedgerUSD, Code: CodeBankClearing},
		{ID: sink, Ledger: LedgerUSD, Code: CodePlatformFees},
	}
}

// tx builds a USD transfer with ID DeriveTransferID(name).
func tx(name string, dr, cr AccountID, amount int64, opts ...func(*Transfer)) Transfer {
	t := Transfer{ID: DeriveTransferID(name), DebitAccountID: dr, CreditAccountID: cr,
		AmountMicroUSD: amount, Ledger: LedgerUSD, Code: 1}
	for _, o := range opts {
		o(&t)
	}
	return t
}

func pending(timeoutSec uint32) func(*Transfer) {
	return func(t *Transfer) { t.Flags |= Pending; t.TimeoutSec = timeoutSec }
}
func post(of string) func(*Transfer) {
	return func(t *Transfer) { t.Flags |= PostPending; t.PendingID = DeriveTransferID(of) }
}
func void(of string) func(*Transfer) {
	return func(t *Transfer) { t.Flags |= VoidPending; t.PendingID = DeriveTransferID(of) }
}
func linked(t *Transfer) { t.Flags |= Linked }

// harness wraps a ledger under test: every write is followed by
// CheckInvariants.
type harness struct {
	t     *testing.T
	l     Ledger
	clock *fakeClock
	ctx   context.Context
}

func (h *harness) check() {
	h.t.Helper()
	a, ok := h.l.(Auditor)
	if !ok {
		h.t.Fatalf("%T does not implement Auditor", h.l)
	}
	if err := CheckInvariants(h.ctx, a); err != nil {
		h.t.Fatalf("invariants: %v", err)
	}
}

func (h *harness) submit(ts ...Transfer) []Result {
	h.t.Helper()
	res, err := h.l.Submit(h.ctx, ts)
	if err != nil {
		h.t.Fatalf("Submit: %v", err)
	}
	if len(res) != len(ts) {
		h.t.Fatalf("Submit returned %d results for %d transfers", len(res), len(ts))
	}
	h.check()
	return res
}

// ok submits transfers that must all succeed.
func (h *harness) ok(ts ...Transfer) []Result {
	h.t.Helper()
	res := h.submit(ts...)
	for i, r := range res {
		if r.Err != nil {
			h.t.Fatalf("transfer %d: %v", i, r.Err)
		}
	}
	return res
}

// want submits transfers and checks each result's error.
func (h *harness) want(ts []Transfer, errs ...error) []Result {
	h.t.Helper()
	res := h.submit(ts...)
	for i, r := range res {
		if !errors.Is(r.Err, errs[i]) || (errs[i] == nil) != (r.Err == nil) {
			h.t.Errorf("transfer %d: got %v, want %v", i, r.Err, errs[i])
		}
	}
	return res
}

func (h *harness) account(id AccountID) Account {
	h.t.Helper()
	a, err := h.l.Account(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Account: %v", err)
	}
	return a
}

func (h *harness) balances(id AccountID) Balances { h.t.Helper(); return h.account(id).Balances }

// snapshot returns every test account and the journal length.
func (h *harness) snapshot() ([]Account, uint64) {
	h.t.Helper()
	var as []Account
	for _, id := range allTestAccounts {
		as = append(as, h.account(id))
	}
	var n uint64
	if err := h.l.(Auditor).ScanJournal(h.ctx, 0, func(e Entry) error { n = e.Seq; return nil }); err != nil {
		h.t.Fatal(err)
	}
	return as, n
}

func (h *harness) createTestAccounts() {
	h.t.Helper()
	res, err := h.l.CreateAccounts(h.ctx, testAccounts())
	if err != nil {
		h.t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Existed {
			h.t.Fatalf("account %d: %+v", i, r)
		}
	}
	h.check()
}

// base sets up the state the rule tables run against.
//
//	client: +1000 deposit, hold 300 (held), hold-posted 100 (posted),
//	hold-voided 50 (voided), hold-exp 20 (expired), plain 10 to solver
//	bank2 → sink: MaxInt64 - 5
func (h *harness) base() {
	h.t.Helper()
	h.createTestAccounts()
	h.ok(
		tx("deposit", bank, client, 1000),
		tx("hold", client, escrow, 300, pending(0)),
		tx("hold-posted", client, escrow, 100, pending(0)),
		tx("hold-voided", client, escrow, 50, pending(0)),
		tx("hold-exp", client, escrow, 20, pending(1)),
		tx("plain", client, solver, 10),
		tx("huge", bank2, sink, math.MaxInt64-5),
	)
	h.ok(
		tx("post-1", client, escrow, 100, post("hold-posted")),
		tx("void-1", client, escrow, 50, void("hold-voided")),
	)
	h.clock.Advance(2 * time.Second)
	ids, err := h.l.Expire(h.ctx)
	if err != nil || len(ids) != 1 || ids[0] != DeriveTransferID("hold-exp") {
		h.t.Fatalf("Expire = %v, %v; want hold-exp", ids, err)
	}
	h.check()
}
