package service

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// TestJobsArePerClient: two clients posting one spec get two jobs (own
// protocol IDs, escrows and records) that offer the same training; a
// client's re-post returns its job, also after a restart (the posting key
// persists); at another price it conflicts.
func TestJobsArePerClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	s := must(Open(ctx, dir, testOptions(t, clk)...))
	for _, c := range []string{"acme", "beta"} {
		must(s.RecordDeposit(ctx, Deposit{BankRef: c, Account: AccountRef{KindClientFunds, c}, AmountMicroUSD: 1_000_000_000}))
	}
	js := specJSON(t, 1)
	a := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: 3_000_000_000}))
	b := must(s.PostJob(ctx, PostJobRequest{ClientID: "beta", Spec: js, MaxPriceNanoUSDPerCU: 3_000_000_000}))
	if a.ID == b.ID || a.SpecID != b.SpecID {
		t.Fatalf("postings %s (spec %s) and %s (spec %s)", a.ID, a.SpecID, b.ID, b.SpecID)
	}
	for _, j := range []*Job{a, b} {
		off := must(spec.Decode(j.Spec))
		if id := must(off.ID()); id.String() != j.ID {
			t.Errorf("job %s offers spec %s", j.ID, id)
		}
		if balance(t, s.led, AccountRef{KindClientFunds, j.ClientID}) != 1_000_000_000 {
			t.Errorf("%s's funds moved at posting (the escrow is a reservation)", j.ClientID)
		}
		if got := must(s.Job(ctx, must(spec.ParseJobID(j.ID)))); got.ClientID != j.ClientID {
			t.Errorf("job %s belongs to %s", j.ID, got.ClientID)
		}
	}
	if _, err := s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: 4_000_000_000}); !errors.Is(err, ErrConflict) {
		t.Fatalf("acme's re-post at another price: %v", err)
	}
	checkAll(t, s, s.led)
	noErr(t, s.Close())

	s = must(Open(ctx, dir, testOptions(t, clk)...))
	defer s.Close()
	if again := must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: 3_000_000_000})); again.ID != a.ID || again.Seq != a.Seq {
		t.Fatalf("re-post after a restart: %s, want %s", again.ID, a.ID)
	}
	if js, err := s.Jobs(ctx, "beta"); err != nil || len(js) != 1 || js[0].ID != b.ID {
		t.Fatalf("beta's jobs: %v %v", js, err)
	}
	checkAll(t, s, s.led)
}

// TestPostedNameLeavesRoomForTheTag: a spec name too long to carry the
// posting tag is refused with a message that says how long it may be.
func TestPostedNameLeavesRoomForTheTag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, _ := newMemService(t)
	must(s.RecordDeposit(ctx, Deposit{BankRef: "b", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000}))
	sp := must(catalog.Example(catalog.ExampleFashionMNIST))
	sp.Name = strings.Repeat("n", MaxPostedNameLen+1)
	_, err := s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: must(sp.JSON())})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 47") {
		t.Fatalf("long name: %v", err)
	}
	sp.Name = strings.Repeat("n", MaxPostedNameLen)
	must(s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: must(sp.JSON())}))
}

// TestPostRefusesUndisputableJob: a GPT whose step tensors could not be
// opened in one dispute answer is refused at posting, with nothing
// escrowed.
func TestPostRefusesUndisputableJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := must(Open(ctx, t.TempDir(), testOptions(t, &fakeClock{t: t0})...))
	defer s.Close()
	must(s.RecordDeposit(ctx, Deposit{BankRef: "acme", Account: AccountRef{KindClientFunds, "acme"}, AmountMicroUSD: 1_000_000_000_000}))
	wide := spec.ExampleGPT()
	wide.Model.Layers[0].Dim = 1024
	for i := 1; i < len(wide.Model.Layers)-2; i++ {
		wide.Model.Layers[i].Heads, wide.Model.Layers[i].FF = 8, 4096
	}
	js := must(wide.Canonical())
	_, err := s.PostJob(ctx, PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: 3_000_000_000})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "dispute") {
		t.Fatalf("posting a GPT too wide to dispute: %v", err)
	}
	if js, err := s.Jobs(ctx, "acme"); err != nil || len(js) != 0 {
		t.Fatalf("acme's jobs after the refusal: %v %v", js, err)
	}
	if balance(t, s.led, AccountRef{KindClientFunds, "acme"}) != 1_000_000_000_000 {
		t.Fatal("acme's funds moved")
	}
	checkAll(t, s, s.led)
}
