package ledger

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDurableTransfers measures durable (fsynced) transfers per
// second on an on-disk Badger ledger: submitters concurrent callers, each
// submitting batches of batch plain transfers from one hot account to 64
// flagged client accounts. b.N counts transfers. Timing never decides a
// test: run with go test -run '^$' -bench DurableTransfers.
func BenchmarkDurableTransfers(b *testing.B) {
	for _, c := range []struct{ submitters, batch int }{
		{8, 100}, {1, 100}, {1, 1000}, {64, 1}, {1, 1},
	} {
		b.Run(fmt.Sprintf("submitters=%d/batch=%d", c.submitters, c.batch), func(b *testing.B) {
			benchSubmit(b, b.TempDir(), c.submitters, c.batch)
		})
	}
}

// BenchmarkSubmitInMemory is the same work on an in-memory Badger: no
// fsync, so it shows the CPU cost per transfer, the ceiling once the disk
// is fast.
func BenchmarkSubmitInMemory(b *testing.B) {
	for _, c := range []struct{ submitters, batch int }{{8, 100}, {1, 100}} {
		b.Run(fmt.Sprintf("submitters=%d/batch=%d", c.submitters, c.batch), func(b *testing.B) {
			benchSubmit(b, "", c.submitters, c.batch)
		})
	}
}

func benchSubmit(b *testing.B, dir string, submitters, batch int) {
	ctx := context.Background()
	opts := []Option{}
	if dir == "" {
		opts = append(opts, WithInMemory())
	}
	l, err := OpenBadger(dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	hot := DeriveAccountID("bench", "bank")
	accts := []Account{{ID: hot, Ledger: LedgerUSD, Code: CodeBankClearing}}
	for i := range 64 {
		accts = append(accts, Account{ID: DeriveAccountID("bench", fmt.Sprint(i)), Ledger: LedgerUSD,
			Code: CodeClientFunds, Flags: DebitsMustNotExceedCredits})
	}
	if _, err := l.CreateAccounts(ctx, accts); err != nil {
		b.Fatal(err)
	}
	batches := (b.N + batch - 1) / batch
	var next atomic.Int64
	var failed atomic.Int64
	commits0 := l.commits.Load()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range submitters {
		wg.Go(func() {
			ts := make([]Transfer, batch)
			for {
				k := int(next.Add(1)) - 1
				if k >= batches {
					return
				}
				for i := range ts {
					n := k*batch + i
					ts[i] = Transfer{ID: DeriveTransferID("bench", fmt.Sprint(w), fmt.Sprint(n)), DebitAccountID: hot,
						CreditAccountID: accts[1+n%64].ID, AmountMicroUSD: 1, Ledger: LedgerUSD, Code: 1}
				}
				res, err := l.Submit(ctx, ts)
				if err != nil {
					b.Error(err)
					return
				}
				for _, r := range res {
					if r.Err != nil {
						failed.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d transfers failed", failed.Load())
	}
	n := batches * batch
	commits := l.commits.Load() - commits0
	b.ReportMetric(float64(n)/elapsed.Seconds(), "transfers/s")
	b.ReportMetric(float64(n)/float64(max(commits, 1)), "transfers/commit")
	b.ReportMetric(float64(elapsed.Microseconds())/float64(max(commits, 1)), "µs/commit")
}
