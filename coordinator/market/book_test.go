package market

import (
	"errors"
	"math"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newTestBook(t *testing.T, opts ...Option) (*Book, *clock) {
	t.Helper()
	c := &clock{t: t0}
	b, err := NewBook(c.now, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

func limitAsk(solver string, price int64, capacity int) Ask {
	return Ask{SolverID: solver, Kind: Limit, PriceNanoUSDPerCU: price, Capacity: capacity, ExpiresAt: t0.Add(time.Hour)}
}

func marketAsk(solver string, capacity int) Ask {
	return Ask{SolverID: solver, Kind: Market, Capacity: capacity, ExpiresAt: t0.Add(time.Hour)}
}

func limitBid(job string, maxPrice, cu int64) Bid {
	return Bid{ClientID: "client", JobID: job, CU: cu, Kind: Limit, MaxPriceNanoUSDPerCU: maxPrice}
}

func marketBid(job string, cu int64) Bid {
	return Bid{ClientID: "client", JobID: job, CU: cu, Kind: Market}
}

func mustAsk(t *testing.T, b *Book, a Ask) (OrderID, []Match) {
	t.Helper()
	id, ms, err := b.PostAsk(a)
	if err != nil {
		t.Fatal(err)
	}
	return id, ms
}

func mustBid(t *testing.T, b *Book, bid Bid) (OrderID, []Match) {
	t.Helper()
	id, ms, err := b.PostBid(bid)
	if err != nil {
		t.Fatal(err)
	}
	return id, ms
}

func wantMatch(t *testing.T, ms []Match, solver, job string, price int64) Match {
	t.Helper()
	if len(ms) != 1 {
		t.Fatalf("%d matches %+v, want 1 (%s ← %s at %d)", len(ms), ms, solver, job, price)
	}
	m := ms[0]
	if m.SolverID != solver || m.JobID != job || m.PriceNanoUSDPerCU != price || m.CostMicroUSD != price*m.CU/NanoPerMicro {
		t.Fatalf("match %+v, want %s ← %s at %d", m, solver, job, price)
	}
	return m
}

func TestLimitMatchingAtAskPrice(t *testing.T) {
	b, _ := newTestBook(t)
	mustAsk(t, b, limitAsk("s-7", 7, 1))
	mustAsk(t, b, limitAsk("s-5", 5, 1))
	mustAsk(t, b, limitAsk("s-6", 6, 1))
	// The bid's maximum is a cap; it pays the ask's price.
	_, ms := mustBid(t, b, limitBid("j1", 10, 1000))
	m := wantMatch(t, ms, "s-5", "j1", 5)
	if m.CostMicroUSD != 5 { // 5 n$ × 1000 CU
		t.Fatalf("cost %d", m.CostMicroUSD)
	}
	_, ms = mustBid(t, b, limitBid("j2", 6, 1000))
	wantMatch(t, ms, "s-6", "j2", 6)
	// Below every remaining ask: waits, then takes a new cheaper ask at its price.
	_, ms = mustBid(t, b, limitBid("j3", 4, 1000))
	if len(ms) != 0 {
		t.Fatalf("bid below the asks matched: %+v", ms)
	}
	_, ms = mustAsk(t, b, limitAsk("s-3", 3, 1))
	wantMatch(t, ms, "s-3", "j3", 3)
}

func TestTimePriority(t *testing.T) {
	b, _ := newTestBook(t)
	mustAsk(t, b, limitAsk("first", 5, 1))
	mustAsk(t, b, limitAsk("second", 5, 1))
	_, ms := mustBid(t, b, limitBid("j1", 5, 1))
	wantMatch(t, ms, "first", "j1", 5)
	_, ms = mustBid(t, b, limitBid("j2", 5, 1))
	wantMatch(t, ms, "second", "j2", 5)
}

func TestBidPriority(t *testing.T) {
	b, _ := newTestBook(t)
	mustBid(t, b, limitBid("low", 5, 1))
	mustBid(t, b, limitBid("high", 9, 1))
	mustBid(t, b, limitBid("high-later", 9, 1))
	mustBid(t, b, marketBid("market", 1))
	want := []string{"market", "high", "high-later", "low"}
	for i, rb := range b.Bids() {
		if rb.JobID != want[i] {
			t.Fatalf("bid %d is %s, want %s", i, rb.JobID, want[i])
		}
	}
	_, ms := mustAsk(t, b, limitAsk("s", 5, 3))
	if len(ms) != 3 || ms[0].JobID != "market" || ms[1].JobID != "high" || ms[2].JobID != "high-later" {
		t.Fatalf("matches %+v", ms)
	}
	for _, m := range ms {
		if m.PriceNanoUSDPerCU != 5 {
			t.Fatalf("price %d, want the ask's 5", m.PriceNanoUSDPerCU)
		}
	}
}

func TestMarketBidWaits(t *testing.T) {
	b, _ := newTestBook(t)
	_, ms := mustBid(t, b, marketBid("j1", 100))
	if len(ms) != 0 {
		t.Fatalf("matched with no asks: %+v", ms)
	}
	// A market ask without a price source cannot serve it either.
	_, ms = mustAsk(t, b, marketAsk("m", 1))
	if len(ms) != 0 {
		t.Fatalf("matched without a price: %+v", ms)
	}
	if _, ok := b.Quote(); ok {
		t.Fatal("quote without a price")
	}
	// A reference price gives the market ask a price.
	ms, err := b.SetReferencePrice(4)
	if err != nil {
		t.Fatal(err)
	}
	wantMatch(t, ms, "m", "j1", 4)
}

func TestMarketAskFollowsBestLimit(t *testing.T) {
	b, _ := newTestBook(t, WithReferencePrice(2))
	mustAsk(t, b, marketAsk("m", 2))
	mustAsk(t, b, limitAsk("l8", 8, 1))
	mustAsk(t, b, limitAsk("l6", 6, 1))
	if q, ok := b.Quote(); !ok || q != 6 {
		t.Fatalf("quote %d %v, want 6", q, ok)
	}
	// The market ask is priced at the best limit ask (6) and was posted
	// first, so it wins the tie.
	_, ms := mustBid(t, b, limitBid("j1", 6, 1))
	wantMatch(t, ms, "m", "j1", 6)
	// A bid below 6 matches nothing: the market ask is at 6 too, not at the
	// reference price.
	_, ms = mustBid(t, b, limitBid("j2", 5, 1))
	if len(ms) != 0 {
		t.Fatalf("matched below the market price: %+v", ms)
	}
	// Cancel the limit asks: the market price falls back to the reference
	// price (2), and the waiting bid matches the market ask's second slot.
	asks := b.Asks()
	for _, ra := range asks {
		if ra.Kind == Limit && ra.SolverID == "l8" {
			if _, err := b.Cancel(ra.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	var l6 OrderID
	for _, ra := range asks {
		if ra.SolverID == "l6" {
			l6 = ra.ID
		}
	}
	ms, err := b.Cancel(l6)
	if err != nil {
		t.Fatal(err)
	}
	wantMatch(t, ms, "m", "j2", 2)
}

func TestMarketAskSkipsFullLimitAsk(t *testing.T) {
	b, _ := newTestBook(t)
	mustAsk(t, b, limitAsk("l5", 5, 1))
	mustAsk(t, b, limitAsk("l9", 9, 1))
	mustAsk(t, b, marketAsk("m", 5))
	_, ms := mustBid(t, b, limitBid("j1", 5, 1))
	wantMatch(t, ms, "l5", "j1", 5) // l5 posted before m
	// l5 is full: the market price is now l9's 9.
	_, ms = mustBid(t, b, marketBid("j2", 1))
	wantMatch(t, ms, "l9", "j2", 9)
	_, ms = mustBid(t, b, marketBid("j3", 1))
	if len(ms) != 0 {
		t.Fatalf("market ask priced with no limit ask free and no reference: %+v", ms)
	}
}

func TestCapacityAndRelease(t *testing.T) {
	b, _ := newTestBook(t)
	mustAsk(t, b, limitAsk("s", 5, 2))
	_, ms1 := mustBid(t, b, limitBid("j1", 5, 1))
	mustBid(t, b, limitBid("j2", 5, 1))
	_, ms := mustBid(t, b, limitBid("j3", 5, 1))
	if len(ms) != 0 {
		t.Fatalf("ask matched beyond capacity: %+v", ms)
	}
	if got := b.Asks()[0].InUse; got != 2 {
		t.Fatalf("in use %d", got)
	}
	ms, err := b.Release(ms1[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	wantMatch(t, ms, "s", "j3", 5)
	if _, err := b.Release(ms1[0].ID); !errors.Is(err, ErrUnknownMatch) {
		t.Fatalf("double release: %v", err)
	}
	if b.InFlight() != 2 {
		t.Fatalf("in flight %d", b.InFlight())
	}
}

func TestExpiry(t *testing.T) {
	b, c := newTestBook(t)
	a := limitAsk("s", 5, 1)
	a.ExpiresAt = t0.Add(time.Minute)
	_, ms := mustAsk(t, b, a)
	if len(ms) != 0 {
		t.Fatal("matched nothing")
	}
	c.t = t0.Add(time.Minute) // expiry is exclusive
	_, ms = mustBid(t, b, limitBid("j1", 5, 1))
	if len(ms) != 0 {
		t.Fatalf("expired ask matched: %+v", ms)
	}
	if len(b.Asks()) != 0 {
		t.Fatal("expired ask still on the book")
	}
	a.ExpiresAt = c.t
	if _, _, err := b.PostAsk(a); !errors.Is(err, ErrExpired) {
		t.Fatalf("post expired: %v", err)
	}
}

func TestExpiryLowersMarketPrice(t *testing.T) {
	b, c := newTestBook(t, WithReferencePrice(3))
	short := limitAsk("l7", 7, 1)
	short.ExpiresAt = t0.Add(time.Minute)
	mustAsk(t, b, short)
	mustAsk(t, b, marketAsk("m", 1))
	mustBid(t, b, limitBid("j1", 4, 1))
	c.t = t0.Add(time.Minute)
	wantMatch(t, b.Expire(), "m", "j1", 3)
}

func TestCancel(t *testing.T) {
	b, _ := newTestBook(t)
	askID, _ := mustAsk(t, b, limitAsk("s", 5, 1))
	bidID, _ := mustBid(t, b, limitBid("j1", 4, 1))
	if _, err := b.Cancel(bidID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cancel(bidID); !errors.Is(err, ErrUnknownOrder) {
		t.Fatalf("cancel twice: %v", err)
	}
	// The job can be bid again once its bid is gone.
	mustBid(t, b, limitBid("j1", 3, 1))
	_, ms := mustBid(t, b, limitBid("j2", 5, 1))
	m := wantMatch(t, ms, "s", "j2", 5)
	// Cancelling an ask with a job in flight leaves the match in flight.
	if _, err := b.Cancel(askID); err != nil {
		t.Fatal(err)
	}
	if b.InFlight() != 1 {
		t.Fatal("match lost")
	}
	if _, err := b.Release(m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cancel(999); !errors.Is(err, ErrUnknownOrder) {
		t.Fatalf("cancel unknown: %v", err)
	}
}

func TestRejectsLeaveBookUnchanged(t *testing.T) {
	b, _ := newTestBook(t, WithMaxPrice(1000))
	mustAsk(t, b, limitAsk("s", 500, 1))
	mustBid(t, b, limitBid("waiting", 100, 1))
	before := len(b.Asks()) + len(b.Bids())

	asks := map[string]Ask{
		"zero price":        limitAsk("s", 0, 1),
		"negative price":    limitAsk("s", -5, 1),
		"price over max":    limitAsk("s", 1001, 1),
		"market with price": {SolverID: "s", Kind: Market, PriceNanoUSDPerCU: 5, Capacity: 1, ExpiresAt: t0.Add(time.Hour)},
		"zero capacity":     limitAsk("s", 5, 0),
		"huge capacity":     limitAsk("s", 5, MaxCapacity+1),
		"no solver":         limitAsk("", 5, 1),
		"no kind":           {SolverID: "s", PriceNanoUSDPerCU: 5, Capacity: 1, ExpiresAt: t0.Add(time.Hour)},
		"expired":           {SolverID: "s", Kind: Limit, PriceNanoUSDPerCU: 5, Capacity: 1, ExpiresAt: t0},
	}
	for name, a := range asks {
		if _, _, err := b.PostAsk(a); err == nil {
			t.Errorf("ask %s accepted", name)
		}
	}
	bids := map[string]struct {
		bid  Bid
		want error
	}{
		"zero max":            {limitBid("j", 0, 1), ErrInvalidOrder},
		"negative max":        {limitBid("j", -1, 1), ErrInvalidOrder},
		"zero cu":             {limitBid("j", 5, 0), ErrInvalidOrder},
		"negative cu":         {limitBid("j", 5, -10), ErrInvalidOrder},
		"market with max":     {Bid{ClientID: "c", JobID: "j", CU: 1, Kind: Market, MaxPriceNanoUSDPerCU: 3}, ErrInvalidOrder},
		"duplicate job":       {limitBid("waiting", 600, 1), ErrDuplicateJob},
		"no job":              {limitBid("", 5, 1), ErrInvalidOrder},
		"no client":           {Bid{JobID: "j", CU: 1, Kind: Limit, MaxPriceNanoUSDPerCU: 5}, ErrInvalidOrder},
		"over the book's max": {limitBid("j", 1001, 1), ErrInvalidOrder},
	}
	for name, tt := range bids {
		if _, _, err := b.PostBid(tt.bid); !errors.Is(err, tt.want) {
			t.Errorf("bid %s: error %v, want %v", name, err, tt.want)
		}
	}
	if _, err := b.SetReferencePrice(1001); err == nil {
		t.Error("reference price over max accepted")
	}
	if got := len(b.Asks()) + len(b.Bids()); got != before {
		t.Fatalf("rejected orders changed the book: %d orders, want %d", got, before)
	}
	// At 1000 n$/CU nothing overflows (the cost is at most MaxInt64 µ$);
	// above it, a bid whose worst case does not fit is refused.
	if _, err := b.MaxCostMicroUSD(limitBid("j", 1000, math.MaxInt64)); err != nil {
		t.Errorf("largest bid: %v", err)
	}
	big, _ := newTestBook(t, WithMaxPrice(10_000))
	for name, bid := range map[string]Bid{"limit overflow": limitBid("j", 1001, math.MaxInt64), "market overflow": marketBid("j", math.MaxInt64/5)} {
		if _, _, err := big.PostBid(bid); !errors.Is(err, ErrOverflow) {
			t.Errorf("bid %s: error %v, want %v", name, err, ErrOverflow)
		}
	}
	// Rejections consume no order IDs: the next order gets ID 3.
	id, _ := mustBid(t, b, limitBid("next", 1, 1))
	if id != 3 {
		t.Fatalf("next order id %d, want 3", id)
	}
	// The largest bid that fits is accepted.
	if _, _, err := b.PostBid(limitBid("fits", 1000, math.MaxInt64/1000)); err != nil {
		t.Fatal(err)
	}
}

func TestBookFull(t *testing.T) {
	b, _ := newTestBook(t, WithMaxOrders(2))
	mustBid(t, b, limitBid("a", 1, 1))
	mustAsk(t, b, limitAsk("s", 5, 1))
	if _, _, err := b.PostBid(limitBid("c", 1, 1)); !errors.Is(err, ErrBookFull) {
		t.Fatalf("third order: %v", err)
	}
}

func TestNewBookRejects(t *testing.T) {
	now := func() time.Time { return t0 }
	for name, f := range map[string]func() (*Book, error){
		"nil clock":       func() (*Book, error) { return NewBook(nil) },
		"zero max price":  func() (*Book, error) { return NewBook(now, WithMaxPrice(0)) },
		"ref over max":    func() (*Book, error) { return NewBook(now, WithMaxPrice(5), WithReferencePrice(6)) },
		"negative ref":    func() (*Book, error) { return NewBook(now, WithReferencePrice(-1)) },
		"zero max orders": func() (*Book, error) { return NewBook(now, WithMaxOrders(0)) },
	} {
		if _, err := f(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAmountMicroUSD(t *testing.T) {
	t.Parallel()
	tests := []struct {
		price, cu, num, den int64
		up, down            int64
		err                 error
	}{
		{0, 0, 1, 1, 0, 0, nil},
		{5, 7, 1, 1, 1, 0, nil},                       // 35 n$: escrow 1 µ$, pay 0
		{1000, 7, 1, 1, 7, 7, nil},                    // exact
		{560, 1_000_000, 1, 1, 560_000, 560_000, nil}, // an H100's CU, under 1 µ$
		{561, 3, 1, 1, 2, 1, nil},                     // 1683 n$
		{2_000, 10, 3, 7, 9, 8, nil},                  // 8571.4 n$
		{math.MaxInt64, 1000, 1, 1, math.MaxInt64, math.MaxInt64, nil},
		{math.MaxInt64, 1001, 1, 1, 0, 0, ErrOverflow},
		{1 << 40, 1 << 40, 1 << 40, 1 << 40, 0, 0, ErrOverflow},
		{-1, 5, 1, 1, 0, 0, ErrInvalidOrder},
		{1, 5, 1, 0, 0, 0, ErrInvalidOrder},
	}
	for _, tt := range tests {
		up, err := AmountMicroUSD(tt.price, tt.cu, tt.num, tt.den, Up)
		if up != tt.up || !errors.Is(err, tt.err) {
			t.Errorf("AmountMicroUSD(%d, %d, %d/%d, Up) = %d, %v; want %d, %v", tt.price, tt.cu, tt.num, tt.den, up, err, tt.up, tt.err)
		}
		down, err := AmountMicroUSD(tt.price, tt.cu, tt.num, tt.den, Down)
		if down != tt.down || !errors.Is(err, tt.err) {
			t.Errorf("AmountMicroUSD(%d, %d, %d/%d, Down) = %d, %v; want %d, %v", tt.price, tt.cu, tt.num, tt.den, down, err, tt.down, tt.err)
		}
	}
	if _, err := NanoFromMicro(math.MaxInt64 / 999); !errors.Is(err, ErrOverflow) {
		t.Errorf("NanoFromMicro overflow: %v", err)
	}
}

// TestSubMicroPrice: a price below one micro-dollar per CU trades, and the
// match costs the exact amount rounded down, under the bid's escrow
// (rounded up).
func TestSubMicroPrice(t *testing.T) {
	t.Parallel()
	b, _ := newTestBook(t)
	mustAsk(t, b, limitAsk("h100", 561, 1))
	bid := limitBid("j", 700, 1_234_567)
	escrow, err := b.MaxCostMicroUSD(bid)
	if err != nil || escrow != 864_197 { // ⌈700 × 1,234,567 / 1000⌉ = ⌈864,196.9⌉
		t.Fatalf("escrow %d, %v", escrow, err)
	}
	_, ms := mustBid(t, b, bid)
	m := wantMatch(t, ms, "h100", "j", 561)
	if m.CostMicroUSD != 692_592 || m.CostMicroUSD > escrow { // ⌊692,592.087⌋
		t.Fatalf("cost %d", m.CostMicroUSD)
	}
}
