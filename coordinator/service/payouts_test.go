package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/payout"
)

// records is a slog handler that keeps records for assertions.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

// attrs returns the attributes of the records at level with message msg.
func (h *records) attrs(level slog.Level, msg string) []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]string
	for _, r := range h.recs {
		if r.Level == level && r.Message == msg {
			m := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
			out = append(out, m)
		}
	}
	return out
}

// earn settles one job so that gpu1 and ver1 have earnings.
func earn(t testing.TB, s *Service) *Job {
	t.Helper()
	fund(t, s)
	j := runToAuditWindow(t, s, specJSON(t, 31), 2_000_000_000, 3_000_000_000)
	return must(s.Settle(context.Background(), j.ID, []VerifierPay{{VerifierID: "ver1", Audits: 1}}))
}

// TestPayoutSkipsPartyWithoutBankDetails: a payee with earnings and no
// bank details is skipped, named in the run with why, and logged at WARN
// ("payout skipped"); its earnings stay for the next run, which pays them
// once the details are registered.
func TestPayoutSkipsPartyWithoutBankDetails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := &records{}
	clk := &fakeClock{t: t0}
	led := ledger.NewMemory(ledger.WithClock(clk.now))
	st := must(OpenStore(""))
	t.Cleanup(func() { st.Close(); led.Close() })
	s := must(New(ctx, led, st, append(testOptions(t, clk), WithLogger(slog.New(log)))...))
	earn(t, s)
	noErr(t, s.SetBankDetails(ctx, AccountRef{KindVerifierEarnings, "ver1"}, bank("Alan Turing")))
	earned := balance(t, led, AccountRef{KindSolverEarnings, "gpu1"})
	clk.add(14 * 24 * time.Hour)
	r := must(s.RunPayouts(ctx, "2026-11-15"))
	if len(r.Payees) != 1 || r.Payees[0].PayeeID != "Vver1" {
		t.Fatalf("payees %+v", r.Payees)
	}
	if len(r.Skipped) != 1 || r.Skipped[0].PayeeID != "Sgpu1" || r.Skipped[0].Reason != SkipNoBankDetails || r.Skipped[0].Cents != earned/payout.MicroUSDPerCent {
		t.Fatalf("skipped %+v", r.Skipped)
	}
	ev := log.attrs(slog.LevelWarn, "payout skipped")
	if len(ev) != 1 || ev[0]["payee"] != "Sgpu1" || ev[0]["period"] != "2026-11-15" || ev[0]["account"] != "solver_earnings:gpu1" || ev[0]["reason"] == "" {
		t.Fatalf("warn events %v", ev)
	}
	if got := balance(t, led, AccountRef{KindSolverEarnings, "gpu1"}); got != earned {
		t.Fatalf("the skipped payee's earnings moved: %d, had %d", got, earned)
	}
	noErr(t, s.SetBankDetails(ctx, AccountRef{KindSolverEarnings, "gpu1"}, bank("Ada Lovelace")))
	clk.add(20 * 24 * time.Hour)
	r = must(s.RunPayouts(ctx, "2026-12-01"))
	if len(r.Payees) != 1 || r.Payees[0].PayeeID != "Sgpu1" || len(r.Skipped) != 0 {
		t.Fatalf("next run: payees %+v, skipped %+v", r.Payees, r.Skipped)
	}
	checkAll(t, s, led)
}

// TestPayoutWithoutVaultSkipsEveryone: without a vault no bank details can
// be read: the run names every payee skipped, for that reason.
func TestPayoutWithoutVaultSkipsEveryone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: t0}
	led := ledger.NewMemory(ledger.WithClock(clk.now))
	st := must(OpenStore(""))
	t.Cleanup(func() { st.Close(); led.Close() })
	s := must(New(ctx, led, st, append(testOptions(t, clk), WithVault(nil))...))
	if s.HasVault() {
		t.Fatal("HasVault without a vault")
	}
	earn(t, s)
	if err := s.SetBankDetails(ctx, AccountRef{KindSolverEarnings, "gpu1"}, bank("Ada Lovelace")); !errors.Is(err, ErrInvalid) || !errors.Is(err, errNoVault) {
		t.Fatalf("bank details without a vault: %v", err)
	}
	clk.add(14 * 24 * time.Hour)
	r := must(s.RunPayouts(ctx, "2026-11-15"))
	if len(r.Payees) != 0 || len(r.Skipped) != 2 || r.Skipped[0].Reason != SkipNoVault {
		t.Fatalf("payees %+v, skipped %+v", r.Payees, r.Skipped)
	}
}

// TestPayoutNeedsOriginator: a run with payees and no ACH originator is
// refused before any money moves, and succeeds once one is configured.
func TestPayoutNeedsOriginator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: t0}
	led := ledger.NewMemory(ledger.WithClock(clk.now))
	st := must(OpenStore(""))
	t.Cleanup(func() { st.Close(); led.Close() })
	s := must(New(ctx, led, st, append(testOptions(t, clk), WithOriginator(payout.Originator{}))...))
	earn(t, s)
	noErr(t, s.SetBankDetails(ctx, AccountRef{KindSolverEarnings, "gpu1"}, bank("Ada Lovelace")))
	clk.add(14 * 24 * time.Hour)
	before := snapshot(t, led)
	if _, err := s.RunPayouts(ctx, "2026-11-15"); !errors.Is(err, ErrInvalid) || !errors.Is(err, payout.ErrInvalidOriginator) {
		t.Fatalf("run without originator: %v", err)
	}
	if snapshot(t, led) != before {
		t.Fatal("a refused run moved money")
	}
	if _, err := s.PayoutRun(ctx, "2026-11-15"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused run was stored: %v", err)
	}
}

// TestScheduledPayoutsSurviveRestart: the scheduler over the service runs
// the period due on start, and after a restart of the whole service
// (badger, reopened) runs nothing again: one run, one ledger transfer per
// payee, one "payout run" event.
func TestScheduledPayoutsSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	s := must(Open(ctx, dir, testOptions(t, clk)...))
	earn(t, s)
	noErr(t, s.SetBankDetails(ctx, AccountRef{KindSolverEarnings, "gpu1"}, bank("Ada Lovelace")))
	noErr(t, s.SetBankDetails(ctx, AccountRef{KindVerifierEarnings, "ver1"}, bank("Alan Turing")))
	clk.add(14 * 24 * time.Hour) // 2026-11-16: the 15th's run is due
	sclk := schedClock{clk}
	log := &records{}
	runOnce := func(s *Service) {
		sch := must(payout.NewScheduler(s.Schedule(), s.PayoutExecutor(), payout.WithClock(sclk), payout.WithLogger(slog.New(log))))
		noErr(t, sch.RunDue(ctx))
	}
	runOnce(s)
	first := must(s.PayoutRun(ctx, "2026-11-15"))
	if !first.Posted || len(first.Payees) != 2 {
		t.Fatalf("run %+v", first)
	}
	noErr(t, s.Close())
	s = must(Open(ctx, dir, testOptions(t, clk)...))
	defer s.Close()
	runOnce(s)
	again := must(s.PayoutRun(ctx, "2026-11-15"))
	if string(again.ACH) != string(first.ACH) {
		t.Fatal("the run changed after a restart")
	}
	if n := len(log.attrs(slog.LevelInfo, "payout run")); n != 1 {
		t.Fatalf("%d payout run events, want 1", n)
	}
	if got, want := inTransitFor(t, s.led, "2026-11-15"), first.TotalCents*payout.MicroUSDPerCent; got != want {
		t.Fatalf("in transit %d, run total %d", got, want)
	}
	checkAll(t, s, s.led)
}

// schedClock adapts the tests' clock to payout.Clock (its timers are not
// used by RunDue).
type schedClock struct{ c *fakeClock }

func (c schedClock) Now() time.Time                         { return c.c.now() }
func (c schedClock) After(d time.Duration) <-chan time.Time { return make(chan time.Time) }
