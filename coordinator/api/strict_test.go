package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/beluga-compute/beluga/coordinator/ledger"
)

// TestBodiesAreStrict: every request body is read by spec/strictjson's
// rules — keys match exactly (case included) and appear once, required
// fields are present and not null, the bytes are UTF-8 — so that one body
// has one reading. Each of these was accepted before (encoding/json folds
// case, keeps the last duplicate, reads null as zero, and replaces bad
// UTF-8), and each is now a 400 that changes nothing.
func TestBodiesAreStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "seed", `{"bank_ref":"w0","account":"client:acme","amount_micro_usd":1000000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	job := jobBody(t, 3, 3_000_000)
	var env map[string]json.RawMessage
	if err := json.Unmarshal([]byte(job), &env); err != nil {
		t.Fatal(err)
	}
	sp := string(env["spec"])
	cases := []struct{ name, path, key, body string }{
		{"deposit: key case", "/v1/deposits", e.operator, `{"Bank_Ref":"x1","account":"client:acme","amount_micro_usd":5}`},
		{"deposit: duplicate key", "/v1/deposits", e.operator, `{"bank_ref":"x2","bank_ref":"x3","account":"client:acme","amount_micro_usd":5}`},
		{"deposit: null", "/v1/deposits", e.operator, `{"bank_ref":"x4","account":"client:acme","amount_micro_usd":null}`},
		{"deposit: bad utf-8", "/v1/deposits", e.operator, "{\"bank_ref\":\"x5\xff\",\"account\":\"client:acme\",\"amount_micro_usd\":5}"},
		{"deposit: lone surrogate", "/v1/deposits", e.operator, `{"bank_ref":"x6\ud800","account":"client:acme","amount_micro_usd":5}`},
		{"job: key case", "/v1/jobs", e.client, `{"Spec":` + sp + `,"max_price_nano_usd_per_cu":3000000000}`},
		{"job: duplicate spec", "/v1/jobs", e.client, `{"spec":` + sp + `,"spec":` + sp + `}`},
		{"job: null price", "/v1/jobs", e.client, `{"spec":` + sp + `,"max_price_nano_usd_per_cu":null}`},
		{"job: null spec", "/v1/jobs", e.client, `{"spec":null}`},
		{"job: missing spec", "/v1/jobs", e.client, `{"max_price_nano_usd_per_cu":3000000000}`},
		{"payout run: key case", "/v1/payouts/runs", e.operator, `{"Period":"2026-11-15"}`},
		{"payout run: duplicate", "/v1/payouts/runs", e.operator, `{"period":"2026-11-15","period":"2026-11-30"}`},
		{"key: key case", "/v1/keys", e.operator, `{"Subject":"beta","role":"client"}`},
		{"key: duplicate", "/v1/keys", e.operator, `{"subject":"beta","subject":"gamma","role":"client"}`},
		{"key: null", "/v1/keys", e.operator, `{"subject":"beta","role":null}`},
	}
	before := e.snapshot()
	for i, c := range cases {
		code, b := e.do("POST", c.path, c.key, "strict-"+string(rune('a'+i)), c.body)
		var eb Problem
		if err := json.Unmarshal(b, &eb); code != 400 || err != nil || (eb.Code != "invalid_request" && eb.Code != "invalid_spec") {
			t.Errorf("%s: %d %s", c.name, code, b)
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused body changed the ledger")
	}
	if err := ledger.CheckInvariants(context.Background(), e.led); err != nil {
		t.Fatal(err)
	}
	// The price may be left out: the market price.
	if c, b := e.do("POST", "/v1/jobs", e.client, "no-price", `{"spec":`+sp+`}`); c != 201 {
		t.Fatalf("job without a price: %d %s", c, b)
	}
}

// topKeys returns the keys of the top-level object of b, in order, or
// false if b is not an object.
func topKeys(b []byte) ([]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return keys, true
}

// checkStrict fails t unless b — a body a decoder accepted — is valid
// UTF-8 holding one object whose keys are all in allowed, spelled exactly,
// once each, with every key of required present and no null value.
func checkStrict(t *testing.T, b []byte, required, optional []string) {
	t.Helper()
	if !utf8.Valid(b) {
		t.Fatalf("accepted invalid UTF-8 %q", b)
	}
	keys, ok := topKeys(b)
	if !ok {
		t.Fatalf("accepted a body that is not one object: %q", b)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] || !slices.Contains(required, k) && !slices.Contains(optional, k) {
			t.Fatalf("accepted key %q (repeated or unknown) in %q", k, b)
		}
		seen[k] = true
	}
	for _, k := range required {
		if !seen[k] {
			t.Fatalf("accepted %q without %q", b, k)
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if string(v) == "null" {
			t.Fatalf("accepted null %s in %q", k, b)
		}
	}
}
