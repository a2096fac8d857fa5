package payout

import (
	"math"
	"testing"
)

func TestSplitCents(t *testing.T) {
	tests := []struct {
		micro, cents, rem int64
	}{
		{0, 0, 0},
		{1, 0, 1},
		{9_999, 0, 9_999},
		{10_000, 1, 0},
		{10_001, 1, 1},
		{12_345_678, 1_234, 5_678},
		{-1, 0, -1},
		{-25_000, 0, -25_000},
		{math.MaxInt64, math.MaxInt64 / 10_000, math.MaxInt64 % 10_000},
		{math.MinInt64, 0, math.MinInt64},
	}
	for _, tt := range tests {
		c, r := SplitCents(tt.micro)
		if c != tt.cents || r != tt.rem {
			t.Errorf("SplitCents(%d) = %d, %d; want %d, %d", tt.micro, c, r, tt.cents, tt.rem)
		}
	}
}

func TestPayable(t *testing.T) {
	def := mustSchedule(t)
	zero := mustSchedule(t, WithMinimumPayoutCents(0))
	tests := []struct {
		name       string
		s          *Schedule
		balance    int64
		cents, rem int64
		ok         bool
	}{
		{"below minimum", def, 9_999_999, 0, 9_999_999, false}, // $9.999999
		{"exactly minimum", def, 10_000_000, 1000, 0, true},
		{"minimum plus dust", def, 10_000_123, 1000, 123, true},
		{"negative", def, -50_000_000, 0, -50_000_000, false},
		{"zero minimum pays a cent", zero, 10_000, 1, 0, true},
		{"zero minimum, dust only", zero, 9_999, 0, 9_999, false},
		{"capped at the entry maximum", def, math.MaxInt64, MaxEntryCents, math.MaxInt64 - MaxEntryCents*10_000, true},
	}
	for _, tt := range tests {
		c, r, ok := tt.s.Payable(tt.balance)
		if c != tt.cents || r != tt.rem || ok != tt.ok {
			t.Errorf("%s: Payable(%d) = %d, %d, %v; want %d, %d, %v", tt.name, tt.balance, c, r, ok, tt.cents, tt.rem, tt.ok)
		}
		if c*MicroUSDPerCent+r != tt.balance {
			t.Errorf("%s: cents and remainder do not add up to the balance", tt.name)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		v    int64
		want string
	}{
		{0, "0.000000"}, {1, "0.000001"}, {-5, "-0.000005"}, {12_345_678, "12.345678"}, {-1_000_000, "-1.000000"},
		{math.MaxInt64, "9223372036854.775807"}, {math.MinInt64, "-9223372036854.775808"},
	} {
		if got := FormatMicroUSD(tt.v); got != tt.want {
			t.Errorf("FormatMicroUSD(%d) = %q, want %q", tt.v, got, tt.want)
		}
	}
	for _, tt := range []struct {
		v    int64
		want string
	}{{0, "0.00"}, {5, "0.05"}, {1050, "10.50"}, {-1, "-0.01"}, {MaxEntryCents, "99999999.99"}} {
		if got := FormatCents(tt.v); got != tt.want {
			t.Errorf("FormatCents(%d) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
