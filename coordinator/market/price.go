package market

import (
	"fmt"
	"math/big"
)

// NanoPerMicro is the number of nano-dollars in a micro-dollar: prices are
// nano-dollars per CU, ledger amounts micro-dollars.
const NanoPerMicro = 1000

// Rounding says which way an amount is rounded to whole micro-dollars.
type Rounding bool

const (
	// Down rounds toward zero: what a payee is paid (the payer never pays
	// more than the exact price).
	Down Rounding = false
	// Up rounds away from zero: what an escrow holds (it always covers the
	// exact price).
	Up Rounding = true
)

// AmountMicroUSD returns price × cu × num / den in whole micro-dollars,
// rounded as r says, for a price in nano-dollars per CU. It fails with
// ErrInvalidOrder on a negative factor or a den below 1, and with
// ErrOverflow when the result does not fit an int64. The product is
// computed exactly (math/big), so no factor order or size loses a digit.
func AmountMicroUSD(priceNanoUSDPerCU, cu, num, den int64, r Rounding) (int64, error) {
	if priceNanoUSDPerCU < 0 || cu < 0 || num < 0 || den < 1 {
		return 0, fmt.Errorf("%w: amount of %d n$/CU × %d CU × %d/%d", ErrInvalidOrder, priceNanoUSDPerCU, cu, num, den)
	}
	x := new(big.Int).Mul(big.NewInt(priceNanoUSDPerCU), big.NewInt(cu))
	x.Mul(x, big.NewInt(num))
	d := new(big.Int).Mul(big.NewInt(den), big.NewInt(NanoPerMicro))
	q, m := x.QuoRem(x, d, new(big.Int))
	if r == Up && m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("%w: %d n$/CU × %d CU × %d/%d", ErrOverflow, priceNanoUSDPerCU, cu, num, den)
	}
	return q.Int64(), nil
}

// EscrowMicroUSD returns ⌈price × cu / 1000⌉: what an escrow holds for cu
// compute units at a price in nano-dollars per CU.
func EscrowMicroUSD(priceNanoUSDPerCU, cu int64) (int64, error) {
	return AmountMicroUSD(priceNanoUSDPerCU, cu, 1, 1, Up)
}

// PayMicroUSD returns ⌊price × cu / 1000⌋: what a payee is paid for cu
// compute units at a price in nano-dollars per CU. It never exceeds
// EscrowMicroUSD at that price or any higher one.
func PayMicroUSD(priceNanoUSDPerCU, cu int64) (int64, error) {
	return AmountMicroUSD(priceNanoUSDPerCU, cu, 1, 1, Down)
}

// NanoFromMicro converts a price in micro-dollars per CU (the unit of
// earlier versions' job records) to nano-dollars per CU, or
// fails with ErrOverflow.
func NanoFromMicro(microUSDPerCU int64) (int64, error) {
	if microUSDPerCU > (1<<63-1)/NanoPerMicro || microUSDPerCU < -(1<<63-1)/NanoPerMicro {
		return 0, fmt.Errorf("%w: %d micro-dollars per CU in nano-dollars", ErrOverflow, microUSDPerCU)
	}
	return microUSDPerCU * NanoPerMicro, nil
}
