package market

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// OrderID identifies an ask or a bid. IDs are assigned in posting order,
// from 1, and are the time in price-time priority.
type OrderID uint64

// MatchID identifies a match, assigned in matching order from 1.
type MatchID uint64

// Kind says how an order is priced.
type Kind uint8

const (
	// Limit orders carry their own price: an ask's price, a bid's maximum.
	Limit Kind = 1
	// Market orders take the going price (see the package documentation).
	Market Kind = 2
)

// String returns "limit", "market" or "invalid(N)".
func (k Kind) String() string {
	switch k {
	case Limit:
		return "limit"
	case Market:
		return "market"
	}
	return fmt.Sprintf("invalid(%d)", uint8(k))
}

// Defaults and bounds.
const (
	// DefaultMaxPriceNanoUSDPerCU caps every price on a book unless
	// WithMaxPrice says otherwise: $1 per CU (10^9 nano-dollars), far above
	// GPU prices (an H100 at $2/h sells a CU for about 1,100 nano-dollars,
	// see the package documentation), low enough that a market bid's worst
	// case, max price × CU, fits an int64 of micro-dollars for jobs up to
	// 9.2·10^12 CU.
	DefaultMaxPriceNanoUSDPerCU int64 = 1_000_000_000
	// DefaultMaxOrders bounds the asks and bids a book holds at once.
	DefaultMaxOrders = 100_000
	// MaxIDLen bounds solver, client and job IDs.
	MaxIDLen = 256
	// MaxCapacity bounds an ask's capacity.
	MaxCapacity = 1 << 16
)

// Ask is a solver's offer to run jobs.
type Ask struct {
	SolverID string
	Kind     Kind
	// PriceNanoUSDPerCU is the limit price, 1..max price; zero for Market.
	PriceNanoUSDPerCU int64
	// Capacity is how many matched jobs the solver runs at once, ≥ 1.
	Capacity int
	// ExpiresAt is when the ask stops matching; it must be after now.
	ExpiresAt time.Time
}

// Bid is a client's request to run one job.
type Bid struct {
	ClientID string
	JobID    string
	// CU is the job's size in compute units, ≥ 1.
	CU   int64
	Kind Kind
	// MaxPriceNanoUSDPerCU is the most the client pays per CU, 1..max
	// price; zero for Market (which accepts up to the book's max price).
	MaxPriceNanoUSDPerCU int64
}

// Match is one job assigned to one solver.
type Match struct {
	ID       MatchID
	AskID    OrderID
	BidID    OrderID
	SolverID string
	ClientID string
	JobID    string
	CU       int64
	// PriceNanoUSDPerCU is the trade price: the ask's effective price.
	PriceNanoUSDPerCU int64
	// CostMicroUSD is PriceNanoUSDPerCU × CU in micro-dollars, rounded
	// down (PayMicroUSD); it never exceeds the bid's MaxCostMicroUSD.
	CostMicroUSD int64
}

// RestingAsk is an ask on the book and how many of its slots are in use.
type RestingAsk struct {
	ID OrderID
	Ask
	InUse int
}

// RestingBid is a bid waiting on the book.
type RestingBid struct {
	ID OrderID
	Bid
}

type config struct {
	maxPrice  int64
	refPrice  int64
	maxOrders int
}

// Option configures a Book.
type Option func(*config)

// WithMaxPrice caps every price on the book (default
// DefaultMaxPriceNanoUSDPerCU).
func WithMaxPrice(nanoUSDPerCU int64) Option { return func(c *config) { c.maxPrice = nanoUSDPerCU } }

// WithReferencePrice sets the initial reference price for market asks
// (default none); see Book.SetReferencePrice.
func WithReferencePrice(nanoUSDPerCU int64) Option {
	return func(c *config) { c.refPrice = nanoUSDPerCU }
}

// WithMaxOrders bounds the asks and bids the book holds at once (default
// DefaultMaxOrders).
func WithMaxOrders(n int) Option { return func(c *config) { c.maxOrders = n } }

// Book is an order book. It is safe for concurrent use; calls are
// serialised, and the result depends only on their order and on the
// clock's readings.
type Book struct {
	mu  sync.Mutex
	now func() time.Time
	cfg config

	lastOrder OrderID
	lastMatch MatchID

	asks       map[OrderID]*restingAsk
	limitAsks  []*restingAsk // by (price, id)
	marketAsks []*restingAsk // by id
	bids       []*restingBid // by priority: market first, max price desc, id asc
	bidsByID   map[OrderID]*restingBid
	bidJobs    map[string]OrderID
	inFlight   map[MatchID]OrderID // match → ask, until Release
}

type restingAsk struct {
	id OrderID
	Ask
	inUse int
}

type restingBid struct {
	id OrderID
	Bid
}

// NewBook returns an empty book reading the time from now.
func NewBook(now func() time.Time, opts ...Option) (*Book, error) {
	if now == nil {
		return nil, fmt.Errorf("%w: nil clock", ErrInvalidConfig)
	}
	c := config{maxPrice: DefaultMaxPriceNanoUSDPerCU, maxOrders: DefaultMaxOrders}
	for _, o := range opts {
		o(&c)
	}
	if c.maxPrice < 1 {
		return nil, fmt.Errorf("%w: max price %d", ErrInvalidConfig, c.maxPrice)
	}
	if c.refPrice < 0 || c.refPrice > c.maxPrice {
		return nil, fmt.Errorf("%w: reference price %d not in 0..%d", ErrInvalidConfig, c.refPrice, c.maxPrice)
	}
	if c.maxOrders < 1 {
		return nil, fmt.Errorf("%w: max orders %d", ErrInvalidConfig, c.maxOrders)
	}
	return &Book{
		now:      now,
		cfg:      c,
		asks:     make(map[OrderID]*restingAsk),
		bidsByID: make(map[OrderID]*restingBid),
		bidJobs:  make(map[string]OrderID),
		inFlight: make(map[MatchID]OrderID),
	}, nil
}

// MaxPriceNanoUSDPerCU returns the book's price cap.
func (b *Book) MaxPriceNanoUSDPerCU() int64 { return b.cfg.maxPrice }

// MaxCostMicroUSD validates bid and returns the most it can cost: its
// maximum price (the book's cap for a market bid) times its CU count,
// rounded up to whole micro-dollars (EscrowMicroUSD). It is what the
// client's escrow must hold before the bid is posted.
func (b *Book) MaxCostMicroUSD(bid Bid) (int64, error) {
	if err := checkID("client id", bid.ClientID); err != nil {
		return 0, err
	}
	if err := checkID("job id", bid.JobID); err != nil {
		return 0, err
	}
	if bid.CU < 1 {
		return 0, fmt.Errorf("%w: %d compute units", ErrInvalidOrder, bid.CU)
	}
	maxPrice, err := b.checkPrice(bid.Kind, bid.MaxPriceNanoUSDPerCU)
	if err != nil {
		return 0, err
	}
	return EscrowMicroUSD(maxPrice, bid.CU)
}

// PostAsk validates a and adds it to the book, then matches. It returns
// the ask's ID and the matches made (possibly involving other orders).
func (b *Book) PostAsk(a Ask) (OrderID, []Match, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if err := checkID("solver id", a.SolverID); err != nil {
		return 0, nil, err
	}
	if _, err := b.checkPrice(a.Kind, a.PriceNanoUSDPerCU); err != nil {
		return 0, nil, err
	}
	if a.Capacity < 1 || a.Capacity > MaxCapacity {
		return 0, nil, fmt.Errorf("%w: capacity %d not in 1..%d", ErrInvalidOrder, a.Capacity, MaxCapacity)
	}
	if !now.Before(a.ExpiresAt) {
		return 0, nil, fmt.Errorf("%w: expires %v, now %v", ErrExpired, a.ExpiresAt, now)
	}
	if err := b.checkRoom(); err != nil {
		return 0, nil, err
	}

	b.expire(now)
	b.lastOrder++
	ra := &restingAsk{id: b.lastOrder, Ask: a}
	b.asks[ra.id] = ra
	if a.Kind == Limit {
		i, _ := slices.BinarySearchFunc(b.limitAsks, ra, compareLimitAsks)
		b.limitAsks = slices.Insert(b.limitAsks, i, ra)
	} else {
		b.marketAsks = append(b.marketAsks, ra) // ids increase: stays sorted
	}
	return ra.id, b.match(now), nil
}

// PostBid validates bid (as MaxCostMicroUSD does, and that its job has no
// other waiting bid) and adds it to the book, then matches. A bid that
// finds no ask waits.
func (b *Book) PostBid(bid Bid) (OrderID, []Match, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if _, err := b.MaxCostMicroUSD(bid); err != nil {
		return 0, nil, err
	}
	if id, dup := b.bidJobs[bid.JobID]; dup {
		return 0, nil, fmt.Errorf("%w: job %s (order %d)", ErrDuplicateJob, bid.JobID, id)
	}
	if err := b.checkRoom(); err != nil {
		return 0, nil, err
	}

	b.expire(now)
	b.lastOrder++
	rb := &restingBid{id: b.lastOrder, Bid: bid}
	i, _ := slices.BinarySearchFunc(b.bids, rb, compareBids)
	b.bids = slices.Insert(b.bids, i, rb)
	b.bidsByID[rb.id] = rb
	b.bidJobs[bid.JobID] = rb.id
	return rb.id, b.match(now), nil
}

// Cancel removes a waiting bid or an ask from the book; jobs already
// matched to a cancelled ask keep running. Cancelling can change the
// market price, so it can make matches, which it returns.
func (b *Book) Cancel(id OrderID) ([]Match, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if _, ok := b.asks[id]; !ok {
		if _, ok := b.bidsByID[id]; !ok {
			return nil, fmt.Errorf("%w: %d", ErrUnknownOrder, id)
		}
	}
	b.expire(now)
	if ra, ok := b.asks[id]; ok {
		b.removeAsk(ra)
	} else if rb, ok := b.bidsByID[id]; ok {
		b.removeBid(rb)
	}
	// else: the ask expired just now; it is gone either way.
	return b.match(now), nil
}

// Release ends a match (the job settled, failed or was abandoned) and
// frees its slot on the ask if the ask is still on the book, then
// matches.
func (b *Book) Release(id MatchID) ([]Match, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	askID, ok := b.inFlight[id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownMatch, id)
	}
	b.expire(now)
	delete(b.inFlight, id)
	if ra, ok := b.asks[askID]; ok {
		ra.inUse--
	}
	return b.match(now), nil
}

// SetReferencePrice sets the price market asks take when no limit ask has
// free capacity (0 clears it), then matches. An operator might set it to
// a recent clearing price.
func (b *Book) SetReferencePrice(nanoUSDPerCU int64) ([]Match, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if nanoUSDPerCU < 0 || nanoUSDPerCU > b.cfg.maxPrice {
		return nil, fmt.Errorf("%w: reference price %d not in 0..%d", ErrInvalidOrder, nanoUSDPerCU, b.cfg.maxPrice)
	}
	now := b.now()
	b.expire(now)
	b.cfg.refPrice = nanoUSDPerCU
	return b.match(now), nil
}

// Expire removes expired asks and matches (the market price can change).
// Every other call does this first; call Expire on a timer to keep the
// book current when nothing else happens.
func (b *Book) Expire() []Match {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.expire(now)
	return b.match(now)
}

// Quote returns the price a market bid would pay now, if any ask could
// take it.
func (b *Book) Quote() (nanoUSDPerCU int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, price, ok := b.bestAsk(math.MaxInt64, b.now())
	return price, ok
}

// Asks returns the asks on the book in priority order (limit asks by
// price then ID, then market asks by ID), expired ones included until the
// next call removes them.
func (b *Book) Asks() []RestingAsk {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]RestingAsk, 0, len(b.asks))
	for _, ra := range slices.Concat(b.limitAsks, b.marketAsks) {
		out = append(out, RestingAsk{ID: ra.id, Ask: ra.Ask, InUse: ra.inUse})
	}
	return out
}

// Bids returns the waiting bids in priority order.
func (b *Book) Bids() []RestingBid {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]RestingBid, 0, len(b.bids))
	for _, rb := range b.bids {
		out = append(out, RestingBid{ID: rb.id, Bid: rb.Bid})
	}
	return out
}

// InFlight returns the number of matches not yet released.
func (b *Book) InFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.inFlight)
}

// match pairs the best waiting bid with the best ask it accepts until no
// pair remains. The best bid accepts every ask a lower-priority bid would,
// so when it finds none, no bid does.
func (b *Book) match(now time.Time) []Match {
	var out []Match
	for len(b.bids) > 0 {
		rb := b.bids[0]
		limit := rb.MaxPriceNanoUSDPerCU
		if rb.Kind == Market {
			limit = math.MaxInt64
		}
		ra, price, ok := b.bestAsk(limit, now)
		if !ok {
			break
		}
		// price ≤ the bid's max price (the book's cap for market bids), and
		// that times CU was checked when the bid was posted; rounding down
		// keeps the cost at or below the escrow, which rounds up.
		cost, err := PayMicroUSD(price, rb.CU)
		if err != nil {
			panic(fmt.Sprintf("market: validated bid overflows: %v", err))
		}
		b.removeBid(rb)
		ra.inUse++
		b.lastMatch++
		b.inFlight[b.lastMatch] = ra.id
		out = append(out, Match{
			ID: b.lastMatch, AskID: ra.id, BidID: rb.id,
			SolverID: ra.SolverID, ClientID: rb.ClientID, JobID: rb.JobID,
			CU: rb.CU, PriceNanoUSDPerCU: price, CostMicroUSD: cost,
		})
	}
	return out
}

// bestAsk returns the ask with free capacity and the lowest effective
// price at or below limit, ties broken by ID.
func (b *Book) bestAsk(limit int64, now time.Time) (*restingAsk, int64, bool) {
	var best *restingAsk
	var bestPrice int64
	// The first available limit ask is the best one and sets the market
	// price.
	marketPrice, haveMarketPrice := b.cfg.refPrice, b.cfg.refPrice > 0
	for _, ra := range b.limitAsks {
		if available(ra, now) {
			marketPrice, haveMarketPrice = ra.PriceNanoUSDPerCU, true
			if ra.PriceNanoUSDPerCU <= limit {
				best, bestPrice = ra, ra.PriceNanoUSDPerCU
			}
			break
		}
	}
	if haveMarketPrice && marketPrice <= limit {
		for _, ra := range b.marketAsks {
			if available(ra, now) {
				if best == nil || marketPrice < bestPrice || marketPrice == bestPrice && ra.id < best.id {
					best, bestPrice = ra, marketPrice
				}
				break
			}
		}
	}
	return best, bestPrice, best != nil
}

func available(ra *restingAsk, now time.Time) bool {
	return ra.inUse < ra.Capacity && now.Before(ra.ExpiresAt)
}

// expire removes asks whose expiry has come.
func (b *Book) expire(now time.Time) {
	for _, ra := range b.asks {
		if !now.Before(ra.ExpiresAt) {
			b.removeAsk(ra)
		}
	}
}

func (b *Book) removeAsk(ra *restingAsk) {
	delete(b.asks, ra.id)
	if ra.Kind == Limit {
		if i, ok := slices.BinarySearchFunc(b.limitAsks, ra, compareLimitAsks); ok {
			b.limitAsks = slices.Delete(b.limitAsks, i, i+1)
		}
	} else {
		if i, ok := slices.BinarySearchFunc(b.marketAsks, ra, func(x, y *restingAsk) int { return cmp.Compare(x.id, y.id) }); ok {
			b.marketAsks = slices.Delete(b.marketAsks, i, i+1)
		}
	}
}

func (b *Book) removeBid(rb *restingBid) {
	delete(b.bidsByID, rb.id)
	delete(b.bidJobs, rb.JobID)
	if i, ok := slices.BinarySearchFunc(b.bids, rb, compareBids); ok {
		b.bids = slices.Delete(b.bids, i, i+1)
	}
}

// Room reports ErrBookFull when the book holds its maximum number of
// orders, so that a caller can refuse a bid before committing anything to
// it (a PostBid right after, with no other post in between, then finds
// room).
func (b *Book) Room() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.checkRoom()
}

func (b *Book) checkRoom() error {
	if len(b.asks)+len(b.bids) >= b.cfg.maxOrders {
		return fmt.Errorf("%w: %d orders", ErrBookFull, b.cfg.maxOrders)
	}
	return nil
}

// checkPrice validates an order's kind and price and returns the highest
// price the order can trade at.
func (b *Book) checkPrice(k Kind, price int64) (int64, error) {
	switch k {
	case Limit:
		if price < 1 || price > b.cfg.maxPrice {
			return 0, fmt.Errorf("%w: price %d not in 1..%d", ErrInvalidOrder, price, b.cfg.maxPrice)
		}
		return price, nil
	case Market:
		if price != 0 {
			return 0, fmt.Errorf("%w: market order with price %d", ErrInvalidOrder, price)
		}
		return b.cfg.maxPrice, nil
	}
	return 0, fmt.Errorf("%w: kind %v", ErrInvalidOrder, k)
}

func checkID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s of length %d not in 1..%d", ErrInvalidOrder, what, len(id), MaxIDLen)
	}
	return nil
}

func compareLimitAsks(x, y *restingAsk) int {
	return cmp.Or(cmp.Compare(x.PriceNanoUSDPerCU, y.PriceNanoUSDPerCU), cmp.Compare(x.id, y.id))
}

// compareBids orders bids by priority: market bids first, then by maximum
// price, highest first, then by ID.
func compareBids(x, y *restingBid) int {
	xm, ym := x.Kind == Market, y.Kind == Market
	switch {
	case xm && !ym:
		return -1
	case !xm && ym:
		return 1
	}
	return cmp.Or(cmp.Compare(y.MaxPriceNanoUSDPerCU, x.MaxPriceNanoUSDPerCU), cmp.Compare(x.id, y.id))
}
