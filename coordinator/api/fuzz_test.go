package api

import (
	"strings"
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
	`{"Bank_Ref":"w1","account":"client:acme","amount_micro_usd":1}`,
	`{"bank_ref":"w1","bank_ref":"w2","account":"client:acme","amount_micro_usd":1}`,
	`{"bank_ref":"w1","account":"client:acme","amount_micro_usd":null}`,
	"{\"bank_ref\":\"w\xff\",\"account\":\"client:acme\",\"amount_micro_usd\":1}",
	`{"bank_ref":"w\ud800","account":"client:acme","amount_micro_usd":1}`,
	`{"bank_ref":"w\u0031","account":"client:acme","amount_micro_usd":1}`,
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
		checkStrict(t, b, []string{"bank_ref", "account", "amount_micro_usd"}, nil)
	})
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(jobBody(f, 1, 5)))
	f.Add([]byte(`{"spec":{},"max_price_nano_usd_per_cu":-1}`))
	f.Add([]byte(`{"spec":null}`))
	f.Add([]byte(`{"spec":{"version":1,"steps":1e99}}`))
	f.Add([]byte(strings.Replace(jobBody(f, 1, 5), `"spec"`, `"Spec"`, 1)))
	f.Add([]byte(strings.Replace(jobBody(f, 1, 5), `"max_price_nano_usd_per_cu":5000`, `"max_price_nano_usd_per_cu":null`, 1)))
	f.Add([]byte(strings.Replace(jobBody(f, 1, 5), `"max_price_nano_usd_per_cu":5000`, `"max_price_nano_usd_per_cu":5000,"max_price_nano_usd_per_cu":6`, 1)))
	f.Add([]byte(strings.Replace(jobBody(f, 1, 5), `,"max_price_nano_usd_per_cu":5000`, ``, 1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, s, err := DecodeJob(b)
		if err != nil {
			return
		}
		if r.MaxPriceNanoUSDPerCU < 0 || s == nil {
			t.Fatalf("accepted invalid job %+v", r)
		}
		checkStrict(t, b, []string{"spec"}, []string{"max_price_nano_usd_per_cu"})
	})
}

func FuzzDecodePayoutRun(f *testing.F) {
	for _, s := range []string{`{"period":"2026-11-15"}`, `{"period":1}`, `{"period":"x","y":1}`,
		`{"Period":"2026-11-15"}`, `{"period":"2026-11-15","period":"2026-11-30"}`, `{"period":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodePayoutRun(b)
		if err != nil {
			return
		}
		if len(r.Period) != 10 {
			t.Fatalf("accepted %q", r.Period)
		}
		checkStrict(t, b, []string{"period"}, nil)
	})
}

func FuzzDecodeKey(f *testing.F) {
	for _, s := range []string{`{"subject":"acme","role":"client"}`, `{"subject":"","role":"x"}`,
		`{"Subject":"acme","role":"client"}`, `{"subject":"acme","subject":"beta","role":"client"}`, `{"subject":"acme","role":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DecodeKey(b); err == nil {
			checkStrict(t, b, []string{"subject", "role"}, nil)
		}
	})
}
