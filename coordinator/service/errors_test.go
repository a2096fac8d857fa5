package service

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/market"
)

// exportedErrors lists the exported Err* variables declared in a Go file.
func exportedErrors(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, sp := range g.Specs {
			for _, n := range sp.(*ast.ValueSpec).Names {
				if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
					names = append(names, n.Name)
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestEveryLedgerErrorMapped: every error the ledger declares becomes one
// of the service's sentinels, so that the API can answer it with a stable
// code; none falls through to an unclassified (500) error. The table must
// name every variable of ledger/errors.go, so a new ledger error fails
// this test until it is classified.
func TestEveryLedgerErrorMapped(t *testing.T) {
	t.Parallel()
	want := map[string]struct{ err, want error }{
		"ErrClosed":                {ledger.ErrClosed, ErrUnavailable},
		"ErrFailed":                {ledger.ErrFailed, ErrUnavailable},
		"ErrCorrupt":               {ledger.ErrCorrupt, ErrUnavailable},
		"ErrInvariant":             {ledger.ErrInvariant, ErrUnavailable},
		"ErrTransferNotFound":      {ledger.ErrTransferNotFound, ErrNotFound},
		"ErrZeroID":                {ledger.ErrZeroID, ErrLedger},
		"ErrInvalidFlags":          {ledger.ErrInvalidFlags, ErrLedger},
		"ErrLedgerAssignedField":   {ledger.ErrLedgerAssignedField, ErrLedger},
		"ErrInvalidPendingID":      {ledger.ErrInvalidPendingID, ErrLedger},
		"ErrInvalidTimeout":        {ledger.ErrInvalidTimeout, ErrLedger},
		"ErrInvalidAmount":         {ledger.ErrInvalidAmount, ErrInvalid},
		"ErrSameAccount":           {ledger.ErrSameAccount, ErrLedger},
		"ErrInvalidLedger":         {ledger.ErrInvalidLedger, ErrLedger},
		"ErrInvalidCode":           {ledger.ErrInvalidCode, ErrLedger},
		"ErrExistsDifferent":       {ledger.ErrExistsDifferent, ErrConflict},
		"ErrAccountNotFound":       {ledger.ErrAccountNotFound, ErrNotFound},
		"ErrLedgerMismatch":        {ledger.ErrLedgerMismatch, ErrLedger},
		"ErrPendingNotFound":       {ledger.ErrPendingNotFound, ErrIllegalState},
		"ErrNotPending":            {ledger.ErrNotPending, ErrIllegalState},
		"ErrPendingMismatch":       {ledger.ErrPendingMismatch, ErrLedger},
		"ErrAlreadyPosted":         {ledger.ErrAlreadyPosted, ErrIllegalState},
		"ErrAlreadyVoided":         {ledger.ErrAlreadyVoided, ErrIllegalState},
		"ErrPendingExpired":        {ledger.ErrPendingExpired, ErrIllegalState},
		"ErrExceedsPendingAmount":  {ledger.ErrExceedsPendingAmount, ErrLedger},
		"ErrPendingAmountMismatch": {ledger.ErrPendingAmountMismatch, ErrLedger},
		"ErrOverflow":              {ledger.ErrOverflow, ErrOverflow},
		"ErrExceedsCredits":        {ledger.ErrExceedsCredits, ErrInsufficientFunds},
		"ErrExceedsDebits":         {ledger.ErrExceedsDebits, ErrLedger},
		"ErrLinkedEventFailed":     {ledger.ErrLinkedEventFailed, ErrLedger},
		"ErrLinkedChainOpen":       {ledger.ErrLinkedChainOpen, ErrLedger},
		"ErrChainTooLong":          {ledger.ErrChainTooLong, ErrLedger},
	}
	for _, name := range exportedErrors(t, "../ledger/errors.go") {
		c, ok := want[name]
		if !ok {
			t.Errorf("ledger.%s is not classified by this test", name)
			continue
		}
		got := ledgerError(c.err)
		if !errors.Is(got, c.want) {
			t.Errorf("ledger.%s maps to %v, want %v", name, got, c.want)
		}
		if !errors.Is(got, c.err) {
			t.Errorf("ledger.%s: the mapped error %v lost its cause", name, got)
		}
	}
}

// TestDepositOverflow: a deposit that would overflow the credited account
// (or bank clearing's debits) is refused with ErrOverflow, not an
// unclassified error, and moves nothing.
func TestDepositOverflow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, led, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "small", Account: AccountRef{KindClientFunds, "other"}, AmountMicroUSD: 1}))
	must(s.RecordDeposit(ctx, Deposit{BankRef: "big", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: math.MaxInt64 - 1}))
	before := snapshot(t, led)
	for _, d := range []Deposit{
		{BankRef: "one", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 2},  // acme's credits too
		{BankRef: "two", Account: AccountRef{KindClientFunds, "other"}, AmountMicroUSD: 1}, // bank clearing's debits
	} {
		if _, err := s.RecordDeposit(ctx, d); !errors.Is(err, ErrOverflow) {
			t.Errorf("deposit %s: %v, want ErrOverflow", d.BankRef, err)
		}
	}
	if after := snapshot(t, led); after != before {
		t.Fatalf("a refused deposit changed the ledger: %s → %s", before, after)
	}
	checkAll(t, s, led)
}

// TestPostJobBookFull: a job refused because the order book is full gets
// ErrBusy and leaves no escrow, no job and no account behind (it used to
// lock the escrow, store the job and fail unclassified).
func TestPostJobBookFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: t0}
	led := ledger.NewMemory(ledger.WithClock(clk.now))
	st := must(OpenStore(""))
	t.Cleanup(func() { st.Close(); led.Close() })
	s := must(New(ctx, led, st, append(testOptions(t, clk), WithBookOptions(market.WithMaxOrders(1)))...))
	must(s.RecordDeposit(ctx, Deposit{BankRef: "b1", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000}))
	must(s.RecordDeposit(ctx, Deposit{BankRef: "b2", Account: AccountRef{KindSolverBond, "gpu1"}, AmountMicroUSD: 100_000_000}))
	// An ask above the job's limit rests and fills the book.
	must(s.PostAsk(ctx, Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 9_000_000_000, Capacity: 1, TTL: time.Hour}))
	before := snapshot(t, led)
	_, err := s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: specJSON(t, 1), MaxPriceNanoUSDPerCU: 3_000_000_000})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("post on a full book: %v, want ErrBusy", err)
	}
	if after := snapshot(t, led); after != before {
		t.Fatalf("a refused job changed the ledger: %s → %s", before, after)
	}
	if js, err := s.Jobs(ctx, "acme"); err != nil || len(js) != 0 {
		t.Fatalf("a refused job was kept: %v %v", js, err)
	}
	checkAll(t, s, led)
}
