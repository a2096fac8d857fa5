package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

// TestHealthz: /healthz needs no key, answers 200 with every check
// passing, and 503 naming the check that fails: a check the coordinator
// adds (its node) or the ledger, once closed.
func TestHealthz(t *testing.T) {
	t.Parallel()
	nodeErr := errors.New("the coordinator node has stopped")
	var failing atomic.Bool
	e := newEnv(t, WithHealthCheck("node", func(context.Context) error {
		if failing.Load() {
			return nodeErr
		}
		return nil
	}))
	health := func() (int, Health) {
		c, b := e.do("GET", "/healthz", "", "", "")
		var h Health
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("healthz: %d %s", c, b)
		}
		return c, h
	}
	if c, h := health(); c != 200 || h.Status != "ok" || len(h.Checks) != 2 || !h.Checks[0].OK || h.Checks[0].Name != "ledger" || h.Checks[1].Name != "node" {
		t.Fatalf("healthy: %d %+v", c, h)
	}
	failing.Store(true)
	if c, h := health(); c != 503 || h.Status != "unavailable" || h.Checks[1].OK || h.Checks[1].Error != nodeErr.Error() || !h.Checks[0].OK {
		t.Fatalf("node stopped: %d %+v", c, h)
	}
	failing.Store(false)
	e.led.Close()
	if c, h := health(); c != 503 || h.Checks[0].OK || h.Checks[0].Error != "the ledger is closed" {
		t.Fatalf("ledger closed: %d %+v", c, h)
	}
}

// TestMetrics: /metrics is the operator's (401 without a key, 403 for a
// client) and reports requests by route and status, jobs by state, ledger
// totals by account kind and the checks, in Prometheus's text format.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":500000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	if c, b := e.do("POST", "/v1/jobs", e.client, "j1", jobBody(t, 1, 3_000_000)); c != 201 {
		t.Fatalf("job: %d %s", c, b)
	}
	e.do("GET", "/v1/nowhere", e.client, "", "")
	if c, _ := e.do("GET", "/metrics", "", "", ""); c != 401 {
		t.Errorf("metrics without a key: %d", c)
	}
	if c, _ := e.do("GET", "/metrics", e.client, "", ""); c != 403 {
		t.Errorf("metrics for a client: %d", c)
	}
	c, b := e.do("GET", "/metrics", e.operator, "", "")
	if c != 200 {
		t.Fatalf("metrics: %d %s", c, b)
	}
	text := string(b)
	for _, want := range []string{
		`beluga_http_requests_total{code="201",route="POST /v1/deposits"} 1`,
		`beluga_http_requests_total{code="201",route="POST /v1/jobs"} 1`,
		`beluga_http_requests_total{code="404",route="(none)"} 1`,
		`beluga_http_requests_total{code="401",route="GET /metrics"} 1`,
		`beluga_http_request_duration_seconds_count{route="POST /v1/jobs"} 1`,
		`beluga_jobs{state="posted"} 1`,
		`beluga_jobs{state="settled"} 0`,
		`beluga_ledger_accounts{account_kind="client"} 1`,
		`beluga_ledger_accounts{account_kind="escrow"} 1`,
		`beluga_check_up{check="ledger"} 1`,
		"go_goroutines", "process_",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The client's funds less the escrow, and the escrow, are the totals.
	if !strings.Contains(text, `beluga_ledger_pending_micro_usd{account_kind="escrow"}`) ||
		!strings.Contains(text, `beluga_ledger_balance_micro_usd{account_kind="client"}`) {
		t.Errorf("no ledger totals:\n%s", text)
	}
}
