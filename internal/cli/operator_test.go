package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runOperatorCLI runs `beluga operator args…` against the env's
// coordinator with the operator's key.
func (e *clientEnv) operator(args ...string) (int, string, string) {
	e.t.Helper()
	env := map[string]string{"XDG_CONFIG_HOME": e.dir, envCoordinator: e.srv.URL, envAPIKey: e.opKey}
	root := &cobra.Command{Use: "beluga", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newOperatorCmdEnv(func(k string) string { return env[k] }))
	var out, errb bytes.Buffer
	root.SetArgs(append([]string{"operator"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	code := 0
	if err := root.Execute(); err != nil {
		fmt.Fprintln(&errb, "beluga:", err)
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return code, out.String(), errb.String()
}

// TestOperatorDepositsAndIssuesKeys: the operator records a client's
// deposit in dollars (once per bank reference) and issues a key that then
// works as the client's.
func TestOperatorDepositsAndIssuesKeys(t *testing.T) {
	t.Parallel()
	e := newClientEnv(t)
	before := e.available()
	for range 2 { // the same bank reference twice: one deposit
		if code, _, errs := e.operator("deposit", "--account", "client:acme", "--usd", "12.5", "--bank-ref", "wire-77"); code != 0 {
			t.Fatalf("deposit: exit %d: %s", code, errs)
		}
	}
	if got := e.available() - before; got != 12_500_000 {
		t.Fatalf("deposited %d micro-dollars, want 12500000", got)
	}
	code, out, errs := e.operator("key", "--role", "client", "--subject", "acme")
	if code != 0 {
		t.Fatalf("key: exit %d: %s", code, errs)
	}
	key := strings.TrimSpace(out)
	e.key = key
	if code, _, errs := e.cli("list"); code != 0 {
		t.Fatalf("the issued key does not work: exit %d: %s", code, errs)
	}
	// A client's key cannot do the operator's work.
	e.opKey = key
	if code, _, _ := e.operator("deposit", "--account", "client:acme", "--usd", "1", "--bank-ref", "w-2"); code == 0 {
		t.Fatal("a client's key recorded a deposit")
	}
}

func TestParseUSD(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"100": 100_000_000, "12.50": 12_500_000, "$0.000001": 1, ".5": 500_000} {
		if got, err := parseUSD(in); err != nil || got != want {
			t.Errorf("parseUSD(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.0000001", "abc", "1e6", "+3", "1 000", "$", "99999999999999999999"} {
		if _, err := parseUSD(in); err == nil {
			t.Errorf("parseUSD(%q) accepted", in)
		}
	}
}
