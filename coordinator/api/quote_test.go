package api

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// TestQuoteThenPost: POST /v1/quote answers exactly the documented shape
// (no Idempotency-Key needed), and POST /v1/jobs with the same body
// escrows exactly the quoted total; a market order's quote is its escrow
// too. A quote changes no balance.
func TestQuoteThenPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":900000000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	for i, body := range []string{jobBody(t, 1, 3_000_000), strings.Replace(jobBody(t, 2, 1), `,"max_price_nano_usd_per_cu":1000`, ``, 1)} {
		before := e.snapshot()
		c, b := e.do("POST", "/v1/quote", e.client, "", body)
		if c != 200 {
			t.Fatalf("quote %d: %d %s", i, c, b)
		}
		if after := e.snapshot(); after != before {
			t.Fatal("a quote moved money")
		}
		var shape map[string]json.RawMessage
		noErrT(t, json.Unmarshal(b, &shape))
		for _, k := range []string{"compute_units", "lines", "total_micro_usd", "price_nano_usd_per_cu"} {
			if _, ok := shape[k]; !ok {
				t.Fatalf("quote lacks %q: %s", k, b)
			}
		}
		var lines []map[string]any
		noErrT(t, json.Unmarshal(shape["lines"], &lines))
		var items []string
		for _, l := range lines {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range l {
					if !yield(k) {
						return
					}
				}
			})
			if !reflect.DeepEqual(keys, []string{"detail", "item", "micro_usd"}) {
				t.Fatalf("line %v", l)
			}
			items = append(items, l["item"].(string))
		}
		if !reflect.DeepEqual(items, []string{"solver", "audit", "fee"}) {
			t.Fatalf("items %v", items)
		}
		var q service.Quote
		noErrT(t, json.Unmarshal(b, &q))
		c, b = e.do("POST", "/v1/jobs", e.client, "j"+string(rune('0'+i)), body)
		if c != 201 {
			t.Fatalf("job %d: %d %s", i, c, b)
		}
		var j service.Job
		noErrT(t, json.Unmarshal(b, &j))
		if q.TotalMicroUSD != j.EscrowMicroUSD || q.ComputeUnits != j.CU || q.TotalMicroUSD <= 0 {
			t.Fatalf("quote %d: total %d for %d CU; the job escrows %d for %d CU", i, q.TotalMicroUSD, q.ComputeUnits, j.EscrowMicroUSD, j.CU)
		}
	}
}

func TestQuoteRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	solver, _, err := issueKey(e, "gpu1", auth.RoleSolver, 0)
	noErrT(t, err)
	for _, tt := range []struct {
		name, key, body string
		status          int
		code            string
	}{
		{"no key", "", jobBody(t, 1, 5), 401, "unauthorized"},
		{"a solver", solver, jobBody(t, 1, 5), 403, "forbidden"},
		{"bad spec", e.client, `{"spec":{"version":1}}`, 400, "invalid_spec"},
		{"negative price", e.client, jobBody(t, 1, -1), 400, "invalid_request"},
		{"micro-dollar price", e.client, strings.Replace(jobBody(t, 1, 5), "max_price_nano_usd_per_cu", "max_price_micro_usd_per_cu", 1), 400, "invalid_request"},
		{"over the book's cap", e.client, jobBody(t, 1, 200_000_000), 400, "invalid_request"},
	} {
		c, b := e.do("POST", "/v1/quote", tt.key, "", tt.body)
		if c != tt.status || !strings.Contains(string(b), tt.code) {
			t.Errorf("%s: %d %s, want %d %s", tt.name, c, b, tt.status, tt.code)
		}
		if tt.name == "micro-dollar price" && !strings.Contains(string(b), "max_price_nano_usd_per_cu") {
			t.Errorf("the old field's error does not name the new one: %s", b)
		}
	}
}

func noErrT(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
