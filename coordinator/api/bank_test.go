package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec"
)

// issueKey issues an API key for subject with role.
func issueKey(e *env, subject string, role auth.Role, ttl time.Duration) (string, auth.Record, error) {
	return auth.NewKeys(e.svc.Store(), rand.Reader, e.clk.now).Issue(context.Background(), subject, role, ttl)
}

const bankBody = `{"holder_name":"Ada Lovelace","routing_number":"231380104","account_number":"987654321","account_type":"checking"}`

// TestBankDetailsRoundTrip: a solver registers its bank details with its
// own key; they read back masked through the API and in full from the
// service, and the store holds them only sealed (the account number
// appears nowhere in its bytes).
func TestBankDetailsRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	solver, _, err := issueKey(e, "gpu1", auth.RoleSolver, 0)
	noErrT(t, err)
	if c, b := e.do("GET", "/v1/parties/gpu1/bank", solver, "", ""); c != 404 || !strings.Contains(string(b), "beluga solver bank") {
		t.Fatalf("before: %d %s", c, b)
	}
	c, b := e.do("PUT", "/v1/parties/gpu1/bank", solver, "", bankBody)
	if c != 200 || bytes.Contains(b, []byte("987654321")) {
		t.Fatalf("put: %d %s", c, b)
	}
	var v BankView
	noErrT(t, json.Unmarshal(b, &v))
	want := BankView{Party: "gpu1", Account: "solver_earnings:gpu1", HolderName: "Ada Lovelace", RoutingNumber: "231380104", AccountNumberLast4: "4321", AccountType: "checking"}
	if v != want {
		t.Fatalf("view %+v, want %+v", v, want)
	}
	c, b = e.do("GET", "/v1/parties/gpu1/bank", solver, "", "")
	if c != 200 || !bytes.Contains(b, []byte(`"account_number_last4":"4321"`)) || bytes.Contains(b, []byte("987654321")) {
		t.Fatalf("get: %d %s", c, b)
	}
	ref := service.AccountRef{Kind: service.KindSolverEarnings, Party: "gpu1"}
	d, ok, err := e.svc.BankDetails(t.Context(), ref)
	if err != nil || !ok || d != (payout.BankAccount{HolderName: "Ada Lovelace", RoutingNumber: "231380104", AccountNumber: "987654321", Type: payout.Checking}) {
		t.Fatalf("service reads %v %v %v", d, ok, err)
	}
	raw, ok, err := e.svc.Store().GetRaw("bank/Sgpu1")
	if err != nil || !ok || bytes.Contains(raw, []byte("987654321")) || bytes.Contains(raw, []byte("Ada Lovelace")) {
		t.Fatalf("stored record (%v, %v) is not sealed: %q", ok, err, raw)
	}
	// The operator reads it naming the role.
	if c, b := e.do("GET", "/v1/parties/gpu1/bank?role=solver", e.operator, "", ""); c != 200 || !bytes.Contains(b, []byte("4321")) {
		t.Fatalf("operator: %d %s", c, b)
	}
}

func TestBankDetailsRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	solver, _, err := issueKey(e, "gpu1", auth.RoleSolver, 0)
	noErrT(t, err)
	for _, tt := range []struct {
		name, method, path, key, body string
		status                        int
	}{
		{"another party", "PUT", "/v1/parties/gpu2/bank", solver, bankBody, 404},
		{"a client", "PUT", "/v1/parties/acme/bank", e.client, bankBody, 403},
		{"no key", "PUT", "/v1/parties/gpu1/bank", "", bankBody, 401},
		{"operator without role", "PUT", "/v1/parties/gpu1/bank", e.operator, bankBody, 400},
		{"bad routing", "PUT", "/v1/parties/gpu1/bank", solver, strings.Replace(bankBody, "231380104", "231380105", 1), 400},
		{"bad type", "PUT", "/v1/parties/gpu1/bank", solver, strings.Replace(bankBody, "checking", "current", 1), 400},
		{"missing field", "PUT", "/v1/parties/gpu1/bank", solver, `{"holder_name":"A"}`, 400},
		{"bad party id", "PUT", "/v1/parties/a%20b/bank", solver, bankBody, 400},
	} {
		c, b := e.do(tt.method, tt.path, tt.key, "", tt.body)
		if c != tt.status || bytes.Contains(b, []byte("98765432")) {
			t.Errorf("%s: %d %s, want %d", tt.name, c, b, tt.status)
		}
	}
	if _, ok, _ := e.svc.BankDetails(t.Context(), service.AccountRef{Kind: service.KindSolverEarnings, Party: "gpu1"}); ok {
		t.Fatal("a refused request stored bank details")
	}
}

// FuzzDecodeBank: the bank details decoder never panics, accepts only
// valid details, and never echoes an account number in its errors.
func FuzzDecodeBank(f *testing.F) {
	f.Add([]byte(bankBody))
	f.Add([]byte(strings.Replace(bankBody, "231380104", "231380105", 1)))
	f.Add([]byte(`{"holder_name":"A","routing_number":"231380104","account_number":"12345678901234567890","account_type":"savings"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeBank(b)
		if err != nil {
			var r BankRequest
			if json.Unmarshal(b, &r) == nil && len(r.AccountNumber) >= 4 && strings.Contains(err.Error(), r.AccountNumber) {
				t.Fatalf("error %v echoes the account number", err)
			}
			return
		}
		if a.Validate() != nil {
			t.Fatalf("accepted invalid details %v", a)
		}
	})
}

// TestPayoutRunNamesSkippedPayees: a payout run's answer lists the payees
// with earnings and no bank details, and pays the one that has them.
func TestPayoutRunNamesSkippedPayees(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	svc := e.svc
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	dep := func(ref service.AccountRef, amount int64) {
		_, err := svc.RecordDeposit(ctx, service.Deposit{BankRef: "b-" + ref.String(), Account: ref, AmountMicroUSD: amount})
		mustDo(err)
	}
	dep(service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, 1_000_000_000)
	dep(service.AccountRef{Kind: service.KindSolverBond, Party: "gpu1"}, 100_000_000)
	dep(service.AccountRef{Kind: service.KindVerifierBond, Party: "ver1"}, 100_000_000)
	_, _, err := issueKey(e, "ver1", auth.RoleVerifier, 0)
	mustDo(err)
	_, err = svc.PostAsk(ctx, service.Ask{SolverID: "gpu1", PriceNanoUSDPerCU: 2_000_000_000, Capacity: 1, TTL: time.Hour})
	mustDo(err)
	c, b := e.do("POST", "/v1/jobs", e.client, "j1", jobBody(t, 1, 3_000_000))
	if c != 201 {
		t.Fatalf("job: %d %s", c, b)
	}
	var j service.Job
	mustDo(json.Unmarshal(b, &j))
	for _, ev := range []lifecycle.Event{lifecycle.EventStart, lifecycle.EventCommit, lifecycle.EventOpenAudit} {
		_, err := svc.Advance(ctx, j.ID, ev)
		mustDo(err)
	}
	id, err := spec.ParseJobID(j.ID)
	mustDo(err)
	_, err = svc.AssignAudit(ctx, id, "ver1")
	mustDo(err)
	_, err = svc.Settle(ctx, j.ID, []service.VerifierPay{{VerifierID: "ver1", Audits: 1}})
	mustDo(err)
	mustDo(svc.SetBankDetails(ctx, service.AccountRef{Kind: service.KindVerifierEarnings, Party: "ver1"}, payout.BankAccount{HolderName: "Alan Turing", RoutingNumber: "231380104", AccountNumber: "12345", Type: payout.Checking}))
	e.clk.add(14 * 24 * time.Hour)
	c, b = e.do("POST", "/v1/payouts/runs", e.operator, "r1", `{"period":"2026-11-15"}`)
	if c != 201 {
		t.Fatalf("run: %d %s", c, b)
	}
	var run struct {
		Payees  []service.RunPayee `json:"payees"`
		Skipped []service.RunSkip  `json:"skipped"`
	}
	mustDo(json.Unmarshal(b, &run))
	if len(run.Payees) != 1 || run.Payees[0].PayeeID != "Vver1" || len(run.Skipped) != 1 || run.Skipped[0].PayeeID != "Sgpu1" || run.Skipped[0].Reason == "" {
		t.Fatalf("run %s", b)
	}
}
