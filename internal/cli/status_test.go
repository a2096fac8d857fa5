package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/coordinatord"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// signalWriter collects output and closes seen when want first appears.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestDaemonKeyFileUnderDir: without --key, a daemon's identity key is
// peer.key in its --dir (not ./beluga-solver whatever --dir says), and it
// prints its party ID and the operator's commands before it joins.
func TestDaemonKeyFileUnderDir(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	// Nothing listens there: the daemon retries until cancelled.
	coord := fmt.Sprintf("/ip4/127.0.0.1/tcp/9/p2p/%s", id)
	for _, role := range []wire.Role{wire.RoleSolver, wire.RoleVerifier} {
		name := roleName(role)
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "work")
			out := &signalWriter{want: "identity", seen: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				root := newRoot()
				args := []string{name, "--coordinator", coord, "--dir", dir, "--listen", "/ip4/127.0.0.1/tcp/0"}
				if role == wire.RoleSolver {
					args = append(args, "--no-idle-check")
				}
				root.SetArgs(args)
				root.SetOut(out)
				root.SetErr(out)
				done <- root.ExecuteContext(ctx)
			}()
			select {
			case <-out.seen:
			case err := <-done:
				t.Fatalf("the %s exited before saying who it is: %v\n%s", name, err, out)
			}
			cancel()
			<-done
			kf := filepath.Join(dir, "peer.key")
			k, err := os.ReadFile(kf)
			if err != nil {
				t.Fatalf("no key under --dir: %v\n%s", err, out)
			}
			priv, err := crypto.UnmarshalPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := peer.IDFromPrivateKey(priv)
			party := join.PartyID(role, pid)
			text := out.String()
			for _, want := range []string{party, "beluga operator deposit --account " + name + "_bond:" + party, "beluga operator key --role " + name + " --subject " + party, kf} {
				if !strings.Contains(text, want) {
					t.Fatalf("the %s's start does not say %q:\n%s", name, want, text)
				}
			}
			if _, err := os.Stat(filepath.Join("beluga-"+name, "peer.key")); err == nil {
				t.Fatalf("a key was written to ./beluga-%s despite --dir", name)
			}
		})
	}
}

// TestSolverStatusCommand: `beluga solver status` finds its party from the
// key under --dir and shows, with its own API key, its bond and next
// payout from the real coordinator API.
func TestSolverStatusCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := coordinatord.Open(ctx, coordinatord.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(c.API)
	defer srv.Close()
	dir := t.TempDir()
	pid, party, err := identity(wire.RoleSolver, keyPath("", dir))
	if err != nil || pid == "" {
		t.Fatal(err)
	}
	if _, err := c.Service.RecordDeposit(ctx, service.Deposit{BankRef: "b1", Account: service.AccountRef{Kind: service.KindSolverBond, Party: party}, AmountMicroUSD: 100_000_000}); err != nil {
		t.Fatal(err)
	}
	key, _, err := c.Keys.Issue(ctx, party, auth.RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Main([]string{"solver", "status", "--coordinator", srv.URL, "--api-key", key, "--dir", dir}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"solver " + party, "bond      $100.00 free", "earnings  $0.00", "payout    next run", "no bank details", "jobs      0"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("status lacks %q:\n%s", want, out.String())
		}
	}
	// Another party's key: refused in user terms.
	other, _, _ := c.Keys.Issue(ctx, "sother", auth.RoleSolver, 0)
	out.Reset()
	errOut.Reset()
	if code := Main([]string{"solver", "status", "--coordinator", srv.URL, "--api-key", other, "--dir", dir}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no such party") {
		t.Fatalf("another party's key: exit %d, %s", code, errOut.String())
	}
}

// TestWatchPartyLogsSettledPaidAndMissingBank: the daemon's view of its
// party (polled from the API) logs a job settled, another slashed, the
// earnings, and, once, that no bank details are on file.
func TestWatchPartyLogsSettledPaidAndMissingBank(t *testing.T) {
	t.Parallel()
	mk := func(earnings int64, bank bool, jobs ...string) *partyStatus {
		st := &partyStatus{Party: "sabc", Role: "solver", EarningsMicroUSD: earnings}
		st.NextPayout.Period, st.NextPayout.BankDetails = "2026-12-15", bank
		for i := 0; i < len(jobs); i += 2 {
			st.Jobs = append(st.Jobs, struct {
				JobID string `json:"job_id"`
				State string `json:"state"`
				Steps int64  `json:"steps"`
			}{JobID: jobs[i], State: jobs[i+1]})
		}
		return st
	}
	readings := []*partyStatus{
		mk(0, false, "aaaaaaaaaaaaaaaa", "running", "bbbbbbbbbbbbbbbb", "running"),
		mk(0, false, "aaaaaaaaaaaaaaaa", "auditing", "bbbbbbbbbbbbbbbb", "running"),
		mk(2_000_000, false, "aaaaaaaaaaaaaaaa", "settled", "bbbbbbbbbbbbbbbb", "adjudicated_cheat"),
		mk(2_000_000, false, "aaaaaaaaaaaaaaaa", "settled", "bbbbbbbbbbbbbbbb", "adjudicated_cheat"),
	}
	var mu sync.Mutex
	var got []string
	log := slog.New(&msgHandler{f: func(msg string, attrs map[string]string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, msg+" "+attrs["job"]+attrs["state"]+attrs["earnings_micro_usd"])
	}})
	ctx, cancel := context.WithCancel(context.Background())
	i := 0
	watchParty(ctx, log, func(context.Context) (*partyStatus, error) {
		st := readings[i]
		if i++; i == len(readings) {
			cancel()
		}
		return st, nil
	}, time.Millisecond)
	want := []string{
		eventEarnings + " 0",
		eventSettled + " aaaaaaaaaaaasettled",
		eventJobEnded + " bbbbbbbbbbbbadjudicated_cheat",
		eventEarnings + " 2000000",
		eventNoBank + " ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// msgHandler hands each record's message and attributes to f.
type msgHandler struct {
	f func(msg string, attrs map[string]string)
}

func (h *msgHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *msgHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.f(r.Message, m)
	return nil
}
func (h *msgHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *msgHandler) WithGroup(string) slog.Handler      { return h }
