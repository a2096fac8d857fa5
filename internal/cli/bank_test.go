package cli

import (
	"context"
	"crypto/rand"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/coordinator/vault"
)

// TestSolverBank: `beluga solver bank` registers the solver's bank details
// through the API with its own key (sealed by the coordinator), prints
// them masked, and --show reads them back.
func TestSolverBank(t *testing.T) {
	ctx := context.Background()
	led := ledger.NewMemory()
	st, err := service.OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := vault.New(rand.Reader, vault.Key{ID: 1, Secret: make([]byte, vault.KeySize)})
	svc, err := service.New(ctx, led, st, service.WithVault(v))
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewKeys(st, rand.Reader, time.Now)
	key, _, err := keys.Issue(ctx, "s7kq2", auth.RoleSolver, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(svc, keys, nil))
	t.Cleanup(func() { srv.Close(); st.Close(); led.Close() })
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())

	code, out, errs := run(t, "solver", "bank", "--coordinator", srv.URL, "--api-key", key, "--party", "s7kq2",
		"--holder", "Ada Lovelace", "--routing", "231380104", "--account", "987654321")
	if code != 0 || !strings.Contains(out, "ending 4321") || strings.Contains(out, "987654321") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	d, ok, err := svc.BankDetails(ctx, service.AccountRef{Kind: service.KindSolverEarnings, Party: "s7kq2"})
	if err != nil || !ok || d.AccountNumber != "987654321" || d.HolderName != "Ada Lovelace" {
		t.Fatalf("stored %v %v %v", d, ok, err)
	}
	if code, out, errs := run(t, "solver", "bank", "--coordinator", srv.URL, "--api-key", key, "--party", "s7kq2", "--show"); code != 0 || !strings.Contains(out, "on file for solver_earnings:s7kq2") {
		t.Fatalf("show: exit %d: %s%s", code, out, errs)
	}
	// A bad routing number is refused in the coordinator's words.
	if code, _, errs := run(t, "solver", "bank", "--coordinator", srv.URL, "--api-key", key, "--party", "s7kq2",
		"--holder", "Ada", "--routing", "231380105", "--account", "1"); code == 0 || !strings.Contains(errs, "routing") {
		t.Fatalf("bad routing: exit %d: %s", code, errs)
	}
	if code, _, errs := run(t, "verifier", "bank", "--coordinator", srv.URL, "--api-key", key, "--holder", "A", "--routing", "231380104", "--account", "1"); code != exitUsage || !strings.Contains(errs, "--party") {
		t.Fatalf("no party: exit %d: %s", code, errs)
	}
}
