package api

import (
	"testing"
)

var depositSeeds = []string{
	`{"bank_ref":"w1","account":"client:acme","amount_micro_usd":500000000}`,
	`{"bank_ref":"w1","account":"client:acme","amount_micro_usd":-1}`,
	`{"bank_ref":"w1","account":"client:acme","amount_micro_usd":1.5}`,
	`{"bank_ref":"w1","account":"client:acme","amount_micro_usd":9223372036854775808}`,
	`{"bank_ref":"w1","account":"solver_bond:gpu1","amount_micro_usd":1}{}`,
	`{"bank_ref":"w1","account":"escrow:00","amount_micro_usd":1}`,
	`{`, `null`, `[]`, ``,
}

func FuzzDecodeDeposit(f *testing.F) {
	for _, s := range depositSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDeposit(b)
		if err != nil {
			return
		}
		if d.AmountMicroUSD <= 0 || d.BankRef == "" || d.Account.Validate() != nil {
			t.Fatalf("accepted invalid deposit %+v", d)
		}
	})
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(jobBody(f, 1, 5)))
	f.Add([]byte(`{"spec":{},"max_price_micro_usd_per_cu":-1}`))
	f.Add([]byte(`{"spec":null}`))
	f.Add([]byte(`{"spec":{"version":1,"steps":1e99}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, s, err := DecodeJob(b)
		if err != nil {
			return
		}
		if r.MaxPriceMicroUSDPerCU < 0 || s == nil {
			t.Fatalf("accepted invalid job %+v", r)
		}
	})
}

func FuzzDecodePayoutRun(f *testing.F) {
	for _, s := range []string{`{"period":"2026-11-15"}`, `{"period":1}`, `{"period":"x","y":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodePayoutRun(b); err == nil && len(r.Period) != 10 {
			t.Fatalf("accepted %q", r.Period)
		}
	})
}

func FuzzDecodeKey(f *testing.F) {
	for _, s := range []string{`{"subject":"acme","role":"client"}`, `{"subject":"","role":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeKey(b)
	})
}
