package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/service"
)

// internalWords are what a problem's detail must never show: Go's names
// for types and fields, package prefixes, and ledger account IDs.
var internalWords = regexp.MustCompile(`Go struct|Go value|\bservice: |\bledger: |\bauth: |\bstrictjson: |\b[0-9a-f]{32}\b|\*[a-z]+\.[A-Z]`)

// checkProblem decodes a problem response and checks RFC 9457's members
// and the code extension against what the request should get.
func checkProblem(t *testing.T, what string, status int, header http.Header, body []byte, wantStatus int, wantCode, path string) Problem {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", what, err, body)
		return p
	}
	var members map[string]any
	json.Unmarshal(body, &members)
	for _, m := range []string{"type", "title", "status", "detail", "instance", "code"} {
		if _, ok := members[m]; !ok {
			t.Errorf("%s: no member %q: %s", what, m, body)
		}
	}
	if ct := header.Get("Content-Type"); ct != ProblemContentType {
		t.Errorf("%s: Content-Type %q, want %q", what, ct, ProblemContentType)
	}
	if status != wantStatus || p.Status != wantStatus || p.Code != wantCode {
		t.Errorf("%s: %d (status member %d) code %q, want %d %q: %s", what, status, p.Status, p.Code, wantStatus, wantCode, body)
	}
	if p.Type != ProblemTypeBase+wantCode || p.Title == "" || p.Title != problemTitle(wantCode) {
		t.Errorf("%s: type %q title %q", what, p.Type, p.Title)
	}
	if p.Instance != path {
		t.Errorf("%s: instance %q, want %q", what, p.Instance, path)
	}
	if p.Detail == "" || internalWords.MatchString(p.Detail) {
		t.Errorf("%s: detail %q is empty or in the coordinator's terms", what, p.Detail)
	}
	return p
}

// TestProblemDetailsForEveryCode: every error the API answers is an RFC
// 9457 problem (application/problem+json; type, title, status, detail,
// instance, and the stable code), driven over HTTP for each code a request
// can provoke here, and through the error writer for the rest; each
// documented code is covered once.
func TestProblemDetailsForEveryCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	job := "/v1/jobs/" + strings.Repeat("ab", 32)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d0", `{"bank_ref":"w0","account":"client:acme","amount_micro_usd":9223372036854775807}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	seen := map[string]bool{}
	for _, c := range []struct {
		method, path, key, idem, body string
		status                        int
		code                          string
	}{
		{"POST", "/v1/deposits", e.operator, "a", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":"5"}`, 400, "invalid_request"},
		{"POST", "/v1/jobs", e.client, "b", `{"spec":{"name":"x"}}`, 400, "invalid_spec"},
		{"POST", "/v1/deposits", e.operator, "", `{}`, 400, "idempotency_key_required"},
		{"POST", "/v1/deposits", "", "c", `{}`, 401, "unauthorized"},
		{"POST", "/v1/deposits", "blg_nope_nope", "c", `{}`, 401, "unauthorized"},
		{"POST", "/v1/deposits", e.client, "d", `{}`, 403, "forbidden"},
		{"GET", job, e.client, "", ``, 404, "not_found"},
		{"GET", "/v1/accounts/client:nobody/statement", e.operator, "", ``, 404, "not_found"},
		{"GET", "/v1/nowhere", e.client, "", ``, 404, "not_found"},
		{"GET", "/v1/deposits", e.operator, "", ``, 405, "method_not_allowed"},
		{"POST", "/v1/deposits", e.operator, "e", `{"bank_ref":"w0","account":"client:acme","amount_micro_usd":6}`, 409, "conflict"},
		{"POST", "/v1/deposits", e.operator, "d0", `{"bank_ref":"w9","account":"client:acme","amount_micro_usd":6}`, 409, "idempotency_key_reused"},
		{"POST", "/v1/payouts/runs", e.operator, "f", `{"period":"2026-12-15"}`, 409, "period_not_due"},
		{"POST", "/v1/deposits", e.operator, "g", strings.Repeat(" ", MaxBodyBytes+1), 413, "too_large"},
		{"POST", "/v1/deposits", e.operator, "h", `{"bank_ref":"w2","account":"client:acme","amount_micro_usd":1}`, 422, "amount_overflow"},
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, strings.NewReader(c.body))
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		if c.idem != "" {
			req.Header.Set("Idempotency-Key", c.idem)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkProblem(t, c.method+" "+c.path, resp.StatusCode, resp.Header, b, c.status, c.code, c.path)
		seen[c.code] = true
	}
	// What this environment cannot provoke over HTTP goes through the
	// same writer.
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{service.ErrIllegalState, 409, "illegal_state"},
		{service.ErrNoBankDetails, 409, "no_bank_details"},
		{service.ErrInsufficientFunds, 422, "insufficient_funds"},
		{service.ErrLedger, 422, "ledger_rejected"},
		{service.ErrBusy, 503, "busy"},
		{service.ErrUnavailable, 503, "unavailable"},
		{errors.New("disk on fire"), 500, "internal"},
	} {
		rec := httptest.NewRecorder()
		write(&logWriter{ResponseWriter: rec, path: "/v1/x"}, fromErr(fmt.Errorf("job acme-1: %w", c.err)))
		checkProblem(t, c.code, rec.Code, rec.Header(), rec.Body.Bytes(), c.status, c.code, "/v1/x")
		if c.status == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", c.code)
		}
		seen[c.code] = true
	}
	// Every other code of the document's Problem schema (handlers state
	// them with errResponse) has the same shape and a title of its own.
	for _, code := range loadOpenAPI(t).problemCodes(t) {
		if seen[code] {
			continue
		}
		if _, ok := problemTitles[code]; !ok {
			t.Errorf("code %s (openapi.yaml) has no title in problemTitles", code)
		}
		rec := httptest.NewRecorder()
		write(&logWriter{ResponseWriter: rec, path: "/v1/y"}, errResponse(409, code, "what happened"))
		checkProblem(t, code, rec.Code, rec.Header(), rec.Body.Bytes(), 409, code, "/v1/y")
	}
}

// TestProblemDetailIsInUserTerms: what the decoders, the service and the
// ledger say reaches the client without Go type names, package prefixes
// or ledger account IDs.
func TestProblemDetailIsInUserTerms(t *testing.T) {
	t.Parallel()
	var ute error
	{
		var v struct {
			AmountMicroUSD int64 `json:"amount_micro_usd"`
		}
		ute = json.Unmarshal([]byte(`{"amount_micro_usd":"5"}`), &v)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: %w", errBadRequest, ute), "amount_micro_usd is a JSON string, which is not the integer it must be"},
		{fmt.Errorf("%w: json: cannot unmarshal string into Go struct field DepositRequest.amount_micro_usd of type int64", errBadRequest),
			"amount_micro_usd is a JSON string, which is not the integer it must be"},
		{fmt.Errorf("%w: account client:zz: account 2f2aa3c7ab2e4f260ba6ac0b27cabfa1: ledger: account not found", service.ErrNotFound),
			"not found: account client:zz"},
		{fmt.Errorf("deposit w1: %w: ledger: id exists with different fields: transfer 0 (deposit)", service.ErrConflict),
			"deposit w1: conflicts with an existing record"},
		{fmt.Errorf("%w: account: %w: unknown account kind %q", errBadRequest, service.ErrInvalid, "clientacme"),
			`account: unknown account kind "clientacme"`},
		{fmt.Errorf("%w: spec: malformed: invalid JSON document: $ lacks the required field %q", errInvalidSpec, "numeric"),
			`invalid JSON document: $ lacks the required field "numeric"`},
		{fmt.Errorf("%w: client acme cannot escrow 8150000 micro-dollars", service.ErrInsufficientFunds),
			"insufficient funds: client acme cannot escrow 8150000 micro-dollars"},
	} {
		r := fromErr(c.err)
		var p Problem
		json.Unmarshal(r.Body, &p)
		if p.Detail != c.want {
			t.Errorf("%v:\n got %q\nwant %q", c.err, p.Detail, c.want)
		}
	}
	// A bare sentinel still says something.
	if r := fromErr(errBadRequest); !strings.Contains(string(r.Body), `"detail":"Invalid request"`) {
		t.Errorf("bare sentinel: %s", r.Body)
	}
}

// TestHandlerPanicIs500Problem: a handler that panics gets the client a
// 500 internal problem that says nothing of the cause (before, net/http
// dropped the connection), the operator an ERROR event with the stack,
// and the server goes on serving.
func TestHandlerPanicIs500Problem(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := newEnvLog(t, slog.New(rec))
	e.server.mux.HandleFunc("GET /v1/test-panic", func(http.ResponseWriter, *http.Request) { panic("boom at 0xdeadbeef") })
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/test-panic", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the connection was dropped: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkProblem(t, "panic", resp.StatusCode, resp.Header, b, 500, "internal", "/v1/test-panic")
	if strings.Contains(string(b), "boom") {
		t.Errorf("the panic reached the client: %s", b)
	}
	ev := rec.events("handler panicked")
	if len(ev) != 1 || ev[0]["level"].String() != "ERROR" || !strings.Contains(ev[0]["stack"].String(), "TestHandlerPanicIs500Problem") {
		t.Fatalf("handler panicked events: %v", ev)
	}
	reqs := rec.events("request")
	if len(reqs) != 1 || reqs[0]["level"].String() != "ERROR" || reqs[0]["status"].Int64() != 500 || !strings.Contains(reqs[0]["err"].String(), "boom") {
		t.Errorf("request event: %v", reqs)
	}
	if c, _ := e.do("GET", "/healthz", "", "", ""); c != 200 {
		t.Errorf("after the panic: healthz %d", c)
	}
}
