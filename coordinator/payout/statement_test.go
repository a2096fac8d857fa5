package payout

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func testStatement(t *testing.T) Statement {
	s := mustSchedule(t)
	return Statement{
		PayeeID:                "solver-42",
		Period:                 s.PeriodFor(utc(2026, 11, 3, 0, 0)),
		OpeningBalanceMicroUSD: 3_000_123,
		Lines: []StatementLine{
			{At: utc(2026, 11, 3, 14, 2), Kind: Accrual, Ref: "job/9f3c", AmountMicroUSD: 12_500_000},
			{At: utc(2026, 11, 9, 8, 0), Kind: Slash, Ref: "dispute/77\nforged line", AmountMicroUSD: -500_000},
			{At: utc(2026, 11, 15, 0, 0), Kind: PayoutLine, Ref: "payout/2026-11-15/solver-42", AmountMicroUSD: -15_000_000},
		},
		ClosingBalanceMicroUSD: 123,
	}
}

func TestStatementText(t *testing.T) {
	got, err := testStatement(t).Text()
	if err != nil {
		t.Fatal(err)
	}
	want := `Beluga earnings statement
Payee:   solver-42
Period:  2026-11-15 (2026-11-01 00:00 to 2026-11-15 00:00 UTC)

Date              Kind                Amount (USD)  Reference
                  opening                 3.000123
2026-11-03 14:02  accrual                12.500000  job/9f3c
2026-11-09 08:00  slash                  -0.500000  dispute/77?forged line
2026-11-15 00:00  payout                -15.000000  payout/2026-11-15/solver-42
                  closing                 0.000123
`
	if got != want {
		t.Fatalf("Text():\n%s\nwant:\n%s", got, want)
	}
}

func TestStatementJSON(t *testing.T) {
	data, err := json.Marshal(testStatement(t))
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back["period_id"] != "2026-11-15" || back["closing_balance_micro_usd"] != float64(123) || back["payee_id"] != "solver-42" {
		t.Fatalf("JSON %s", data)
	}
	lines := back["lines"].([]any)
	if len(lines) != 3 || lines[1].(map[string]any)["kind"] != "slash" || lines[1].(map[string]any)["amount_micro_usd"] != float64(-500000) {
		t.Fatalf("JSON lines %s", data)
	}
	if !strings.Contains(string(data), `"period_start":"2026-11-01T00:00:00Z"`) {
		t.Fatalf("JSON period start: %s", data)
	}
}

func TestStatementInvalid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Statement)
	}{
		{"closing does not add up", func(s *Statement) { s.ClosingBalanceMicroUSD++ }},
		{"negative accrual", func(s *Statement) { s.Lines[0].AmountMicroUSD = -1 }},
		{"positive payout", func(s *Statement) { s.Lines[2].AmountMicroUSD = 1 }},
		{"zero adjustment", func(s *Statement) { s.Lines[1] = StatementLine{Kind: Adjustment} }},
		{"unknown kind", func(s *Statement) { s.Lines[0].Kind = 9 }},
		{"zero period", func(s *Statement) { s.Period = Period{} }},
		{"overflow", func(s *Statement) {
			s.OpeningBalanceMicroUSD = math.MaxInt64
			s.Lines = []StatementLine{{Kind: Accrual, AmountMicroUSD: 1}}
		}},
		{"underflow", func(s *Statement) {
			s.OpeningBalanceMicroUSD = math.MinInt64
			s.Lines = []StatementLine{{Kind: Adjustment, AmountMicroUSD: -1}}
			s.ClosingBalanceMicroUSD = math.MaxInt64
		}},
	}
	for _, tt := range tests {
		s := testStatement(t)
		tt.mod(&s)
		if err := s.Validate(); !errors.Is(err, ErrInvalidStatement) {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
		if _, err := s.Text(); err == nil {
			t.Errorf("%s: Text() accepted", tt.name)
		}
		if _, err := json.Marshal(s); err == nil {
			t.Errorf("%s: MarshalJSON accepted", tt.name)
		}
	}
}
