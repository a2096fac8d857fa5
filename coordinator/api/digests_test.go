package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// specBody is a job request for the Fashion-MNIST example edited by edit.
func specBody(t testing.TB, maxPrice int64, edit func(*spec.Spec)) string {
	t.Helper()
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	edit(s)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"spec":%s,"max_price_nano_usd_per_cu":%d}`, b, maxPrice*1000) // maxPrice in µ$/CU
}

// TestPostJobTooManyDigests: a job whose trace would not fit the wire
// (100k steps, a digest after every step) is refused at posting with a 400
// that names the digest interval that would fit, and escrows nothing;
// before, it was accepted and its honest solver's every trace commit was
// refused as malformed.
func TestPostJobTooManyDigests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if c, b := e.do("POST", "/v1/deposits", e.operator, "d1", `{"bank_ref":"w1","account":"client:acme","amount_micro_usd":9000000000000000}`); c != 201 {
		t.Fatalf("deposit: %d %s", c, b)
	}
	before := e.snapshot()
	body := specBody(t, 1, func(s *spec.Spec) {
		s.Steps, s.DigestInterval, s.CheckpointInterval = 100_000, 1, 500
		s.Optimizer.LR[len(s.Optimizer.LR)-1].Step = s.Steps
	})
	c, b := e.do("POST", "/v1/jobs", e.client, "j1", body)
	if c != 400 {
		t.Fatalf("job with %d digests: %d %s", int64(100_001), c, b)
	}
	var eb Problem
	if err := json.Unmarshal(b, &eb); err != nil || eb.Code != "invalid_spec" {
		t.Errorf("error body %s, want code invalid_spec", b)
	}
	if !bytes.Contains(b, []byte("digest_interval to at least 2")) {
		t.Errorf("the error does not say which interval fits: %s", b)
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("a refused job changed the ledger:\n%s\n%s", before, after)
	}
	if err := ledger.CheckInvariants(context.Background(), e.led); err != nil {
		t.Fatal(err)
	}
	// The interval the message names is accepted.
	body = specBody(t, 1, func(s *spec.Spec) {
		s.Steps, s.DigestInterval, s.CheckpointInterval = 100_000, 2, 500
		s.Optimizer.LR[len(s.Optimizer.LR)-1].Step = s.Steps
	})
	if c, b := e.do("POST", "/v1/jobs", e.client, "j2", body); c != 201 {
		t.Fatalf("job with digest_interval 2: %d %s", c, b)
	}
}
