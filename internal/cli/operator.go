package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newOperatorCmd is `beluga operator`: what the coordinator's operator
// does over its HTTP API — issue API keys, record bank deposits (client
// funds, solver and verifier bonds) and run payouts — without hand-written
// JSON. It reads the coordinator's address and the operator's key as the
// client commands do (flags, environment, config file).
func newOperatorCmd() *cobra.Command { return newOperatorCmdEnv(os.Getenv) }

func newOperatorCmdEnv(getenv func(string) string) *cobra.Command {
	f := &jobFlags{getenv: getenv}
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Operator: issue API keys, record deposits and bonds, run payouts",
		Long: `The coordinator operator's side of its HTTP API. The operator's key is the
bootstrap key 'beluga coordinator' prints on its first start (or one issued
with --role operator).

The coordinator's address and the key come from --coordinator and --api-key,
else the environment (` + envCoordinator + `, ` + envAPIKey + `), else the
config file (--config).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.coordinator, "coordinator", "", "the coordinator's HTTP API, e.g. http://127.0.0.1:8700")
	pf.StringVar(&f.apiKey, "api-key", "", "the operator's API key")
	pf.StringVar(&f.config, "config", "", "config file (default $XDG_CONFIG_HOME/beluga/client.json)")
	pf.BoolVar(&f.json, "json", false, "print JSON for programs")
	cmd.AddCommand(newOperatorKeyCmd(f), newOperatorDepositCmd(f), newOperatorPayoutCmd(f))
	return cmd
}

func newOperatorKeyCmd(f *jobFlags) *cobra.Command {
	var role, subject string
	cmd := &cobra.Command{
		Use:   "key --role client|solver|verifier|operator --subject ID",
		Short: "Issue an API key (shown once)",
		Long: `Issues an API key. A client's subject is its name (e.g. acme); a solver's or
verifier's is the party ID its daemon prints at start. The key is printed once
and stored hashed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" || subject == "" {
				return &exitError{code: exitUsage, err: errors.New("give --role and --subject")}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"subject": subject, "role": role})
			var out struct {
				Key     string `json:"key"`
				KeyID   string `json:"key_id"`
				Subject string `json:"subject"`
				Role    string `json:"role"`
			}
			raw, err := c.call(cmd.Context(), "POST", "/v1/keys", idemKey("key", body)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36), body, &out)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "API key for %s %s (shown once, stored hashed):\n", out.Role, out.Subject)
			fmt.Fprintln(cmd.OutOrStdout(), out.Key)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "client, solver, verifier or operator")
	cmd.Flags().StringVar(&subject, "subject", "", "the client's name or the daemon's party ID")
	return cmd
}

func newOperatorDepositCmd(f *jobFlags) *cobra.Command {
	var account, amount, bankRef string
	cmd := &cobra.Command{
		Use:   "deposit --account KIND:PARTY --usd AMOUNT --bank-ref REF",
		Short: "Record money received at the bank: a client's funds or a party's bond",
		Long: `Records a deposit received at the bank into an account:
  client:NAME          a client's funds (jobs are escrowed from it)
  solver_bond:PARTY    a solver's bond (locked while it runs a job)
  verifier_bond:PARTY  a verifier's bond (locked while it audits)
The bank reference makes the deposit idempotent: recording the same reference
twice records the money once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if account == "" || amount == "" || bankRef == "" {
				return &exitError{code: exitUsage, err: errors.New("give --account, --usd and --bank-ref")}
			}
			micro, err := parseUSD(amount)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]any{"account": account, "amount_micro_usd": micro, "bank_ref": bankRef})
			raw, err := c.call(cmd.Context(), "POST", "/v1/deposits", "deposit-"+bankRef, body, nil)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deposited %s into %s (bank reference %s)\n", usd(micro), account, bankRef)
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "client:NAME, solver_bond:PARTY or verifier_bond:PARTY")
	cmd.Flags().StringVar(&amount, "usd", "", "amount in US dollars, e.g. 100 or 12.50")
	cmd.Flags().StringVar(&bankRef, "bank-ref", "", "the bank's reference for the transfer (makes it idempotent)")
	return cmd
}

func newOperatorPayoutCmd(f *jobFlags) *cobra.Command {
	var period, achOut string
	cmd := &cobra.Command{
		Use:   "payout --period YYYY-MM-DD [--ach FILE]",
		Short: "Run the payout of a period (the 1st or 15th) and optionally save its ACH file",
		Long: `Runs the payout of a period by hand (the coordinator also runs them itself
on the 1st and the 15th): every solver's and verifier's earnings with bank
details registered are paid by ACH. Running a period twice pays once. With
--ach, the run's NACHA file is written to FILE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := time.Parse(time.DateOnly, period); err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--period %q: give a date YYYY-MM-DD (the 1st or the 15th)", period)}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"period": period})
			var run struct {
				Period     string `json:"period"`
				TotalCents int64  `json:"total_cents"`
				Payees     []struct {
					Party string `json:"payee_id"`
					Cents int64  `json:"cents"`
				} `json:"payees"`
			}
			raw, err := c.call(cmd.Context(), "POST", "/v1/payouts/runs", "payout-"+period, body, &run)
			if err != nil {
				return err
			}
			if achOut != "" {
				if err := saveACH(cmd, c, period, achOut); err != nil {
					return err
				}
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "payout %s: %d payee(s), $%d.%02d\n", run.Period, len(run.Payees), run.TotalCents/100, run.TotalCents%100)
			for _, p := range run.Payees {
				fmt.Fprintf(w, "  %-24s $%d.%02d\n", p.Party, p.Cents/100, p.Cents%100)
			}
			if achOut != "" {
				fmt.Fprintf(w, "ACH file: %s\n", achOut)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&period, "period", "", "the payout day, YYYY-MM-DD")
	cmd.Flags().StringVar(&achOut, "ach", "", "write the run's NACHA ACH file here")
	return cmd
}

// saveACH downloads a run's ACH file.
func saveACH(cmd *cobra.Command, c *apiClient, period, path string) error {
	resp, err := c.request(cmd.Context(), "GET", "/v1/payouts/runs/"+period+"/ach", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponseBytes))
	if err != nil {
		return connError(c.base, err)
	}
	return writeFileAtomic(path, b)
}

// parseUSD reads a dollar amount ("100", "12.5", "$0.000001") as whole
// micro-dollars, exactly: more than six decimals is refused, not rounded.
func parseUSD(s string) (int64, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "$")
	whole, frac, _ := strings.Cut(t, ".")
	bad := fmt.Errorf("%q is not a dollar amount (e.g. 100 or 12.50, at most 6 decimals)", s)
	if whole == "" && frac == "" || len(frac) > 6 || strings.ContainsAny(whole+frac, "+- ") {
		return 0, bad
	}
	w := int64(0)
	if whole != "" {
		v, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || v > 1<<40 {
			return 0, bad
		}
		w = v
	}
	f := int64(0)
	if frac != "" {
		v, err := strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil {
			return 0, bad
		}
		f = v
	}
	if w == 0 && f == 0 {
		return 0, fmt.Errorf("%q: the amount must be positive", s)
	}
	return w*1_000_000 + f, nil
}
