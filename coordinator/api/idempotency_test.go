package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
)

// TestIdempotencyRecordsExpire: a key's record answers replays for
// DefaultIdempotencyWindow (24 h) and then is forgotten, so the key can be
// used again; before, records lived forever.
func TestIdempotencyRecordsExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dep := func(ref string) string {
		return `{"bank_ref":"` + ref + `","account":"client:acme","amount_micro_usd":1000}`
	}
	if c, b := e.do("POST", "/v1/deposits", e.operator, "k", dep("w1")); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	e.clk.add(24*time.Hour - time.Second)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "k", dep("w2")); c != 409 {
		t.Fatalf("key reused within the window: %d %s", c, b)
	}
	e.clk.add(2 * time.Second)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "k", dep("w2")); c != 201 {
		t.Fatalf("key reused after the window: %d %s", c, b)
	}
	if got := e.balance("client:acme"); got != 2000 {
		t.Fatalf("balance %d, want 2000", got)
	}
	if err := ledger.CheckInvariants(context.Background(), e.led); err != nil {
		t.Fatal(err)
	}
}

// TestIdempotencyWindowIsConfigurable: WithIdempotencyWindow and WithClock
// set the window and the clock that dates records.
func TestIdempotencyWindowIsConfigurable(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, WithIdempotencyWindow(time.Hour), WithClock(clk.now))
	dep := func(ref string) string {
		return `{"bank_ref":"` + ref + `","account":"client:acme","amount_micro_usd":1000}`
	}
	if c, b := e.do("POST", "/v1/deposits", e.operator, "k", dep("w1")); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	e.clk.add(2 * time.Hour) // the service's clock: not the one that dates records
	if c, b := e.do("POST", "/v1/deposits", e.operator, "k", dep("w2")); c != 409 {
		t.Fatalf("key reused within the window by the API clock: %d %s", c, b)
	}
	clk.add(time.Hour)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "k", dep("w2")); c != 201 {
		t.Fatalf("key reused after the window: %d %s", c, b)
	}
}

// TestFailedRequestDoesNotPoisonItsKey: a job refused for want of funds is
// not the key's final answer: after a top-up, the client's retry with the
// same key and body runs and posts the job; before, it replayed the 422.
func TestFailedRequestDoesNotPoisonItsKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := jobBody(t, 1, 3_000_000)
	c, b := e.do("POST", "/v1/jobs", e.client, "job-1", body)
	if c != 422 {
		t.Fatalf("unfunded job: %d %s", c, b)
	}
	if c, b := e.do("POST", "/v1/deposits", e.operator, "top-up", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":1000000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	c, b = e.do("POST", "/v1/jobs", e.client, "job-1", body)
	if c != 201 {
		t.Fatalf("retry after the top-up: %d %s", c, b)
	}
	// Now the key is final: a replay returns the job, moving nothing.
	before := e.snapshot()
	c2, b2 := e.do("POST", "/v1/jobs", e.client, "job-1", body)
	if c2 != 201 || string(b2) != string(b) || e.snapshot() != before {
		t.Fatalf("replay: %d %s", c2, b2)
	}
	if err := ledger.CheckInvariants(context.Background(), e.led); err != nil {
		t.Fatal(err)
	}
}

func (e *env) balance(account string) int64 {
	e.t.Helper()
	c, b := e.do("GET", "/v1/accounts/"+account+"/statement", e.operator, "", "")
	if c != 200 {
		e.t.Fatalf("statement: %d %s", c, b)
	}
	var st struct {
		Closing int64 `json:"closing_balance_micro_usd"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		e.t.Fatal(err)
	}
	return st.Closing
}
