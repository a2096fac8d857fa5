package market

import "errors"

var (
	// ErrInvalidOrder reports an order with a bad field: empty or long IDs,
	// a price outside 1..max (or a price on a market order), a capacity or
	// CU count below one, an unknown kind.
	ErrInvalidOrder = errors.New("market: invalid order")
	// ErrOverflow reports a price × CU product that does not fit an int64.
	ErrOverflow = errors.New("market: price times compute units overflows")
	// ErrExpired reports an ask whose expiry is not after now.
	ErrExpired = errors.New("market: order already expired")
	// ErrDuplicateJob reports a bid for a job that already has a waiting
	// bid.
	ErrDuplicateJob = errors.New("market: job already has a waiting bid")
	// ErrBookFull reports a book holding its maximum number of orders.
	ErrBookFull = errors.New("market: book full")
	// ErrUnknownOrder reports an order ID that is not on the book (never
	// posted, matched, cancelled or expired).
	ErrUnknownOrder = errors.New("market: unknown order")
	// ErrUnknownMatch reports a match ID that is not in flight.
	ErrUnknownMatch = errors.New("market: unknown match")
	// ErrInvalidConfig reports a bad book option.
	ErrInvalidConfig = errors.New("market: invalid configuration")
)
