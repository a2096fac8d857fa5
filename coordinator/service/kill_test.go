package service

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/spec/spectest"
)

const killChildEnv = "BELUGA_SERVICE_KILL_CHILD"

// killClock runs 1 real millisecond as 1 hour from the start time stored
// in dir, so that payout periods pass within a short test and the clock
// keeps running forward across restarts.
func killClock(t testing.TB, dir string) *fakeClock {
	b, err := os.ReadFile(filepath.Join(dir, "start"))
	if err != nil {
		t.Fatal(err)
	}
	start, _ := strconv.ParseInt(string(b), 10, 64)
	c := &fakeClock{}
	c.t = t0.Add(time.Duration(time.Now().UnixNano()-start) * 3_600_000)
	return c
}

// TestKill9 runs random operations (deposits, jobs, settlements, slashes,
// payout runs) in a child process against a badger directory, kills it with
// SIGKILL at random moments, restarts it, and finally checks the ledger's
// invariants, that balances equal a journal replay, that no payee was paid
// twice for a period and that every run's ACH file rebuilds identically and
// totals what the ledger moved to payouts in transit.
func TestKill9(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	kills := 5
	if spectest.IsSlow() {
		kills = 25
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "start"), []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.v")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, "BELUGA_KILL_SEED="+strconv.Itoa(i))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(400+rng.IntN(1200)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child %d ended on its own (%v):\n%s", i, err, out.String())
		}
	}
	ctx := context.Background()
	clk := killClock(t, dir)
	s, err := Open(ctx, dir, testOptions(t, clk)...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkAll(t, s, s.led)
	r, err := ledger.Replay(ctx, s.led)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.led.ScanAccounts(ctx, func(a ledger.Account) error {
		if r.Balances[a.ID] != a.Balances {
			return fmt.Errorf("account %s: %+v, replay %+v", a.ID, a.Balances, r.Balances[a.ID])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkPayoutsOnce(t, s)
	t.Logf("after %d kills: %d journal entries (%d transfers)", kills, r.LastSeq, r.Transfers)
}

// checkPayoutsOnce checks each (period, payee) is paid at most once, and
// every posted run's ACH file rebuilds identically and totals what the
// ledger moved.
func checkPayoutsOnce(t testing.TB, s *Service) {
	ctx := context.Background()
	paid := map[string]int{}
	var after ledger.TransferID
	for {
		ts := must(s.led.AccountTransfers(ctx, AccountRef{Kind: KindPayoutsInTransit}.ID(), after, 1000))
		for _, tr := range ts {
			key := partyOf(ledger.Account{UserData: tr.UserData}) + "/" + tr.DebitAccountID.String()
			if paid[key]++; paid[key] > 1 {
				t.Fatalf("payee paid twice: %s", key)
			}
		}
		if len(ts) < 1000 {
			break
		}
		after = ts[len(ts)-1].ID
	}
	runs, entries := 0, 0
	noErr(t, s.store.scan("run/", func(_ string, v []byte) error {
		var r Run
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if !r.Posted {
			return fmt.Errorf("run %s not posted after recovery", r.Period)
		}
		runs++
		if len(r.Payees) == 0 {
			if got := inTransitFor(t, s.led, r.Period); got != 0 {
				return fmt.Errorf("run %s paid nobody but the ledger moved %d", r.Period, got)
			}
			return nil
		}
		again, err := s.RebuildACH(ctx, r.Period)
		if err != nil {
			return err
		}
		if string(again) != string(r.ACH) {
			return fmt.Errorf("run %s: rebuilt ACH differs", r.Period)
		}
		sum, err := payout.ParseACH(r.ACH)
		if err != nil {
			return err
		}
		entries += sum.EntryCount
		if got := inTransitFor(t, s.led, r.Period); sum.TotalCreditCents*payout.MicroUSDPerCent != got {
			return fmt.Errorf("run %s: ACH %d cents, ledger %d micro-dollars", r.Period, sum.TotalCreditCents, got)
		}
		return nil
	}))
	if runs == 0 || entries == 0 {
		t.Fatalf("the test never ran a payout with entries (%d runs, %d entries)", runs, entries)
	}
	t.Logf("%d payout runs, %d ACH entries, %d payouts", runs, entries, len(paid))
}

func killChild(t *testing.T, dir string) {
	ctx := context.Background()
	clk := killClock(t, dir)
	// The child's clock follows real time.
	go func() {
		for {
			time.Sleep(time.Millisecond)
			c := killClock(t, dir)
			clk.mu.Lock()
			clk.t = c.t
			clk.mu.Unlock()
		}
	}()
	s, err := Open(ctx, dir, testOptions(t, clk)...)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := strconv.ParseUint(os.Getenv("BELUGA_KILL_SEED"), 10, 64)
	d := newDriver(t, s, clk, seed)
	noErr(t, s.store.scan("job/", func(k string, _ []byte) error {
		d.jobs = append(d.jobs, strings.TrimPrefix(k, "job/"))
		return nil
	}))
	for i := 0; ; i++ {
		name, err := d.step(ctx)
		if !expected(err) {
			t.Fatalf("op %d %s: %v", i, name, err)
		}
		if i%100 == 0 {
			fmt.Fprintf(os.Stderr, "op %d %s %s\n", i, name, clk.now().Format(time.DateOnly))
		}
	}
}
