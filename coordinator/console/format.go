package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// usd renders micro-dollars as dollars: cents always, more digits only
// when they are not zero ("$1,234.50", "$0.000125", "−$2.00").
func usd(micro int64) string {
	neg := micro < 0
	if neg {
		micro = -micro
	}
	whole, frac := micro/1_000_000, micro%1_000_000
	f := strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	if len(f) < 2 {
		f += strings.Repeat("0", 2-len(f))
	}
	s := "$" + thousands(whole) + "." + f
	if neg {
		s = "−" + s
	}
	return s
}

// cents renders cents as dollars.
func cents(c int64) string { return usd(c * 10_000) }

// nanoUSD renders a price in nano-dollars per compute unit as dollars per
// CU ("$0.0002/CU").
func nanoUSD(n int64) string {
	whole, frac := n/1_000_000_000, n%1_000_000_000
	f := strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	if f == "" {
		f = "00"
	}
	return "$" + thousands(whole) + "." + f + "/CU"
}

// dollarsOfNano renders nano-dollars as the decimal dollars a --ask flag
// takes ("0.0002").
func dollarsOfNano(n int64) string {
	whole, frac := n/1_000_000_000, n%1_000_000_000
	f := strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
	if f == "" {
		return strconv.FormatInt(whole, 10)
	}
	return strconv.FormatInt(whole, 10) + "." + f
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// short is a hash's first 12 characters.
func short(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:12]
}

// when renders a time in UTC to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// pct is part of whole as a whole percentage (0..100).
func pct(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	p := part * 100 / whole
	return max(0, min(100, p))
}

// ppmPct renders parts per million as a percentage ("99%", "1.5%").
func ppmPct(v int64) string {
	s := strconv.FormatFloat(float64(v)/10_000, 'f', -1, 64)
	return s + "%"
}

// parseDollars reads a non-negative decimal dollar amount ("12", "0.5",
// "1,000.25") into units of 10^-scale dollars; it says what is wrong in
// the visitor's words.
func parseDollars(s string, scale int) (int64, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	s = strings.ReplaceAll(s, ",", "")
	if s == "" {
		return 0, fmt.Errorf("enter an amount")
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "−") {
		return 0, fmt.Errorf("the amount cannot be negative")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if !digits(whole) || (frac != "" && !digits(frac)) {
		return 0, fmt.Errorf("%q is not an amount in dollars (e.g. 25 or 0.50)", s)
	}
	if len(frac) > scale {
		return 0, fmt.Errorf("at most %d digits after the point", scale)
	}
	if len(whole) > 12 {
		return 0, fmt.Errorf("the amount is too large")
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", scale-len(frac)), 10, 64)
	}
	unit := int64(1)
	for range scale {
		unit *= 10
	}
	return w*unit + f, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
