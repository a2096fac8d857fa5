package service

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/market"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/coordinator/vault"
	"github.com/beluga-compute/beluga/spec/catalog"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

func testOriginator() payout.Originator {
	return payout.Originator{
		CompanyName: "BELUGA COMPUTE", CompanyID: "1234567890",
		ImmediateOrigin: "121042882", ImmediateDestination: "031300012", ODFIRouting: "121042882",
	}
}

func testVault(t testing.TB) *vault.Vault {
	s := make([]byte, vault.KeySize)
	for i := range s {
		s[i] = byte(i * 7)
	}
	v, err := vault.New(rand.Reader, vault.Key{ID: 1, Secret: s})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func testOptions(t testing.TB, clk *fakeClock) []Option {
	sch, err := payout.NewSchedule(payout.WithMinimumPayoutCents(1))
	if err != nil {
		t.Fatal(err)
	}
	return []Option{
		WithClock(clk.now), WithSchedule(sch), WithOriginator(testOriginator()), WithVault(testVault(t)),
		WithBookOptions(market.WithMaxPrice(100_000_000_000)),
	}
}

// newMemService returns a service over an in-memory ledger and store.
func newMemService(t testing.TB) (*Service, *ledger.Memory, *fakeClock) {
	clk := &fakeClock{t: t0}
	led := ledger.NewMemory(ledger.WithClock(clk.now))
	st, err := OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), led, st, testOptions(t, clk)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(); led.Close() })
	return s, led, clk
}

var baseSpec []byte

// specJSON returns a valid spec whose job ID depends on seed.
func specJSON(t testing.TB, seed uint64) []byte {
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	s.Seed = seed
	b, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// must panics on error (a failing test); Go cannot pass f()'s two
// results along with t.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func balance(t testing.TB, l ledger.Ledger, r AccountRef) int64 {
	t.Helper()
	a, err := l.Account(context.Background(), r.ID())
	if errors.Is(err, ledger.ErrAccountNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return a.CreditBalanceMicroUSD()
}

func bank(name string) payout.BankAccount {
	return payout.BankAccount{HolderName: name, RoutingNumber: "231380104", AccountNumber: "987654321", Type: payout.Checking}
}
