package console_test

import (
	"context"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// TestJobPageShowsBackend: the job page names the job's solver and the
// backend it said it trained on.
func TestJobPageShowsBackend(t *testing.T) {
	t.Parallel()
	c := newCoord(t)
	ctx := context.Background()
	svc := c.cd.Service
	for _, d := range []service.Deposit{
		{BankRef: "c", Account: service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, AmountMicroUSD: 1_000_000_000},
		{BankRef: "s", Account: service.AccountRef{Kind: service.KindSolverBond, Party: "sgpu"}, AmountMicroUSD: 1_000_000_000},
	} {
		if _, err := svc.RecordDeposit(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.PostAsk(ctx, service.Ask{SolverID: "sgpu", PriceNanoUSDPerCU: 200_000_000, Capacity: 1, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	j, err := svc.PostJob(ctx, service.PostJobRequest{ClientID: "acme", Spec: js, MaxPriceNanoUSDPerCU: 300_000_000})
	if err != nil {
		t.Fatal(err)
	}
	const vk = "vulkan (NVIDIA H100 80GB HBM3)"
	if _, err := svc.Start(ctx, j.ID, vk); err != nil {
		t.Fatal(err)
	}
	b := c.browser()
	b.login(c.opKey)
	code, body := b.get("/jobs/" + j.ID)
	if code != 200 || !strings.Contains(html.UnescapeString(body), "<code>sgpu</code>, trained on "+vk) {
		t.Fatalf("job page (%d) does not show the solver's backend:\n%.2000s", code, body)
	}
}
