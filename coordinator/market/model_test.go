package market

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// model is a deliberately naive order book: plain slices, a full sort and
// a full scan for every match. The randomized test checks the Book
// against it call by call, and both against invariants that do not depend
// on how matching is implemented.
type model struct {
	now       time.Time
	maxPrice  int64
	ref       int64
	lastOrder OrderID
	lastMatch MatchID
	asks      []*mAsk
	bids      []*mBid
	inFlight  map[MatchID]OrderID
}

type mAsk struct {
	id OrderID
	Ask
	inUse int
	live  bool
}

type mBid struct {
	id OrderID
	Bid
	live bool
}

func (m *model) ask(id OrderID) *mAsk {
	for _, a := range m.asks {
		if a.id == id {
			return a
		}
	}
	return nil
}

func (m *model) available(a *mAsk) bool {
	return a.live && a.inUse < a.Capacity && m.now.Before(a.ExpiresAt)
}

func (m *model) expire() {
	for _, a := range m.asks {
		if a.live && !m.now.Before(a.ExpiresAt) {
			a.live = false
		}
	}
}

func (m *model) match() []Match {
	var out []Match
	for {
		var live []*mBid
		for _, b := range m.bids {
			if b.live {
				live = append(live, b)
			}
		}
		slices.SortStableFunc(live, func(x, y *mBid) int {
			// market first, then higher max, then lower id
			kx, ky := x.MaxPriceNanoUSDPerCU, y.MaxPriceNanoUSDPerCU
			if x.Kind == Market {
				kx = math.MaxInt64
			}
			if y.Kind == Market {
				ky = math.MaxInt64
			}
			if kx != ky {
				if kx > ky {
					return -1
				}
				return 1
			}
			return int(x.id) - int(y.id)
		})
		if len(live) == 0 {
			return out
		}
		bid := live[0]
		limit := bid.MaxPriceNanoUSDPerCU
		if bid.Kind == Market {
			limit = math.MaxInt64
		}
		marketPrice, ok := int64(0), false
		for _, a := range m.asks {
			if m.available(a) && a.Kind == Limit && (!ok || a.PriceNanoUSDPerCU < marketPrice) {
				marketPrice, ok = a.PriceNanoUSDPerCU, true
			}
		}
		if !ok && m.ref > 0 {
			marketPrice, ok = m.ref, true
		}
		var best *mAsk
		var bestPrice int64
		for _, a := range m.asks {
			if !m.available(a) {
				continue
			}
			p := a.PriceNanoUSDPerCU
			if a.Kind == Market {
				if !ok {
					continue
				}
				p = marketPrice
			}
			if p > limit {
				continue
			}
			if best == nil || p < bestPrice || p == bestPrice && a.id < best.id {
				best, bestPrice = a, p
			}
		}
		if best == nil {
			return out
		}
		bid.live = false
		best.inUse++
		m.lastMatch++
		m.inFlight[m.lastMatch] = best.id
		out = append(out, Match{
			ID: m.lastMatch, AskID: best.id, BidID: bid.id, SolverID: best.SolverID,
			ClientID: bid.ClientID, JobID: bid.JobID, CU: bid.CU,
			PriceNanoUSDPerCU: bestPrice, CostMicroUSD: modelCost(bestPrice, bid.CU),
		})
	}
}

// TestRandomizedAgainstModel runs seeded random sequences of every call
// against the Book and the model. Per call it checks that both agree on
// the error and the matches, and after every call that:
//   - no ask holds more jobs than its capacity, and in-use counts equal the
//     matches in flight;
//   - every match is within both limits (price ≤ bid max, ask's own price
//     for limit asks) and costs price × CU;
//   - the book is settled: the best waiting bid accepts no ask with free
//     capacity (so no lower bid does either).
//
// Price-time priority is checked by the agreement with the model, which
// picks each match by a full scan for the minimum (price, id).
func TestRandomizedAgainstModel(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 30
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runRandomized(t, seed, 300) })
	}
}

func runRandomized(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0xbe1a))
	const maxPrice = 12
	c := &clock{t: t0}
	book, err := NewBook(c.now, WithMaxPrice(maxPrice), WithMaxOrders(40))
	if err != nil {
		t.Fatal(err)
	}
	m := &model{now: t0, maxPrice: maxPrice, inFlight: map[MatchID]OrderID{}}
	matchesByID := map[MatchID]Match{}
	jobs := 0

	for step := range steps {
		var got, want []Match
		var gotErr, wantErr error
		var desc string
		switch op := rng.IntN(100); {
		case op < 30: // post an ask
			a := Ask{
				SolverID:  fmt.Sprintf("s%d", rng.IntN(5)),
				Kind:      Limit,
				Capacity:  1 + rng.IntN(3),
				ExpiresAt: c.t.Add(time.Duration(rng.IntN(20)) * time.Second),
			}
			if rng.IntN(4) == 0 {
				a.Kind = Market
			} else {
				a.PriceNanoUSDPerCU = int64(rng.IntN(maxPrice+2)) - 1 // sometimes invalid
			}
			if rng.IntN(20) == 0 {
				a.Capacity = 0
			}
			desc = fmt.Sprintf("PostAsk(%+v)", a)
			var id OrderID
			id, got, gotErr = book.PostAsk(a)
			switch {
			case a.Kind == Limit && (a.PriceNanoUSDPerCU < 1 || a.PriceNanoUSDPerCU > maxPrice), a.Capacity < 1:
				wantErr = ErrInvalidOrder
			case !c.t.Before(a.ExpiresAt):
				wantErr = ErrExpired
			case m.liveOrders() >= 40:
				wantErr = ErrBookFull
			default:
				m.expire()
				m.lastOrder++
				m.asks = append(m.asks, &mAsk{id: m.lastOrder, Ask: a, live: true})
				want = m.match()
				if id != m.lastOrder {
					t.Fatalf("step %d: ask id %d, want %d", step, id, m.lastOrder)
				}
			}
		case op < 65: // post a bid
			jobs++
			bid := Bid{ClientID: "c", JobID: fmt.Sprintf("j%d", jobs), CU: 1 + rng.Int64N(1000), Kind: Limit}
			if rng.IntN(4) == 0 {
				bid.Kind = Market
			} else {
				bid.MaxPriceNanoUSDPerCU = int64(rng.IntN(maxPrice + 1)) // 0 is invalid
			}
			if rng.IntN(30) == 0 {
				bid.CU = math.MaxInt64 / 5 // overflows at any price ≥ 6 and for market bids
			}
			if rng.IntN(30) == 0 && jobs > 1 {
				bid.JobID = fmt.Sprintf("j%d", jobs-1) // maybe still waiting
			}
			desc = fmt.Sprintf("PostBid(%+v)", bid)
			var id OrderID
			id, got, gotErr = book.PostBid(bid)
			worst := bid.MaxPriceNanoUSDPerCU
			if bid.Kind == Market {
				worst = maxPrice
			}
			_, overflow := EscrowMicroUSD(worst, bid.CU)
			switch {
			case bid.Kind == Limit && bid.MaxPriceNanoUSDPerCU < 1:
				wantErr = ErrInvalidOrder
			case overflow != nil:
				wantErr = ErrOverflow
			case m.waitingJob(bid.JobID):
				wantErr = ErrDuplicateJob
			case m.liveOrders() >= 40:
				wantErr = ErrBookFull
			default:
				m.expire()
				m.lastOrder++
				m.bids = append(m.bids, &mBid{id: m.lastOrder, Bid: bid, live: true})
				want = m.match()
				if id != m.lastOrder {
					t.Fatalf("step %d: bid id %d, want %d", step, id, m.lastOrder)
				}
			}
		case op < 75: // cancel, sometimes an unknown or dead order
			id := OrderID(rng.IntN(int(m.lastOrder) + 2))
			desc = fmt.Sprintf("Cancel(%d)", id)
			got, gotErr = book.Cancel(id)
			if !m.isLive(id) {
				wantErr = ErrUnknownOrder
			} else {
				m.expire()
				if a := m.ask(id); a != nil {
					a.live = false
				}
				for _, b := range m.bids {
					if b.id == id {
						b.live = false
					}
				}
				want = m.match()
			}
		case op < 88: // release, sometimes an unknown match
			id := MatchID(rng.IntN(int(m.lastMatch) + 2))
			desc = fmt.Sprintf("Release(%d)", id)
			got, gotErr = book.Release(id)
			askID, ok := m.inFlight[id]
			if !ok {
				wantErr = ErrUnknownMatch
			} else {
				m.expire()
				delete(m.inFlight, id)
				if a := m.ask(askID); a.live {
					a.inUse--
				}
				want = m.match()
			}
		case op < 93:
			p := int64(rng.IntN(maxPrice + 2))
			desc = fmt.Sprintf("SetReferencePrice(%d)", p)
			got, gotErr = book.SetReferencePrice(p)
			if p > maxPrice {
				wantErr = ErrInvalidOrder
			} else {
				m.expire()
				m.ref = p
				want = m.match()
			}
		default: // time passes
			c.t = c.t.Add(time.Duration(1+rng.IntN(5)) * time.Second)
			m.now = c.t
			desc = "Expire()"
			got = book.Expire()
			m.expire()
			want = m.match()
		}

		if !errors.Is(gotErr, wantErr) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("step %d %s: error %v, want %v", step, desc, gotErr, wantErr)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d %s:\n got matches %+v\nwant matches %+v", step, desc, got, want)
		}
		for _, mt := range got {
			matchesByID[mt.ID] = mt
		}
		checkInvariants(t, step, book, m, c.t, got)
	}
}

func (m *model) liveOrders() int {
	n := 0
	for _, a := range m.asks {
		if a.live {
			n++
		}
	}
	for _, b := range m.bids {
		if b.live {
			n++
		}
	}
	return n
}

func (m *model) waitingJob(job string) bool {
	for _, b := range m.bids {
		if b.live && b.JobID == job {
			return true
		}
	}
	return false
}

func (m *model) isLive(id OrderID) bool {
	if a := m.ask(id); a != nil && a.live {
		return true
	}
	for _, b := range m.bids {
		if b.id == id && b.live {
			return true
		}
	}
	return false
}

func checkInvariants(t *testing.T, step int, book *Book, m *model, now time.Time, ms []Match) {
	t.Helper()
	asks := book.Asks()
	inFlightByAsk := map[OrderID]int{}
	for _, askID := range m.inFlight {
		inFlightByAsk[askID]++
	}
	for _, ra := range asks {
		if ra.InUse < 0 || ra.InUse > ra.Capacity {
			t.Fatalf("step %d: ask %d holds %d jobs, capacity %d", step, ra.ID, ra.InUse, ra.Capacity)
		}
		if ra.InUse != inFlightByAsk[ra.ID] {
			t.Fatalf("step %d: ask %d in use %d, %d matches in flight", step, ra.ID, ra.InUse, inFlightByAsk[ra.ID])
		}
	}
	if book.InFlight() != len(m.inFlight) {
		t.Fatalf("step %d: %d in flight, model %d", step, book.InFlight(), len(m.inFlight))
	}
	for _, mt := range ms {
		var bid *mBid
		for _, b := range m.bids {
			if b.id == mt.BidID {
				bid = b
			}
		}
		a := m.ask(mt.AskID)
		if bid == nil || a == nil {
			t.Fatalf("step %d: match %+v names unknown orders", step, mt)
		}
		if bid.Kind == Limit && mt.PriceNanoUSDPerCU > bid.MaxPriceNanoUSDPerCU {
			t.Fatalf("step %d: match %+v above the bid's max %d", step, mt, bid.MaxPriceNanoUSDPerCU)
		}
		if a.Kind == Limit && mt.PriceNanoUSDPerCU != a.PriceNanoUSDPerCU {
			t.Fatalf("step %d: match %+v not at the limit ask's price %d", step, mt, a.PriceNanoUSDPerCU)
		}
		if mt.PriceNanoUSDPerCU < 1 || mt.PriceNanoUSDPerCU > m.maxPrice || mt.CostMicroUSD != modelCost(mt.PriceNanoUSDPerCU, mt.CU) {
			t.Fatalf("step %d: match %+v price or cost out of range", step, mt)
		}
	}
	// Settled: the best waiting bid accepts no available ask.
	bids := book.Bids()
	if len(bids) == 0 {
		return
	}
	best := bids[0]
	limit := best.MaxPriceNanoUSDPerCU
	if best.Kind == Market {
		limit = math.MaxInt64
	}
	marketPrice, ok := m.ref, m.ref > 0
	for _, ra := range asks { // limit asks first, by price
		if ra.Kind == Limit && ra.InUse < ra.Capacity && now.Before(ra.ExpiresAt) {
			marketPrice, ok = ra.PriceNanoUSDPerCU, true
			break
		}
	}
	for _, ra := range asks {
		if ra.InUse >= ra.Capacity || !now.Before(ra.ExpiresAt) {
			continue
		}
		if ra.Kind == Limit && ra.PriceNanoUSDPerCU <= limit || ra.Kind == Market && ok && marketPrice <= limit {
			t.Fatalf("step %d: book not settled: bid %+v could take ask %+v", step, best, ra)
		}
	}
}

// FuzzBookOps explores more operation sequences than the seeded test:
// the fuzzer picks the seed of the random sequence.
func FuzzBookOps(f *testing.F) {
	f.Add(uint64(1))
	f.Add(uint64(1 << 40))
	f.Fuzz(func(t *testing.T, seed uint64) { runRandomized(t, seed, 200) })
}

// modelCost is ⌊price × cu / 1000⌋ in exact arithmetic (-1 if it does not
// fit an int64).
func modelCost(price, cu int64) int64 {
	x := new(big.Int).Mul(big.NewInt(price), big.NewInt(cu))
	x.Quo(x, big.NewInt(1000))
	if !x.IsInt64() {
		return -1
	}
	return x.Int64()
}
