package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/console"
	"github.com/beluga-compute/beluga/coordinator/coordinatord"
)

// coord is a real coordinator (service over badger, API, console) on an
// httptest server, without a libp2p node.
type coord struct {
	t     testing.TB
	srv   *httptest.Server
	cd    *coordinatord.Coordinator
	opKey string
}

func newCoord(t testing.TB) *coord {
	t.Helper()
	ctx := context.Background()
	cd, err := coordinatord.Open(ctx, coordinatord.Config{DataDir: t.TempDir(), Signup: &api.Signup{Instructions: "Wire to Test Bank, routing 021000021, account 42."}})
	if err != nil {
		t.Fatal(err)
	}
	op, err := cd.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cd.Handler())
	t.Cleanup(func() { srv.Close(); cd.Close() })
	return &coord{t: t, srv: srv, cd: cd, opKey: op}
}

// browser is a cookie-keeping client that sends this origin, as a browser
// submitting the console's own forms does.
type browser struct {
	c    *coord
	http *http.Client
}

func (c *coord) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: c, http: &http.Client{Jar: jar}}
}

func (b *browser) do(req *http.Request) (int, string) {
	b.c.t.Helper()
	req.Header.Set("Origin", b.c.srv.URL)
	resp, err := b.http.Do(req)
	if err != nil {
		b.c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) get(path string) (int, string) {
	req, _ := http.NewRequest("GET", b.c.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	req, _ := http.NewRequest("POST", b.c.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// multipart posts fields and, if file is not nil, a spec file.
func (b *browser) multipart(path string, fields map[string]string, fileName string, file []byte) (int, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("spec", fileName)
		fw.Write(file)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", b.c.srv.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the CSRF token of the page at path.
func (b *browser) csrf(path string) string {
	b.c.t.Helper()
	_, body := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.c.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// login logs the browser in with key.
func (b *browser) login(key string) {
	b.c.t.Helper()
	if code, body := b.post("/login", url.Values{"key": {key}}); code != 200 {
		b.c.t.Fatalf("log in: %d %.300s", code, body)
	}
}

// api calls the JSON API directly.
func (c *coord) api(method, path, key, body string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Idempotency-Key", fmt.Sprint(len(body), path, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// state is everything a form could change: the ledger's accounts and
// every job.
func (c *coord) state() string {
	c.t.Helper()
	_, l := c.api("GET", "/v1/ledger?limit=1000", c.opKey, "")
	_, j := c.api("GET", "/v1/jobs?limit=1000", c.opKey, "")
	_, p := c.api("GET", "/v1/parties?limit=1000", c.opKey, "")
	return regexp.MustCompile(`"checked_at":"[^"]*"`).ReplaceAllString(string(l), "") + string(j) + string(p)
}

// fieldErr is the message shown next to field id, "" if none.
func fieldErr(body, id string) string {
	m := regexp.MustCompile(`<p class="err" id="` + regexp.QuoteMeta(id) + `-err" role="alert">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestPagesAreSafeAndServed: every public page answers with the strict
// CSP and no inline script or style; role pages send a visitor without a
// key to log in; the API is still served beside the console.
func TestPagesAreSafeAndServed(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	b := c.browser()
	for _, path := range []string{"/", "/login", "/signup", "/solver/start", "/verifier/start", "/static/console.css", "/static/console.js"} {
		req, _ := http.NewRequest("GET", c.srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != console.ContentSecurityPolicy {
			t.Errorf("%s: %d, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		if s := string(body); strings.Contains(s, "<script>") || strings.Contains(s, " style=") || strings.Contains(s, "onclick") || strings.Contains(s, "https://cdn") {
			t.Errorf("%s has inline script or style, or a CDN", path)
		}
	}
	if code, body := b.get("/client"); code != 200 || !strings.Contains(body, `action="/login"`) {
		t.Errorf("/client without a key: %d", code)
	}
	if code, _ := c.api("GET", "/healthz", "", ""); code != 200 {
		t.Errorf("/healthz beside the console: %d", code)
	}
	if code, _ := b.get("/nope"); code != 404 {
		t.Errorf("/nope: %d", code)
	}
}

// TestFormsRefuseBadInput: each form's bad input — negative and malformed
// amounts, a malformed spec, a spec file over 64 KiB, an upload over the
// body limit, a job the funds do not cover, a bad party, a bad period, a
// bad routing number, a missing CSRF token — is answered with a clear
// message next to its field (or the form), and changes nothing in the
// ledger, the jobs or the parties.
func TestFormsRefuseBadInput(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	client := c.browser()
	if code, body := client.post("/signup", nil); code != 201 || !strings.Contains(body, "BELUGA-C") {
		t.Fatalf("sign-up: %d %.300s", code, body)
	}
	csrf := client.csrf("/client")
	before := c.state()
	job := func(extra map[string]string) map[string]string {
		f := map[string]string{"csrf": csrf, "source": "example", "example": "synthetic", "steps": "50"}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	cases := []struct {
		name, path, field, want string
		fields                  map[string]string
		file                    []byte
	}{
		{"negative steps", "/client/quote", "steps", "whole number", job(map[string]string{"steps": "-3"}), nil},
		{"negative price", "/client/quote", "max_price", "cannot be negative", job(map[string]string{"max_price": "-0.001"}), nil},
		{"malformed price", "/client/quote", "max_price", "not an amount", job(map[string]string{"max_price": "1e5"}), nil},
		{"malformed spec", "/client/quote", "spec", "not a valid job spec", job(map[string]string{"source": "upload"}), []byte(`{"version":1,"name":`)},
		{"spec over 64 KiB", "/client/quote", "spec", "at most 64 KiB", job(map[string]string{"source": "upload"}), bytes.Repeat([]byte(" "), 70<<10)},
		{"upload over the body limit", "/client/quote", "spec", fmt.Sprintf("over %d MiB", console.MaxUploadBytes>>20), job(map[string]string{"source": "upload"}), bytes.Repeat([]byte(" "), console.MaxUploadBytes+1)},
		{"unfunded post", "/client/jobs", "", "do not cover", job(nil), nil},
	}
	for _, tc := range cases {
		code, body := client.multipart(tc.path, tc.fields, "job.json", tc.file)
		msg := fieldErr(body, tc.field)
		if tc.field == "" {
			msg = body
		}
		if code != 422 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d, message %q (want %q next to %q)", tc.name, code, msg, tc.want, tc.field)
		}
	}
	// The quote itself works and changes nothing either.
	if code, body := client.multipart("/client/quote", job(nil), "", nil); code != 200 || !strings.Contains(body, `id="quote-total"`) {
		t.Errorf("quote: %d %.300s", code, body)
	}

	op := c.browser()
	op.login(c.opKey)
	ocsrf := op.csrf("/operator")
	opCases := []struct {
		name, path, field, want string
		form                    url.Values
	}{
		{"negative deposit", "/operator/deposit", "dep_amount", "cannot be negative", url.Values{"dep_account": {"client:acme"}, "dep_amount": {"-5"}, "dep_ref": {"w1"}}},
		{"zero deposit", "/operator/deposit", "dep_amount", "more than $0", url.Values{"dep_account": {"client:acme"}, "dep_amount": {"0"}, "dep_ref": {"w1"}}},
		{"bad account", "/operator/deposit", "dep_account", "client:PARTY", url.Values{"dep_account": {"acme"}, "dep_amount": {"5"}, "dep_ref": {"w1"}}},
		{"too many decimals", "/operator/deposit", "dep_amount", "at most 6 digits", url.Values{"dep_account": {"client:acme"}, "dep_amount": {"1.0000001"}, "dep_ref": {"w1"}}},
		{"bad subject", "/operator/key", "key_subject", "letters, digits", url.Values{"key_subject": {"no spaces!"}, "key_role": {"solver"}}},
		{"bad period", "/operator/payout", "period", "YYYY-MM-DD", url.Values{"period": {"soon"}}},
		{"period not over", "/operator/payout", "period", "ends at", url.Values{"period": {"2099-01-15"}}},
	}
	for _, tc := range opCases {
		tc.form.Set("csrf", ocsrf)
		code, body := op.post(tc.path, tc.form)
		if msg := fieldErr(body, tc.field); code != 422 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d, message %q (want %q next to %q)", tc.name, code, msg, tc.want, tc.field)
		}
	}
	// A form without its CSRF token (another site's) changes nothing.
	if code, body := op.post("/operator/deposit", url.Values{"dep_account": {"client:acme"}, "dep_amount": {"5"}, "dep_ref": {"x"}}); code != 403 || !strings.Contains(body, "nothing was changed") {
		t.Errorf("deposit without CSRF: %d", code)
	}

	// A solver's bank form.
	key, _, err := c.cd.Keys.Issue(context.Background(), "sgpu1", auth.RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	solver := c.browser()
	solver.login(key)
	scsrf := solver.csrf("/solver")
	code, body := solver.post("/bank", url.Values{"csrf": {scsrf}, "holder": {"Ada"}, "routing": {"12345"}, "account": {"000123"}, "type": {"checking"}})
	if msg := fieldErr(body, "routing"); code != 422 || !strings.Contains(msg, "9 digits") || strings.Contains(body, "000123") {
		t.Errorf("bad routing: %d %q (the account number must not be echoed)", code, msg)
	}
	if code, body := solver.get("/solver?price=own&ask=-1"); code != 200 || !strings.Contains(fieldErr(body, "ask"), "cannot be negative") {
		t.Errorf("negative ask: %d %q", code, fieldErr(body, "ask"))
	}

	if after := c.state(); after != before {
		t.Errorf("bad input changed the coordinator's state:\nbefore %s\nafter  %s", before, after)
	}
	// And good input through the same forms does change it.
	code, body = op.post("/operator/deposit", url.Values{"csrf": {ocsrf}, "dep_account": {"solver_bond:sgpu1"}, "dep_amount": {"25.50"}, "dep_ref": {"wire-1"}})
	if code != 200 || !strings.Contains(body, "Deposit recorded") {
		t.Fatalf("deposit: %d %.400s", code, body)
	}
	var party struct {
		BondMicroUSD int64 `json:"bond_micro_usd"`
	}
	_, pb := c.api("GET", "/v1/parties/sgpu1", key, "")
	if json.Unmarshal(pb, &party); party.BondMicroUSD != 25_500_000 {
		t.Errorf("bond after the deposit form: %s", pb)
	}
}
