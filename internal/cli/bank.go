package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/coordinator/api"
)

// addBankCmds adds `bank` to the solver and verifier commands: the party
// registers where its earnings are paid, over the coordinator's HTTP API.
func addBankCmds(root *cobra.Command) {
	for _, c := range root.Commands() {
		switch c.Name() {
		case "solver", "verifier":
			c.AddCommand(newBankCmd(c.Name(), os.Getenv))
		}
	}
}

// newBankCmd is `beluga solver bank` or `beluga verifier bank`.
func newBankCmd(role string, getenv func(string) string) *cobra.Command {
	f := &jobFlags{getenv: getenv}
	var party, holder, routing, account, kind string
	var show bool
	cmd := &cobra.Command{
		Use:   "bank --party ID --holder NAME --routing NUMBER --account NUMBER",
		Short: fmt.Sprintf("Register the bank account the %s's earnings are paid to (ACH, on the 1st and 15th)", role),
		Long: fmt.Sprintf(`Registers the bank account the coordinator pays this %[1]s's earnings to
(PUT /v1/parties/{id}/bank), with the %[1]s's own API key (role %[1]s, subject
its party ID, which the daemon prints at start). The coordinator seals the
details with its vault key before storing them; it answers, and this prints,
only the account number's last four digits. Payout runs skip a party without
bank details and say so. --show prints what is registered.

The coordinator's address and the key come from --coordinator and --api-key,
or BELUGA_COORDINATOR and BELUGA_API_KEY.`, role),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if party == "" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--party is required: the %s's party ID, which its daemon prints at start", role)}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			path := "/v1/parties/" + url.PathEscape(party) + "/bank"
			var view api.BankView
			if show {
				if _, err := c.call(cmd.Context(), "GET", path, "", nil, &view); err != nil {
					return err
				}
			} else {
				if holder == "" || routing == "" || account == "" {
					return &exitError{code: exitUsage, err: errors.New("--holder, --routing and --account are required (or --show)")}
				}
				body, err := json.Marshal(api.BankRequest{HolderName: holder, RoutingNumber: routing, AccountNumber: account, AccountType: kind})
				if err != nil {
					return err
				}
				if _, err := c.call(cmd.Context(), "PUT", path, "", body, &view); err != nil {
					return err
				}
			}
			if f.json {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(view)
			}
			verb := "registered"
			if show {
				verb = "on file"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bank details %s for %s: %s, routing %s, %s account ending %s\n",
				verb, view.Account, view.HolderName, view.RoutingNumber, view.AccountType, view.AccountNumberLast4)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.coordinator, "coordinator", "", "the coordinator's HTTP API, e.g. http://127.0.0.1:8700")
	fl.StringVar(&f.apiKey, "api-key", "", fmt.Sprintf("the %s's own API key", role))
	fl.StringVar(&f.config, "config", "", "client config file (default $XDG_CONFIG_HOME/beluga/client.json)")
	fl.BoolVar(&f.json, "json", false, "print the answer as JSON")
	fl.StringVar(&party, "party", "", fmt.Sprintf("the %s's party ID", role))
	fl.StringVar(&holder, "holder", "", "the account holder's name as the bank has it (up to 22 characters)")
	fl.StringVar(&routing, "routing", "", "the bank's nine-digit ABA routing number")
	fl.StringVar(&account, "account", "", "the account number (up to 17 letters, digits or '-')")
	fl.StringVar(&kind, "type", "checking", "checking or savings")
	fl.BoolVar(&show, "show", false, "print the registered details (masked) instead of registering")
	return cmd
}
