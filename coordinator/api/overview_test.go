package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestSignup: a sign-up gets a client key that works at once, a party ID
// nobody chose and the funding reference; a body other than nothing or {}
// is refused with nothing issued; past SignupsPerMinute the answer is 429;
// a coordinator without WithSignup answers 403 signup_closed.
func TestSignup(t *testing.T) {
	t.Parallel()
	closed := newEnv(t)
	if c, b := closed.do("POST", "/v1/signup", "", "", ""); c != 403 || !strings.Contains(string(b), "signup_closed") {
		t.Fatalf("closed sign-up: %d %s", c, b)
	}
	e := newEnv(t, WithSignup(Signup{Instructions: "Wire to ACME Bank 021000021 / 123456"}))
	for _, bad := range []string{`{"name":"x"}`, `[]`, `nope`} {
		if c, b := e.do("POST", "/v1/signup", "", "", bad); c != 400 {
			t.Errorf("sign-up body %s: %d %s", bad, c, b)
		}
	}
	c, b := e.do("POST", "/v1/signup", "", "", "{}")
	if c != 201 {
		t.Fatalf("sign-up: %d %s", c, b)
	}
	var res SignupResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Subject) != 14 || res.Subject[0] != 'c' || res.Role != "client" || res.Funding.Reference != FundingReference(res.Subject) ||
		res.Funding.Account != "client:"+res.Subject || !strings.Contains(res.Funding.Instructions, "ACME Bank") {
		t.Fatalf("sign-up result %+v", res)
	}
	c, b = e.do("GET", "/v1/me", res.Key, "", "")
	var me Me
	if c != 200 || json.Unmarshal(b, &me) != nil || me.Role != "client" || me.Subject != res.Subject || me.FundsMicroUSD == nil || *me.FundsMicroUSD != 0 {
		t.Fatalf("me: %d %s", c, b)
	}
	// The key quotes at once (an unfunded client may look at prices).
	if c, b := e.do("POST", "/v1/quote", res.Key, "", jobBody(t, 1, 3_000_000)); c != 200 {
		t.Fatalf("quote with a signed-up key: %d %s", c, b)
	}
	n := 1
	for ; n < SignupsPerMinute+5; n++ {
		if c, _ := e.do("POST", "/v1/signup", "", "", ""); c == 429 {
			break
		}
	}
	if n != SignupsPerMinute {
		t.Fatalf("sign-up %d refused, want %d", n+1, SignupsPerMinute+1)
	}
}

// TestOperatorOverviews: the ledger, parties, payout runs and disputes
// answer the operator only, from the coordinator's state: a deposit shows
// in the ledger's totals and the party list, the invariants hold.
func TestOperatorOverviews(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":7000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d2", `{"bank_ref":"w2","account":"solver_bond:gpu1","amount_micro_usd":3000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	for _, path := range []string{"/v1/ledger", "/v1/parties", "/v1/payouts/runs", "/v1/disputes"} {
		if c, _ := e.do("GET", path, e.client, "", ""); c != 403 {
			t.Errorf("client GET %s: %d", path, c)
		}
		if c, _ := e.do("GET", path, "", "", ""); c != 401 {
			t.Errorf("anonymous GET %s: %d", path, c)
		}
		if c, _ := e.do("GET", path+"?limit=0", e.operator, "", ""); c != 400 {
			t.Errorf("GET %s?limit=0: %d", path, c)
		}
	}
	c, b := e.do("GET", "/v1/ledger", e.operator, "", "")
	var lv LedgerView
	if c != 200 || json.Unmarshal(b, &lv) != nil || !lv.Invariants.OK {
		t.Fatalf("ledger: %d %s", c, b)
	}
	totals := map[string]int64{}
	for _, k := range lv.Totals {
		totals[string(k.Kind)] = k.BalanceMicroUSD
	}
	if totals["client"] != 7_000_000 || totals["solver_bond"] != 3_000_000 || totals["bank_clearing"] != -10_000_000 {
		t.Fatalf("ledger totals %v", totals)
	}
	c, b = e.do("GET", "/v1/parties", e.operator, "", "")
	var pl List[PartyView]
	if c != 200 || json.Unmarshal(b, &pl) != nil || len(pl.Items) != 2 || pl.Items[0].Party != "acme" || pl.Items[1].Party != "gpu1" ||
		pl.Items[1].Roles[0] != "solver" || pl.Items[1].Balances["solver_bond"] != 3_000_000 {
		t.Fatalf("parties: %d %s", c, b)
	}
	c, b = e.do("GET", "/v1/parties?limit=1", e.operator, "", "")
	if c != 200 || json.Unmarshal(b, &pl) != nil || len(pl.Items) != 1 || pl.NextCursor == "" {
		t.Fatalf("parties page: %d %s", c, b)
	}
	// A payout run over a period that has ended, then the list.
	e.clk.add(30 * 24 * 3600 * 1e9)
	if c, b := e.do("POST", "/v1/payouts/runs", e.operator, "r1", `{"period":"2026-11-15"}`); c != 201 {
		t.Fatalf("run: %d %s", c, b)
	}
	c, b = e.do("GET", "/v1/payouts/runs", e.operator, "", "")
	var rl List[RunView]
	if c != 200 || json.Unmarshal(b, &rl) != nil || len(rl.Items) != 1 || rl.Items[0].Period != "2026-11-15" || !rl.Items[0].Posted {
		t.Fatalf("runs: %d %s", c, b)
	}
	if c, b := e.do("GET", "/v1/disputes", e.operator, "", ""); c != 200 || string(b) != `{"items":[]}` {
		t.Fatalf("disputes: %d %s", c, b)
	}
	c, b = e.do("GET", "/v1/market", e.client, "", "")
	if c != 200 || !strings.Contains(string(b), fmt.Sprintf(`"cap_nano_usd_per_cu":%d`, int64(100_000_000_000))) {
		t.Fatalf("market: %d %s", c, b)
	}
}

func TestInvertOrdersNewestFirst(t *testing.T) {
	t.Parallel()
	if !(invert("2026-12-01") < invert("2026-11-15")) || !(invert("2027-01-01") < invert("2026-12-15")) {
		t.Fatal("invert does not order newest first")
	}
}
