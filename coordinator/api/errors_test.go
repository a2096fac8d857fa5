package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/service"
)

// declaredErrors lists the exported Err* variables of a Go file.
func declaredErrors(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, sp := range g.Specs {
				for _, n := range sp.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "Err") && n.IsExported() {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	return names
}

// TestEveryServiceErrorHasAStatus: every service sentinel (and the auth
// errors a handler can return) is answered with its own stable code and a
// status that says whose fault it is, never the catch-all 500; the table
// must name every variable of service/errors.go.
func TestEveryServiceErrorHasAStatus(t *testing.T) {
	t.Parallel()
	want := map[string]struct {
		err    error
		status int
		code   string
	}{
		"ErrInvalid":           {service.ErrInvalid, 400, "invalid_request"},
		"ErrNotFound":          {service.ErrNotFound, 404, "not_found"},
		"ErrConflict":          {service.ErrConflict, 409, "conflict"},
		"ErrInsufficientFunds": {service.ErrInsufficientFunds, 422, "insufficient_funds"},
		"ErrOverflow":          {service.ErrOverflow, 422, "amount_overflow"},
		"ErrIllegalState":      {service.ErrIllegalState, 409, "illegal_state"},
		"ErrPeriodNotDue":      {service.ErrPeriodNotDue, 409, "period_not_due"},
		"ErrNoBankDetails":     {service.ErrNoBankDetails, 409, "no_bank_details"},
		"ErrLedger":            {service.ErrLedger, 422, "ledger_rejected"},
		"ErrBusy":              {service.ErrBusy, 503, "busy"},
		"ErrUnavailable":       {service.ErrUnavailable, 503, "unavailable"},
	}
	codes := map[string]string{}
	for _, name := range declaredErrors(t, "../service/errors.go") {
		c, ok := want[name]
		if !ok {
			t.Errorf("service.%s has no expected status in this test", name)
			continue
		}
		r := fromErr(fmt.Errorf("context: %w", c.err))
		var eb Problem
		if err := json.Unmarshal(r.Body, &eb); err != nil {
			t.Fatal(err)
		}
		if r.Status != c.status || eb.Code != c.code {
			t.Errorf("service.%s: %d %s, want %d %s", name, r.Status, eb.Code, c.status, c.code)
		}
		if prev, dup := codes[eb.Code]; dup {
			t.Errorf("service.%s and service.%s share the code %s", name, prev, eb.Code)
		}
		codes[eb.Code] = name
	}
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{auth.ErrForbidden, 403, "forbidden"},
		{auth.ErrUnauthorized, 401, "unauthorized"},
		{auth.ErrMalformedToken, 401, "unauthorized"},
		{auth.ErrInvalidRole, 400, "invalid_request"},
		{auth.ErrInvalidSubject, 400, "invalid_request"},
	} {
		r := fromErr(fmt.Errorf("context: %w", c.err))
		var eb Problem
		if err := json.Unmarshal(r.Body, &eb); err != nil || r.Status != c.status || eb.Code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.err, r.Status, r.Body, c.status, c.code)
		}
	}
	// Only what no sentinel names is a 500, and its message says nothing
	// of the cause.
	if r := fromErr(errors.New("disk on fire")); r.Status != 500 || strings.Contains(string(r.Body), "fire") {
		t.Errorf("unclassified error: %d %s", r.Status, r.Body)
	}
}

// TestDepositOverflowIs4xx: a deposit that would overflow an account's
// balance gets 422 amount_overflow and moves nothing (it was a 500).
func TestDepositOverflowIs4xx(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":9223372036854775807}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	before := e.snapshot()
	c, b := e.do("POST", "/v1/deposits", e.operator, "d2", `{"bank_ref":"w2","account":"client:acme","amount_micro_usd":1}`)
	var eb Problem
	if err := json.Unmarshal(b, &eb); c != http.StatusUnprocessableEntity || err != nil || eb.Code != "amount_overflow" {
		t.Fatalf("overflowing deposit: %d %s", c, b)
	}
	if e.snapshot() != before {
		t.Fatal("a refused deposit changed the ledger")
	}
	if err := ledger.CheckInvariants(context.Background(), e.led); err != nil {
		t.Fatal(err)
	}
}
