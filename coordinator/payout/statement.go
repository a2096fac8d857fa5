package payout

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// LineKind classifies a statement line.
type LineKind uint8

const (
	// Accrual is earnings credited (a settled job); its amount is positive.
	Accrual LineKind = 1
	// PayoutLine is money sent to the bank; its amount is negative.
	PayoutLine LineKind = 2
	// Slash is a bond slashed against earnings; its amount is negative.
	Slash LineKind = 3
	// Adjustment is a correction; its amount is nonzero, of either sign.
	Adjustment LineKind = 4
)

// String returns "accrual", "payout", "slash", "adjustment" or
// "invalid(N)".
func (k LineKind) String() string {
	switch k {
	case Accrual:
		return "accrual"
	case PayoutLine:
		return "payout"
	case Slash:
		return "slash"
	case Adjustment:
		return "adjustment"
	}
	return fmt.Sprintf("invalid(%d)", uint8(k))
}

// StatementLine is one movement of a payee's earnings balance.
type StatementLine struct {
	At   time.Time
	Kind LineKind
	// Ref points at the source: a job ID, a ledger transfer ID.
	Ref string
	// AmountMicroUSD is the signed effect on the balance: positive for
	// accruals, negative for payouts and slashes.
	AmountMicroUSD int64
}

// Statement is a payee's earnings statement for one period. It is pure
// data: the caller fills it from the ledger, and Validate checks that the
// lines lead from the opening to the closing balance.
type Statement struct {
	PayeeID                string
	Period                 Period
	OpeningBalanceMicroUSD int64
	Lines                  []StatementLine
	ClosingBalanceMicroUSD int64
}

// Validate checks each line's sign against its kind and that the opening
// balance plus the lines equals the closing balance, without overflow.
func (s Statement) Validate() error {
	if s.Period.IsZero() {
		return fmt.Errorf("%w: zero period", ErrInvalidStatement)
	}
	bal := s.OpeningBalanceMicroUSD
	for i, l := range s.Lines {
		var ok bool
		switch l.Kind {
		case Accrual:
			ok = l.AmountMicroUSD > 0
		case PayoutLine, Slash:
			ok = l.AmountMicroUSD < 0
		case Adjustment:
			ok = l.AmountMicroUSD != 0
		default:
			return fmt.Errorf("%w: line %d: kind %v", ErrInvalidStatement, i, l.Kind)
		}
		if !ok {
			return fmt.Errorf("%w: line %d: %s amount %d has the wrong sign", ErrInvalidStatement, i, l.Kind, l.AmountMicroUSD)
		}
		if (l.AmountMicroUSD > 0 && bal > math.MaxInt64-l.AmountMicroUSD) ||
			(l.AmountMicroUSD < 0 && bal < math.MinInt64-l.AmountMicroUSD) {
			return fmt.Errorf("%w: line %d: balance overflows", ErrInvalidStatement, i)
		}
		bal += l.AmountMicroUSD
	}
	if bal != s.ClosingBalanceMicroUSD {
		return fmt.Errorf("%w: lines add up to %s, closing balance says %s", ErrInvalidStatement,
			FormatMicroUSD(bal), FormatMicroUSD(s.ClosingBalanceMicroUSD))
	}
	return nil
}

// Text renders the statement as fixed-column plain text, lines in the
// given order, times in the period's time zone. Control and non-ASCII
// characters in the payee ID and references are replaced with '?', so
// outside strings cannot forge lines.
func (s Statement) Text() (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	loc := s.Period.End().Location()
	const stamp = "2006-01-02 15:04"
	var b strings.Builder
	fmt.Fprintf(&b, "Beluga earnings statement\n")
	fmt.Fprintf(&b, "Payee:   %s\n", printable(s.PayeeID))
	fmt.Fprintf(&b, "Period:  %s (%s to %s %s)\n\n", s.Period.ID(),
		s.Period.Start().Format(stamp), s.Period.End().Format(stamp), loc)
	// The reference goes last so that a long one cannot shift the amounts.
	row := func(at, kind, amount, ref string) {
		line := fmt.Sprintf("%-16s  %-10s  %20s  %s", at, kind, amount, ref)
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	row("Date", "Kind", "Amount (USD)", "Reference")
	row("", "opening", FormatMicroUSD(s.OpeningBalanceMicroUSD), "")
	for _, l := range s.Lines {
		row(l.At.In(loc).Format(stamp), l.Kind.String(), FormatMicroUSD(l.AmountMicroUSD), printable(l.Ref))
	}
	row("", "closing", FormatMicroUSD(s.ClosingBalanceMicroUSD), "")
	return b.String(), nil
}

type statementLineJSON struct {
	At             time.Time `json:"at"`
	Kind           string    `json:"kind"`
	Ref            string    `json:"ref"`
	AmountMicroUSD int64     `json:"amount_micro_usd"`
}

type statementJSON struct {
	PayeeID                string              `json:"payee_id"`
	PeriodID               string              `json:"period_id"`
	PeriodStart            time.Time           `json:"period_start"`
	PeriodEnd              time.Time           `json:"period_end"`
	OpeningBalanceMicroUSD int64               `json:"opening_balance_micro_usd"`
	Lines                  []statementLineJSON `json:"lines"`
	ClosingBalanceMicroUSD int64               `json:"closing_balance_micro_usd"`
}

// MarshalJSON renders the statement as JSON with integer micro-dollar
// amounts (keys ending in _micro_usd) and RFC 3339 times. It fails on a
// statement that does not validate.
func (s Statement) MarshalJSON() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	j := statementJSON{
		PayeeID:                s.PayeeID,
		PeriodID:               s.Period.ID(),
		PeriodStart:            s.Period.Start(),
		PeriodEnd:              s.Period.End(),
		OpeningBalanceMicroUSD: s.OpeningBalanceMicroUSD,
		Lines:                  make([]statementLineJSON, len(s.Lines)),
		ClosingBalanceMicroUSD: s.ClosingBalanceMicroUSD,
	}
	for i, l := range s.Lines {
		j.Lines[i] = statementLineJSON{At: l.At, Kind: l.Kind.String(), Ref: l.Ref, AmountMicroUSD: l.AmountMicroUSD}
	}
	return json.Marshal(j)
}

// printable replaces every byte outside printable ASCII with '?'.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
