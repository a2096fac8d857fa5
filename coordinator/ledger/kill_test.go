package ledger

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The kill -9 test re-executes the test binary as a child that submits
// batches to a badger directory in a loop and prints one line per
// acknowledged batch; the parent SIGKILLs it at a random moment, reopens
// the directory and checks that nothing acknowledged was lost, nothing
// applied twice, and the invariants hold. The next child first resubmits
// the batches around the kill and reports what each transfer did, which
// must be "already exists" for everything acknowledged as applied.
//
// kill -9 tests process crashes: the page cache survives, so this does not
// test power loss (that rests on SyncWrites fsyncing every commit).

const (
	envKillDir   = "BELUGA_LEDGER_KILL_DIR"
	envKillRound = "BELUGA_LEDGER_KILL_ROUND"
	envKillResub = "BELUGA_LEDGER_KILL_RESUB" // round:from:to
)

var (
	killBank   = DeriveAccountID("kill", "bank")
	killSolver = DeriveAccountID("kill", "solver")
	killFees   = DeriveAccountID("kill", "fees")
)

func killClient(i int) AccountID { return DeriveAccountID("kill", "client", strconv.Itoa(i)) }
func killEscrow(i int) AccountID { return DeriveAccountID("kill", "escrow", strconv.Itoa(i)) }

func killAccounts() []Account {
	as := []Account{
		{ID: killBank, Ledger: LedgerUSD, Code: CodeBankClearing},
		{ID: killSolver, Ledger: LedgerUSD, Code: CodeSolverEarnings, Flags: DebitsMustNotExceedCredits},
		{ID: killFees, Ledger: LedgerUSD, Code: CodePlatformFees, Flags: DebitsMustNotExceedCredits},
	}
	for i := range 4 {
		as = append(as,
			Account{ID: killClient(i), Ledger: LedgerUSD, Code: CodeClientFunds, Flags: DebitsMustNotExceedCredits},
			Account{ID: killEscrow(i), Ledger: LedgerUSD, Code: CodeJobEscrow, Flags: DebitsMustNotExceedCredits})
	}
	return as
}

// killBase is batch b of round round without its cross-batch resolutions.
func killBase(round, b int) []Transfer {
	r := rand.New(rand.NewPCG(uint64(round), uint64(b)))
	var ts []Transfer
	add := func(dr, cr AccountID, amt int64, flags TransferFlags, pendingID TransferID, timeout uint32) Transfer {
		t := Transfer{ID: DeriveTransferID("kill", strconv.Itoa(round), strconv.Itoa(b), strconv.Itoa(len(ts))),
			DebitAccountID: dr, CreditAccountID: cr, AmountMicroUSD: amt, PendingID: pendingID,
			TimeoutSec: timeout, Ledger: LedgerUSD, Code: 7, Flags: flags}
		ts = append(ts, t)
		return t
	}
	for n := 10 + r.IntN(40); len(ts) < n; {
		i := r.IntN(4)
		c, e := killClient(i), killEscrow(i)
		switch r.IntN(6) {
		case 0:
			add(killBank, c, 100+r.Int64N(900), 0, TransferID{}, 0)
		case 1:
			p := add(c, e, 1+r.Int64N(300), Pending, TransferID{}, uint32(r.IntN(3)))
			switch r.IntN(3) {
			case 0:
				add(c, e, 1+r.Int64N(p.AmountMicroUSD), PostPending, p.ID, 0)
			case 1:
				add(c, e, p.AmountMicroUSD, VoidPending, p.ID, 0)
			}
		case 2: // settlement chain
			add(c, e, 300, Linked, TransferID{}, 0)
			add(e, killSolver, 200, Linked, TransferID{}, 0)
			add(e, killFees, 50, Linked, TransferID{}, 0)
			add(e, c, 50, 0, TransferID{}, 0)
		case 3:
			if len(ts) > 0 {
				ts = append(ts, ts[r.IntN(len(ts))]) // a retry inside the batch
			}
		default:
			add(c, killSolver, 1+r.Int64N(200), 0, TransferID{}, 0)
		}
	}
	if ts[len(ts)-1].Flags&Linked != 0 { // a duplicated chain member at the end
		ts = ts[:len(ts)-1]
	}
	return ts
}

// killBatch is batch b of round round: its base, then posts and voids of
// some pending transfers of batch b-1.
func killBatch(round, b int) []Transfer {
	ts := killBase(round, b)
	if b == 0 {
		return ts
	}
	r := rand.New(rand.NewPCG(uint64(round), uint64(b)+1<<32))
	for i, p := range killBase(round, b-1) {
		if p.Flags&Pending == 0 || r.IntN(2) == 0 {
			continue
		}
		t := Transfer{ID: DeriveTransferID("kill", strconv.Itoa(round), strconv.Itoa(b), "r", strconv.Itoa(i)),
			DebitAccountID: p.DebitAccountID, CreditAccountID: p.CreditAccountID, AmountMicroUSD: p.AmountMicroUSD,
			PendingID: p.ID, Ledger: LedgerUSD, Code: 8, Flags: PostPending}
		if r.IntN(2) == 0 {
			t.Flags = VoidPending
		}
		ts = append(ts, t)
	}
	return ts
}

// outcomes encodes results as one letter each: O applied, E existed,
// F failed.
func outcomes(res []Result) string {
	var sb strings.Builder
	for _, r := range res {
		switch {
		case r.Existed:
			sb.WriteByte('E')
		case r.Err == nil:
			sb.WriteByte('O')
		default:
			sb.WriteByte('F')
		}
	}
	return sb.String()
}

// killChild is the child's main: it never returns.
func killChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	round, _ := strconv.Atoi(os.Getenv(envKillRound))
	ctx := context.Background()
	l, err := OpenBadger(os.Getenv(envKillDir))
	if err != nil {
		fail(err)
	}
	if _, err := l.CreateAccounts(ctx, killAccounts()); err != nil {
		fail(err)
	}
	if rs := os.Getenv(envKillResub); rs != "" {
		var r, from, to int
		if _, err := fmt.Sscanf(rs, "%d:%d:%d", &r, &from, &to); err != nil {
			fail(err)
		}
		for b := from; b <= to; b++ {
			res, err := l.Submit(ctx, killBatch(r, b))
			if err != nil {
				fail(err)
			}
			fmt.Fprintf(os.Stdout, "resub %d %d %s\n", r, b, outcomes(res))
		}
	}
	fmt.Fprintln(os.Stdout, "ready")
	deadline := time.Now().Add(10 * time.Second)
	for b := 0; b < 5000 && time.Now().Before(deadline); b++ {
		res, err := l.Submit(ctx, killBatch(round, b))
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(os.Stdout, "ack %d %d %s\n", round, b, outcomes(res))
	}
	l.Close()
	os.Exit(0)
}

func TestKill9(t *testing.T) {
	if os.Getenv(envKillDir) != "" {
		killChild()
	}
	rounds := 8
	if long() {
		rounds = 40
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	ctx := context.Background()
	acked := map[[2]int]string{} // (round, batch) → outcomes
	lastAcked := -1
	total, resubs := 0, 0
	for round := 1; round <= rounds; round++ {
		env := append(os.Environ(), envKillDir+"="+dir, envKillRound+"="+strconv.Itoa(round))
		if round > 1 {
			env = append(env, fmt.Sprintf("%s=%d:%d:%d", envKillResub, round-1, max(0, lastAcked-5), lastAcked+3))
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
		cmd.Env = env
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			io.Copy(io.Discard, stdout)
		}()
		// Kill at a random moment: usually mid-loop, sometimes during open
		// and recovery.
		delay := time.Duration(rng.IntN(400)) * time.Millisecond
		if rng.IntN(4) == 0 {
			delay = time.Duration(rng.IntN(60)) * time.Millisecond
		}
		killed := make(chan struct{})
		go func() {
			defer close(killed)
			time.Sleep(delay)
			cmd.Process.Kill() // SIGKILL
		}()
		lastAcked = -1
		for line := range lines {
			f := strings.Fields(line)
			switch {
			case len(f) == 4 && f[0] == "ack":
				r, _ := strconv.Atoi(f[1])
				b, _ := strconv.Atoi(f[2])
				acked[[2]int{r, b}] = f[3]
				lastAcked = b
			case len(f) == 4 && f[0] == "resub":
				r, _ := strconv.Atoi(f[1])
				b, _ := strconv.Atoi(f[2])
				resubs++
				if before, ok := acked[[2]int{r, b}]; ok {
					for i := range before {
						if before[i] != 'F' && f[3][i] != 'E' {
							t.Errorf("round %d batch %d transfer %d: acknowledged %c, after the crash resubmitted as %c", r, b, i, before[i], f[3][i])
						}
					}
				}
			}
		}
		<-killed
		err = cmd.Wait()
		if st, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !st.Signaled() {
			t.Logf("round %d: child exited on its own: %v", round, err)
		}
		total += lastAcked + 1

		// Reopen and check.
		l, err := OpenBadger(dir)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if err := CheckInvariants(ctx, l); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for b := 0; b <= lastAcked; b++ {
			out := acked[[2]int{round, b}]
			for i, tr := range killBatch(round, b) {
				if out[i] == 'F' {
					continue
				}
				got, err := l.Transfer(ctx, tr.ID)
				if err != nil {
					t.Fatalf("round %d batch %d transfer %d acknowledged, lost: %v", round, b, i, err)
				}
				if !got.sameRequest(tr) {
					t.Fatalf("round %d batch %d transfer %d: stored %+v, submitted %+v", round, b, i, got, tr)
				}
			}
		}
		l.Close()
		t.Logf("round %d: killed after %v, %d batches acknowledged", round, delay, lastAcked+1)
	}
	if total == 0 || resubs == 0 {
		t.Errorf("%d batches acknowledged and %d resubmitted in all rounds: the test tested nothing", total, resubs)
	}
}
