package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func newHarness(t *testing.T, l Ledger, clock *fakeClock) *harness {
	return &harness{t: t, l: l, clock: clock, ctx: context.Background()}
}

func dump(t *testing.T, a Auditor) string {
	t.Helper()
	ctx := context.Background()
	var as []Account
	var es []Entry
	ps := map[TransferID]PendingStatus{}
	if err := a.ScanAccounts(ctx, func(x Account) error { as = append(as, x); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.ScanJournal(ctx, 0, func(e Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.ScanPending(ctx, func(p PendingStatus) error { ps[p.ID] = p; return nil }); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(as, es, ps)
}

func TestBadgerReopen(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	b := openTestBadger(t, dir, clock.Now)
	h := newHarness(t, b, clock)
	h.base()
	last := h.ok(tx("timed", client, escrow, 10, pending(5)))[0]
	before := dump(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	clock.Advance(-time.Hour) // the clock is behind the stored time
	b = openTestBadger(t, dir, clock.Now)
	defer b.Close()
	h = newHarness(t, b, clock)
	if after := dump(t, b); after != before {
		t.Fatalf("state changed across reopen:\n%s\n%s", before, after)
	}
	h.check()
	r := h.ok(tx("after", bank, client, 1))[0]
	if r.Seq != last.Seq+1 || r.TimestampUnixNano != last.TimestampUnixNano {
		t.Errorf("after reopen: %+v, last before %+v", r, last)
	}
	// The deadline index survived: the timed hold expires.
	clock.Advance(time.Hour + 5*time.Second)
	ids, err := b.Expire(h.ctx)
	if err != nil || len(ids) != 1 || ids[0] != DeriveTransferID("timed") {
		t.Fatalf("Expire after reopen = %v, %v", ids, err)
	}
	h.check()
}

// TestBadgerConcurrentSubmitters runs workers concurrently on one ledger.
// Each worker has its own flagged accounts and shares unflagged hot ones,
// so its results do not depend on the interleaving: they must equal a
// Memory ledger running that worker alone. Verify runs alongside.
func TestBadgerConcurrentSubmitters(t *testing.T) {
	const workers, batches = 8, 25
	ctx := context.Background()
	clock := newFakeClock()
	b := openTestBadger(t, t.TempDir(), clock.Now)
	defer b.Close()
	hot, fees := DeriveAccountID("hot"), DeriveAccountID("fees")
	accts := []Account{{ID: hot, Ledger: LedgerUSD, Code: CodeBankClearing}, {ID: fees, Ledger: LedgerUSD, Code: CodePlatformFees}}
	own := func(w int) (AccountID, AccountID) {
		return DeriveAccountID("c", fmt.Sprint(w)), DeriveAccountID("e", fmt.Sprint(w))
	}
	for w := range workers {
		c, e := own(w)
		accts = append(accts,
			Account{ID: c, Ledger: LedgerUSD, Code: CodeClientFunds, Flags: DebitsMustNotExceedCredits},
			Account{ID: e, Ledger: LedgerUSD, Code: CodeJobEscrow, Flags: DebitsMustNotExceedCredits})
	}
	if _, err := b.CreateAccounts(ctx, accts); err != nil {
		t.Fatal(err)
	}
	script := func(w int) [][]Transfer {
		r := rand.New(rand.NewPCG(uint64(w), 1))
		c, e := own(w)
		var out [][]Transfer
		n := 0
		mk := func(dr, cr AccountID, amt int64, f ...func(*Transfer)) Transfer {
			n++
			return tx(fmt.Sprint("w", w, "/", n), dr, cr, amt, f...)
		}
		for range batches {
			var ts []Transfer
			for len(ts) < 25 {
				switch r.IntN(5) {
				case 0:
					ts = append(ts, mk(hot, c, 1+r.Int64N(500)))
				case 1:
					p := mk(c, e, 1+r.Int64N(300), pending(0))
					ts = append(ts, p)
					ts = append(ts, Transfer{ID: DeriveTransferID(fmt.Sprint("w", w, "/post/", n)), DebitAccountID: c, CreditAccountID: e,
						AmountMicroUSD: 1 + r.Int64N(p.AmountMicroUSD), PendingID: p.ID, Ledger: LedgerUSD, Code: 1, Flags: PostPending})
				case 2:
					ts = append(ts, mk(e, fees, 1+r.Int64N(100), linked), mk(e, c, 1+r.Int64N(100)))
				case 3:
					if len(ts) > 0 {
						ts = append(ts, ts[r.IntN(len(ts))])
					}
				default:
					ts = append(ts, mk(c, hot, 1+r.Int64N(400)))
				}
			}
			if ts[len(ts)-1].Flags&Linked != 0 {
				ts = ts[:len(ts)-1]
			}
			out = append(out, ts)
		}
		return out
	}

	stop := make(chan struct{})
	verified := make(chan error, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				verified <- nil
				return
			default:
			}
			if err := b.Verify(ctx); err != nil {
				verified <- err
				return
			}
			n++
		}
	}()
	commits0 := b.commits.Load()
	got := make([][][]Result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for _, ts := range script(w) {
				res, err := b.Submit(ctx, ts)
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], res)
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-verified; err != nil {
		t.Fatalf("Verify during writes: %v", err)
	}
	t.Logf("%d batches in %d commits", workers*batches, b.commits.Load()-commits0)
	if err := CheckInvariants(ctx, b); err != nil {
		t.Fatal(err)
	}

	strip := func(rs []Result) []Result {
		out := make([]Result, len(rs))
		for i, r := range rs {
			out[i] = Result{Err: r.Err, Existed: r.Existed}
		}
		return out
	}
	for w := range workers {
		m := NewMemory(WithClock(clock.Now))
		if _, err := m.CreateAccounts(ctx, accts); err != nil {
			t.Fatal(err)
		}
		for i, ts := range script(w) {
			want, err := m.Submit(ctx, ts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(strip(want), strip(got[w][i])) {
				t.Fatalf("worker %d batch %d:\nmemory %v\nbadger %v", w, i, strip(want), strip(got[w][i]))
			}
		}
		c, e := own(w)
		for _, id := range []AccountID{c, e} {
			wa, _ := m.Account(ctx, id)
			ga, _ := b.Account(ctx, id)
			if wa.Balances != ga.Balances {
				t.Errorf("worker %d account %s: memory %+v badger %+v", w, id, wa.Balances, ga.Balances)
			}
		}
	}
}

// TestBadgerLargeBatch submits more than one badger transaction holds,
// in chains up to the maximum length, and expires more pending transfers
// at once than one transaction holds.
func TestBadgerLargeBatch(t *testing.T) {
	clock := newFakeClock()
	// The smallest memtable that holds a chain keeps the test quick.
	b, err := OpenBadger("", WithInMemory(), WithClock(clock.Now),
		WithBadgerOptions(func(o badger.Options) badger.Options { return o.WithMemTableSize(12 << 20) }))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Logf("%d transfers per transaction", b.txnUnits)
	h := newHarness(t, b, clock)
	h.createTestAccounts()
	var ts []Transfer
	for len(ts) < 3*b.txnUnits+17 {
		n := 1 + rand.IntN(MaxChainTransfers)
		if len(ts)%5 == 0 {
			n = MaxChainTransfers
		}
		for i := range n {
			f := []func(*Transfer){}
			if i < n-1 {
				f = append(f, linked)
			}
			ts = append(ts, tx(fmt.Sprint("big", len(ts)), bank, escrow, 1, f...))
		}
	}
	c0 := b.commits.Load()
	h.ok(ts...)
	if c := b.commits.Load() - c0; c < 4 {
		t.Errorf("%d transfers (%d per transaction) committed in %d transactions", len(ts), b.txnUnits, c)
	}
	if got := h.balances(escrow).CreditsPostedMicroUSD; got != int64(len(ts)) {
		t.Errorf("escrow got %d, want %d", got, len(ts))
	}

	ts = ts[:0]
	for i := range 2*b.txnUnits + 5 {
		ts = append(ts, tx(fmt.Sprint("hold", i), bank, escrow, 1, pending(1)))
	}
	h.ok(ts...)
	clock.Advance(time.Second)
	c0 = b.commits.Load()
	ids, err := b.Expire(h.ctx)
	if err != nil || len(ids) != len(ts) {
		t.Fatalf("Expire: %d of %d, %v", len(ids), len(ts), err)
	}
	if c := b.commits.Load() - c0; c < 3 {
		t.Errorf("%d expiries committed in %d transactions", len(ids), c)
	}
	h.check()
	if p := h.balances(escrow).CreditsPendingMicroUSD; p != 0 {
		t.Errorf("escrow still holds %d pending", p)
	}
}

func TestBadgerCorruption(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	b := openTestBadger(t, "", clock.Now)
	defer b.Close()
	newHarness(t, b, clock).base()
	flip := func(key []byte, at int) {
		t.Helper()
		if err := b.db.Update(func(txn *badger.Txn) error {
			item, err := txn.Get(key)
			if err != nil {
				return err
			}
			v, _ := item.ValueCopy(nil)
			v[at] ^= 0x40
			return txn.Set(key, v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	flip(journalKey(3), 40)
	if err := b.ScanJournal(ctx, 0, func(Entry) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ScanJournal over a flipped journal entry: %v", err)
	}
	if err := b.Verify(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify: %v", err)
	}
	flip(accountKey(client), 30)
	if _, err := b.Account(ctx, client); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Account over a flipped record: %v", err)
	}
	// A write that reads corrupt state stops the ledger: it cannot tell
	// what is true any more.
	if _, err := b.Submit(ctx, []Transfer{tx("x", client, solver, 1)}); !errors.Is(err, ErrFailed) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("Submit over a corrupt account: %v", err)
	}
	if _, err := b.Submit(ctx, []Transfer{tx("y", bank, solver, 1)}); !errors.Is(err, ErrFailed) {
		t.Errorf("Submit after a failure: %v", err)
	}
}

func TestBadgerOpenChecks(t *testing.T) {
	if _, err := OpenBadger(""); !errors.Is(err, errNoDir) {
		t.Errorf("OpenBadger(\"\") = %v", err)
	}
	small := WithBadgerOptions(func(o badger.Options) badger.Options { return o.WithMemTableSize(1 << 20) })
	if _, err := OpenBadger("", WithInMemory(), small); err == nil {
		t.Error("OpenBadger accepted a memtable too small for a chain")
	}
	// A meta record that disagrees with the journal is corruption.
	dir := t.TempDir()
	clock := newFakeClock()
	b := openTestBadger(t, dir, clock.Now)
	newHarness(t, b, clock).base()
	if err := b.db.Update(func(txn *badger.Txn) error {
		return txn.Set(keyMeta, encodeMeta(meta{lastSeq: b.meta.lastSeq + 1, lastTS: b.meta.lastTS}))
	}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := OpenBadger(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("open with a bad meta record: %v", err)
	}
}

// TestBadgerReadOnly opens a ledger read-only: reads and Verify work, and
// the first failed write stops the ledger.
func TestBadgerReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := newFakeClock()
	b := openTestBadger(t, dir, clock.Now)
	newHarness(t, b, clock).base()
	b.Close()
	ro, err := OpenBadger(dir, WithBadgerOptions(func(o badger.Options) badger.Options { return o.WithReadOnly(true) }))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if a, err := ro.Account(ctx, client); err != nil || a.CreditsPostedMicroUSD != 1000 {
		t.Errorf("Account = %+v, %v", a, err)
	}
	for range 2 {
		if _, err := ro.Submit(ctx, []Transfer{tx("x", bank, client, 1)}); !errors.Is(err, ErrFailed) {
			t.Errorf("Submit on a read-only ledger = %v", err)
		}
	}
}

func TestDeriveIDs(t *testing.T) {
	if DeriveTransferID("ab", "c") == DeriveTransferID("a", "bc") {
		t.Error("parts are not length-prefixed")
	}
	if [16]byte(DeriveTransferID("x")) == [16]byte(DeriveAccountID("x")) {
		t.Error("account and transfer IDs share a domain")
	}
	if DeriveAccountID("x").IsZero() || len(DeriveAccountID("x").String()) != 32 {
		t.Error("bad ID")
	}
}
