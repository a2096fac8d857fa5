package payout

import (
	"strconv"
)

// MicroUSDPerCent is the number of micro-dollars in one cent.
const MicroUSDPerCent int64 = 10_000

// MaxEntryCents is the largest amount one ACH entry can carry: the entry
// amount field has ten digits ($99,999,999.99).
const MaxEntryCents int64 = 9_999_999_999

// SplitCents splits a micro-dollar amount into whole cents (rounded down)
// and the sub-cent remainder, so that cents*MicroUSDPerCent + remainder ==
// microUSD and 0 <= remainder < MicroUSDPerCent. A zero or negative amount
// has nothing to pay: it returns (0, microUSD). It cannot overflow: it only
// divides.
func SplitCents(microUSD int64) (cents int64, remainderMicroUSD int64) {
	if microUSD <= 0 {
		return 0, microUSD
	}
	return microUSD / MicroUSDPerCent, microUSD % MicroUSDPerCent
}

// Payable decides what a payee with an earnings balance of balanceMicroUSD
// is paid in this schedule's runs. It pays whole cents, capped at
// MaxEntryCents (the excess waits for the next run), and only when that
// amount reaches the minimum payout and is at least one cent. Whatever is
// not paid, the sub-cent remainder included, stays in earnings:
// remainderMicroUSD == balanceMicroUSD - cents*MicroUSDPerCent always holds,
// and when ok is false cents is 0.
func (s *Schedule) Payable(balanceMicroUSD int64) (cents, remainderMicroUSD int64, ok bool) {
	cents, _ = SplitCents(balanceMicroUSD)
	cents = min(cents, MaxEntryCents)
	if cents < max(s.minimumCents, 1) {
		return 0, balanceMicroUSD, false
	}
	// cents*MicroUSDPerCent <= balanceMicroUSD, so neither step overflows.
	return cents, balanceMicroUSD - cents*MicroUSDPerCent, true
}

// FormatMicroUSD formats a micro-dollar amount as dollars with six
// decimals and no grouping: 12345678 → "12.345678", -5 → "-0.000005". It
// handles every int64, math.MinInt64 included.
func FormatMicroUSD(microUSD int64) string { return formatFixed(microUSD, 6) }

// FormatCents formats a cent amount as dollars with two decimals: 1050 →
// "10.50".
func FormatCents(cents int64) string { return formatFixed(cents, 2) }

// formatFixed formats v / 10^decimals exactly, with integer arithmetic.
func formatFixed(v int64, decimals int) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u // two's complement: correct for math.MinInt64 too
	}
	scale := uint64(1)
	for range decimals {
		scale *= 10
	}
	frac := strconv.FormatUint(u%scale, 10)
	buf := make([]byte, 0, 24+decimals)
	if neg {
		buf = append(buf, '-')
	}
	buf = strconv.AppendUint(buf, u/scale, 10)
	buf = append(buf, '.')
	for range decimals - len(frac) {
		buf = append(buf, '0')
	}
	return string(append(buf, frac...))
}
