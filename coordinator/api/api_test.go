package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/market"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/coordinator/vault"
	"github.com/beluga-compute/beluga/spec/catalog"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	t        *testing.T
	srv      *httptest.Server
	svc      *service.Service
	led      *ledger.Memory
	clk      *clock
	operator string
	client   string
	server   *Server
	keys     *auth.Keys
}

func newEnv(t *testing.T, opts ...Option) *env { return newEnvLog(t, nil, opts...) }

// newEnvLog is newEnv with the server logging to log.
func newEnvLog(t *testing.T, log *slog.Logger, opts ...Option) *env {
	clk := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}
	led := ledger.NewMemory(ledger.WithClock(clk.now))
	st, err := service.OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	sch, _ := payout.NewSchedule(payout.WithMinimumPayoutCents(1))
	secret := make([]byte, vault.KeySize)
	v, _ := vault.New(rand.Reader, vault.Key{ID: 1, Secret: secret})
	svc, err := service.New(context.Background(), led, st, service.WithClock(clk.now), service.WithSchedule(sch), service.WithVault(v),
		service.WithBookOptions(market.WithMaxPrice(100_000_000_000)),
		service.WithOriginator(payout.Originator{CompanyName: "BELUGA", CompanyID: "1234567890", ImmediateOrigin: "121042882", ImmediateDestination: "031300012", ODFIRouting: "121042882"}))
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewKeys(st, rand.Reader, clk.now)
	op, _, err := keys.Issue(context.Background(), "operator", auth.RoleOperator, 0)
	if err != nil {
		t.Fatal(err)
	}
	cl, _, _ := keys.Issue(context.Background(), "acme", auth.RoleClient, 0)
	api := New(svc, keys, log, opts...)
	srv := httptest.NewServer(api)
	t.Cleanup(func() { srv.Close(); st.Close(); led.Close() })
	return &env{t: t, srv: srv, svc: svc, led: led, clk: clk, operator: op, client: cl, server: api, keys: keys}
}

func (e *env) do(method, path, key, idem, body string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) snapshot() string {
	var b strings.Builder
	e.led.ScanAccounts(context.Background(), func(a ledger.Account) error {
		fmt.Fprintf(&b, "%s:%v;", a.ID, a.Balances)
		return nil
	})
	return b.String()
}

func jobBody(t testing.TB, seed uint64, maxPrice int64) string {
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	s.Seed = seed
	b, _ := json.Marshal(s)
	return fmt.Sprintf(`{"spec":%s,"max_price_nano_usd_per_cu":%d}`, b, maxPrice*1000) // maxPrice in µ$/CU
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":500000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	if c, _ := e.do("POST", "/v1/deposits", e.operator, "d2", `{"bank_ref":"w2","account":"solver_bond:gpu1","amount_micro_usd":100000000}`); c != 201 {
		t.Fatal(c)
	}
	if _, err := e.svc.PostAsk(ctx, service.Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 1, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c, b := e.do("POST", "/v1/jobs", e.client, "j1", jobBody(t, 1, 3_000_000))
	if c != 201 {
		t.Fatalf("job: %d %s", c, b)
	}
	var j service.Job
	json.Unmarshal(b, &j)
	if c, b := e.do("GET", "/v1/jobs/"+j.ID, e.client, "", ""); c != 200 || !bytes.Contains(b, []byte(`"state":"matched"`)) {
		t.Fatalf("get job: %d %s", c, b)
	}
	if c, b := e.do("GET", "/v1/jobs/"+j.ID+"/audit", e.client, "", ""); c != 200 || !bytes.Contains(b, []byte(`"audit":null`)) {
		t.Fatalf("audit: %d %s", c, b)
	}
	for _, ev := range []func() (*service.Job, error){
		func() (*service.Job, error) { return e.svc.Advance(ctx, j.ID, 2) },
		func() (*service.Job, error) { return e.svc.Advance(ctx, j.ID, 4) },
		func() (*service.Job, error) { return e.svc.Advance(ctx, j.ID, 5) },
		func() (*service.Job, error) { return e.svc.Settle(ctx, j.ID, nil) },
	} {
		if _, err := ev(); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.SetBankDetails(ctx, service.AccountRef{Kind: service.KindSolverEarnings, Party: "gpu1"}, payout.BankAccount{HolderName: "Ada", RoutingNumber: "231380104", AccountNumber: "1234", Type: payout.Checking}); err != nil {
		t.Fatal(err)
	}
	if c, b := e.do("GET", "/v1/accounts/solver_earnings:gpu1/statement", e.operator, "", ""); c != 200 || !bytes.Contains(b, []byte(`"closing_balance_micro_usd":2000000`)) {
		t.Fatalf("statement: %d %s", c, b)
	}
	if c, _ := e.do("GET", "/v1/accounts/solver_earnings:gpu1/statement", e.client, "", ""); c != 404 {
		t.Fatalf("client read a solver's statement: %d", c)
	}
	if c, b := e.do("POST", "/v1/payouts/runs", e.operator, "p1", `{"period":"2026-11-15"}`); c != 409 {
		t.Fatalf("early run: %d %s", c, b)
	}
	e.clk.add(14 * 24 * time.Hour)
	c, b = e.do("POST", "/v1/payouts/runs", e.operator, "p2", `{"period":"2026-11-15"}`)
	if c != 201 || !bytes.Contains(b, []byte(`"total_cents":200`)) {
		t.Fatalf("run: %d %s", c, b)
	}
	c, ach := e.do("GET", "/v1/payouts/runs/2026-11-15/ach", e.operator, "", "")
	if c != 200 {
		t.Fatalf("ach: %d %s", c, ach)
	}
	sum, err := payout.ParseACH(ach)
	if err != nil || sum.TotalCreditCents != 200 {
		t.Fatalf("ach parse: %+v %v", sum, err)
	}
	if c, b := e.do("GET", "/v1/openapi.yaml", "", "", ""); c != 200 || !bytes.HasPrefix(b, []byte("openapi: 3")) {
		t.Fatalf("openapi: %d", c)
	}
	if err := ledger.CheckInvariants(ctx, e.led); err != nil {
		t.Fatal(err)
	}
}

func TestBadInputsChangeNothing(t *testing.T) {
	e := newEnv(t)
	if c, _ := e.do("POST", "/v1/deposits", e.operator, "seed", `{"bank_ref":"w0","account":"client:acme","amount_micro_usd":1000}`); c != 201 {
		t.Fatal(c)
	}
	dep := func(amount string) string {
		return `{"bank_ref":"x","account":"client:acme","amount_micro_usd":` + amount + `}`
	}
	cases := []struct {
		name, method, path, key, idem, body string
		want                                int
	}{
		{"malformed json", "POST", "/v1/deposits", "op", "k1", `{"bank_ref":`, 400},
		{"not an object", "POST", "/v1/deposits", "op", "k2", `[1,2]`, 400},
		{"two values", "POST", "/v1/deposits", "op", "k3", dep("5") + dep("5"), 400},
		{"trailing garbage", "POST", "/v1/deposits", "op", "k4", dep("5") + "x", 400},
		{"unknown field", "POST", "/v1/deposits", "op", "k5", `{"bank_ref":"x","account":"client:acme","amount_micro_usd":5,"extra":1}`, 400},
		{"negative", "POST", "/v1/deposits", "op", "k6", dep("-5"), 400},
		{"zero", "POST", "/v1/deposits", "op", "k7", dep("0"), 400},
		{"float", "POST", "/v1/deposits", "op", "k8", dep("5.5"), 400},
		{"exponent", "POST", "/v1/deposits", "op", "k9", dep("5e3"), 400},
		{"overflow", "POST", "/v1/deposits", "op", "k10", dep("9223372036854775808"), 400},
		{"string amount", "POST", "/v1/deposits", "op", "k11", dep(`"5"`), 400},
		{"missing amount", "POST", "/v1/deposits", "op", "k12", `{"bank_ref":"x","account":"client:acme"}`, 400},
		{"unknown account kind", "POST", "/v1/deposits", "op", "k13", `{"bank_ref":"x","account":"savings:acme","amount_micro_usd":5}`, 400},
		{"deposit into earnings", "POST", "/v1/deposits", "op", "k14", `{"bank_ref":"x","account":"solver_earnings:acme","amount_micro_usd":5}`, 400},
		{"bad party", "POST", "/v1/deposits", "op", "k15", `{"bank_ref":"x","account":"client:a b","amount_micro_usd":5}`, 400},
		{"replayed bank ref, other amount", "POST", "/v1/deposits", "op", "k16", `{"bank_ref":"w0","account":"client:acme","amount_micro_usd":7}`, 409},
		{"replayed idempotency key, other body", "POST", "/v1/deposits", "op", "seed", dep("6"), 409},
		{"no idempotency key", "POST", "/v1/deposits", "op", "", dep("5"), 400},
		{"no auth", "POST", "/v1/deposits", "", "k17", dep("5"), 401},
		{"bad key", "POST", "/v1/deposits", "blg_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "k18", dep("5"), 401},
		{"client may not deposit", "POST", "/v1/deposits", "client", "k19", dep("5"), 403},
		{"too large", "POST", "/v1/deposits", "op", "k20", `{"bank_ref":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413},
		{"job: insufficient funds", "POST", "/v1/jobs", "client", "k21", jobBody(t, 9, 5_000_000), 422},
		{"job: bad spec", "POST", "/v1/jobs", "client", "k22", `{"spec":{"version":1}}`, 400},
		{"job: negative price", "POST", "/v1/jobs", "client", "k23", jobBody(t, 9, -1), 400},
		{"job: float price", "POST", "/v1/jobs", "client", "k24", `{"spec":{},"max_price_nano_usd_per_cu":1.5}`, 400},
		{"job: the old micro-dollar price", "POST", "/v1/jobs", "client", "k26", `{"spec":{},"max_price_micro_usd_per_cu":3}`, 400},
		{"job: operator may not post", "POST", "/v1/jobs", "op", "k25", jobBody(t, 9, 1), 403},
		{"unknown job", "GET", "/v1/jobs/" + strings.Repeat("ab", 32), "op", "", "", 404},
		{"bad job id", "GET", "/v1/jobs/xyz", "op", "", "", 400},
		{"unknown account", "GET", "/v1/accounts/client:nobody/statement", "op", "", "", 404},
		{"bad account", "GET", "/v1/accounts/nope/statement", "op", "", "", 400},
		{"bad period", "POST", "/v1/payouts/runs", "op", "k26", `{"period":"2026-11-16"}`, 400},
		{"no run", "GET", "/v1/payouts/runs/2026-11-15/ach", "op", "", "", 404},
		{"no such endpoint", "GET", "/v1/nothing", "op", "", "", 404},
	}
	keys := map[string]string{"op": e.operator, "client": e.client}
	before := e.snapshot()
	for _, c := range cases {
		key := c.key
		if k, ok := keys[key]; ok {
			key = k
		}
		code, body := e.do(c.method, c.path, key, c.idem, c.body)
		if code != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, code, c.want, body)
		}
		var eb Problem
		if err := json.Unmarshal(body, &eb); err != nil || eb.Code == "" || eb.Detail == "" {
			t.Errorf("%s: error body %q", c.name, body)
		}
		if after := e.snapshot(); after != before {
			t.Fatalf("%s changed the ledger", c.name)
		}
	}
	// A replay with the same key and body returns the same response and
	// moves nothing.
	code, b1 := e.do("POST", "/v1/deposits", e.operator, "seed", `{"bank_ref":"w0","account":"client:acme","amount_micro_usd":1000}`)
	if code != 201 || e.snapshot() != before {
		t.Fatalf("replay: %d %s", code, b1)
	}
	if err := ledger.CheckInvariants(context.Background(), e.led); err != nil {
		t.Fatal(err)
	}
}
