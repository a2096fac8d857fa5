package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
)

// The operator's overview of the whole coordinator — every ledger account
// with its balances, whether the ledger's invariants hold, the payout runs,
// the market's going rate — read-only views for the API's operator
// endpoints and the web console that sits on them.

// AccountBalance is one ledger account, named as the API names accounts.
type AccountBalance struct {
	// Account is "kind:party" ("platform_fees" for platform accounts; an
	// escrow account's party is the first 32 hex digits of its job ID).
	Account string `json:"account"`
	Kind    Kind   `json:"kind"`
	Party   string `json:"party,omitempty"`
	// BalanceMicroUSD is credits posted − debits posted; PendingMicroUSD
	// the debits and credits reserved by pending transfers.
	BalanceMicroUSD int64 `json:"balance_micro_usd"`
	PendingMicroUSD int64 `json:"pending_micro_usd"`
}

// kindOfCode names a ledger account code.
func kindOfCode(c ledger.AccountCode) Kind {
	for k, code := range kindCodes {
		if code == c {
			return k
		}
	}
	return Kind(fmt.Sprintf("code_%d", c))
}

// Accounts lists every ledger account with its balances, in ledger ID
// order.
func (s *Service) Accounts(ctx context.Context) ([]AccountBalance, error) {
	var out []AccountBalance
	err := s.led.ScanAccounts(ctx, func(a ledger.Account) error {
		k := kindOfCode(a.Code)
		party := string(bytes.TrimRight(a.UserData[:], "\x00"))
		ref := AccountRef{Kind: k, Party: party}
		out = append(out, AccountBalance{Account: ref.String(), Kind: k, Party: party,
			BalanceMicroUSD: a.CreditBalanceMicroUSD(), PendingMicroUSD: a.DebitsPendingMicroUSD + a.CreditsPendingMicroUSD})
		return ctx.Err()
	})
	if err != nil {
		return nil, ledgerError(err)
	}
	return out, nil
}

// verifier is a ledger that checks its invariants in a consistent snapshot
// while writers run (ledger.Badger, ledger.Memory).
type verifier interface {
	Verify(ctx context.Context) error
}

// CheckLedger checks the ledger's invariants (ledger.CheckInvariants: every
// debit has its credit, balances replay from the journal, no account
// breaks its flags) in a snapshot: nil when they hold, else the violation.
// The error is the check's finding, not a failure to run it, unless ctx
// ended.
func (s *Service) CheckLedger(ctx context.Context) error {
	if v, ok := s.led.(verifier); ok {
		return v.Verify(ctx)
	}
	return ledger.CheckInvariants(ctx, s.led)
}

// PayoutRuns returns every stored payout run, newest period first, without
// their ACH files (PayoutRun has them).
func (s *Service) PayoutRuns(ctx context.Context) ([]Run, error) {
	var runs []Run
	err := s.store.scan("run/", func(key string, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var r Run
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		r.ACH = nil
		runs = append(runs, r)
		return nil
	})
	slices.Reverse(runs) // keys are run/YYYY-MM-DD
	return runs, err
}

// Market is the market's state as a solver choosing its price sees it.
type Market struct {
	// BestAskNanoUSDPerCU is the price a market order would trade at now
	// (the lowest ask on the book), 0 when no solver is asking.
	BestAskNanoUSDPerCU int64 `json:"best_ask_nano_usd_per_cu,omitempty"`
	// Asks counts the asks resting on the book.
	Asks int `json:"asks"`
	// GoingRateNanoUSDPerCU is the median trade price of the last
	// RecentTrades jobs matched (0 before the first trade), Trades how many
	// that median is over.
	GoingRateNanoUSDPerCU int64 `json:"going_rate_nano_usd_per_cu,omitempty"`
	Trades                int   `json:"trades"`
	// CapNanoUSDPerCU is the book's price cap: what a market order is
	// escrowed at.
	CapNanoUSDPerCU int64     `json:"cap_nano_usd_per_cu"`
	At              time.Time `json:"at"`
}

// RecentTrades is how many of the newest trades the going rate is the
// median of.
const RecentTrades = 50

// goingRateTTL is how long a computed going rate is reused: it scans every
// job, and a page polled by many visitors must not scan per request.
const goingRateTTL = 5 * time.Second

// goingRate caches the going rate (Market).
type goingRate struct {
	mu     sync.Mutex
	at     time.Time
	price  int64
	trades int
}

// Market returns the book's best ask and the going rate of recent trades
// (recomputed at most every goingRateTTL).
func (s *Service) Market(ctx context.Context) (*Market, error) {
	now := s.cfg.now()
	m := &Market{Asks: len(s.book.Asks()), CapNanoUSDPerCU: s.book.MaxPriceNanoUSDPerCU(), At: now.UTC()}
	if p, ok := s.book.Quote(); ok {
		m.BestAskNanoUSDPerCU = p
	}
	gr := &s.rate
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if !gr.at.IsZero() && now.Sub(gr.at) >= 0 && now.Sub(gr.at) < goingRateTTL {
		m.GoingRateNanoUSDPerCU, m.Trades = gr.price, gr.trades
		return m, nil
	}
	if err := s.goingRate(ctx, m); err != nil {
		return nil, err
	}
	gr.at, gr.price, gr.trades = now, m.GoingRateNanoUSDPerCU, m.Trades
	return m, nil
}

// goingRate sets m's going rate from the jobs' trade prices.
func (s *Service) goingRate(ctx context.Context, m *Market) error {
	jobs, err := s.Jobs(ctx, "")
	if err != nil {
		return err
	}
	type trade struct {
		at    time.Time
		price int64
	}
	var ts []trade
	for _, j := range jobs {
		if j.PriceNanoUSDPerCU > 0 && len(j.History) > 0 {
			ts = append(ts, trade{j.History[len(j.History)-1].At, j.PriceNanoUSDPerCU})
		}
	}
	slices.SortFunc(ts, func(a, b trade) int { return b.at.Compare(a.at) })
	if len(ts) > RecentTrades {
		ts = ts[:RecentTrades]
	}
	if len(ts) > 0 {
		ps := make([]int64, len(ts))
		for i, t := range ts {
			ps[i] = t.price
		}
		slices.Sort(ps)
		m.GoingRateNanoUSDPerCU, m.Trades = ps[len(ps)/2], len(ps)
	}
	return nil
}
