package cli

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/coordinatord"
	"github.com/beluga-compute/beluga/coordinator/gateway"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/coordinator/vault"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/prover"
)

// newCoordinatorCmd is `beluga coordinator`: the HTTP API over a badger
// data directory.
func newCoordinatorCmd() *cobra.Command {
	var dataDir, listen, vaultKeyFile, vaultKeyEnv, p2pListen string
	var zkKeys *prover.Keyring
	var orig payout.Originator
	var nodeCfg node.Config
	var clockAhead time.Duration
	var verifyPPM int64 // inference: the share of requests verified
	var secondPPM int64 // inference: the share of passed receipts checked again
	var minPayout, funding string
	var signup bool
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run the coordinator: USD escrow ledger, jobs, settlement and payouts over HTTP",
		Long: `Runs the coordinator's HTTP API with the ledger and state in badger under
--data. On first start it prints an operator API key (stored hashed; it is
shown once). Bank details are sealed with the vault key from --vault-key-file
or --vault-key-env (see coordinator/vault); without one, payout runs pay
nobody. The ACH originator flags are needed for payout files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return err
			}
			opts := []service.Option{service.WithOriginator(orig)}
			if cmd.Flags().Changed("minimum-payout") {
				micro, err := parseUSD(minPayout)
				if err != nil || micro%10_000 != 0 {
					return &exitError{code: exitUsage, err: fmt.Errorf("--minimum-payout %q: give whole cents in dollars, e.g. 10 or 0.01", minPayout)}
				}
				sch, err := payout.NewSchedule(payout.WithMinimumPayoutCents(micro / 10_000))
				if err != nil {
					return err
				}
				opts = append(opts, service.WithSchedule(sch))
			}
			if clockAhead != 0 {
				opts = append(opts, service.WithClock(func() time.Time { return time.Now().Add(clockAhead) }))
			}
			var keys []vault.Key
			var err error
			switch {
			case vaultKeyFile != "":
				keys, err = vault.LoadKeyringFile(vaultKeyFile)
			case vaultKeyEnv != "":
				keys, err = vault.LoadKeyringEnv(vaultKeyEnv)
			}
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				v, err := vault.New(rand.Reader, keys...)
				if err != nil {
					return err
				}
				opts = append(opts, service.WithVault(v))
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			cfg := coordinatord.Config{DataDir: filepath.Clean(dataDir), Service: opts, Logger: log, Node: nodeCfg}
			if signup {
				cfg.Signup = &api.Signup{Instructions: funding}
			}
			cfg.Node.Keys = zkKeys
			if p2pListen != "" {
				key, err := p2p.LoadOrCreateKey(filepath.Join(dataDir, "peer.key"))
				if err != nil {
					return err
				}
				n, err := p2p.New(ctx, p2p.WithKey(key), p2p.WithListen(p2pListen), p2p.WithPubSub(), p2p.WithRelayService(),
					p2p.WithLogger(log.With("component", "p2p")))
				if err != nil {
					return err
				}
				defer n.Close()
				cfg.P2P = n
			}
			c, err := coordinatord.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			if c.Gateway != nil && verifyPPM >= 0 {
				c.Gateway.SetVerifyRate(verifyPPM)
			}
			if c.Gateway != nil && secondPPM >= 0 {
				c.Gateway.SetSecondOpinionRate(secondPPM)
			}
			if key, err := c.Bootstrap(ctx); err != nil {
				return err
			} else if key != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "bootstrap operator API key (shown once, stored hashed):\n%s\n", key)
			}
			if cfg.P2P != nil {
				// One full address per line, to paste after a daemon's
				// --coordinator.
				fmt.Fprintf(cmd.OutOrStdout(), "coordinator libp2p addresses (give one to each solver and verifier as --coordinator):\n")
				for _, a := range cfg.P2P.Addrs() {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", a)
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "coordinator listening on http://%s (data %s); web console at http://%s/\n", ln.Addr(), dataDir, ln.Addr())
			return c.Serve(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "beluga-coordinator", "data directory (badger ledger and state)")
	f.StringVar(&listen, "listen", "127.0.0.1:8700", "listen address")
	f.Int64Var(&secondPPM, "inference-second-opinion-ppm", gateway.DefaultSecondOpinionPPM, "share of passed inference receipts sent to a second verifier, in millionths (a verifier that passed a fraud loses its bond)")
	f.Int64Var(&verifyPPM, "inference-verify-ppm", gateway.DefaultRatePPM, "share of inference requests a verifier re-checks, in millionths (default: the planner's rate catching 1% cheating with 99% over 10,000 requests a day)")
	f.DurationVar(&nodeCfg.JobTimeout, "job-timeout", node.DefaultJobTimeout, "a job not over this long after posting expires: escrow refunded, bonds released")
	f.DurationVar(&nodeCfg.AuditTimeout, "audit-timeout", node.DefaultAuditTimeout, "a verifier that has not reported by then loses the audit to another")
	f.DurationVar(&nodeCfg.HeartbeatTimeout, "heartbeat-timeout", node.DefaultHeartbeatTimeout, "a solver silent this long loses its job, which resumes elsewhere")
	f.StringVar(&minPayout, "minimum-payout", "10", "smallest payout in US dollars; smaller earnings wait for a later run")
	f.DurationVar(&clockAhead, "clock-ahead", 0, "run the ledger's and the service's clock this far ahead of the machine's (drills and tests: e.g. 240h to run a payout period that has not ended yet)")
	f.DurationVar(&nodeCfg.Retention, "retention", node.DefaultRetention, "how long a finished job stays in the node's memory (its record stays in the data directory)")
	f.StringVar(&p2pListen, "p2p-listen", "", "libp2p listen multiaddr for solvers and verifiers (e.g. /ip4/0.0.0.0/tcp/4001); empty: HTTP only")
	f.Var(keyringFlag{&zkKeys}, "zk-keys", "key cache with the tile circuits' verifying keys: accept confidential jobs and referee their audits")
	f.BoolVar(&signup, "signup", true, "let anyone sign up as a client (POST /v1/signup, the console's \"train a model\"), and solvers and verifiers for themselves with their identity key (POST /v1/signup/daemon, beluga solver|verifier signup); a new client has no funds and a new daemon no bond until a deposit is recorded")
	f.StringVar(&funding, "funding-instructions", "", "what the console and POST /v1/signup tell a new client about funding its account (e.g. your bank's wire details); the client quotes its reference")
	f.StringVar(&vaultKeyFile, "vault-key-file", "", "vault keyring file sealing bank details")
	f.StringVar(&vaultKeyEnv, "vault-key-env", "", "environment variable holding the vault keyring")
	f.StringVar(&orig.CompanyName, "ach-company-name", "", "ACH originator company name")
	f.StringVar(&orig.CompanyID, "ach-company-id", "", "ACH originator company id")
	f.StringVar(&orig.ImmediateOrigin, "ach-origin", "", "ACH immediate origin routing number")
	f.StringVar(&orig.ImmediateDestination, "ach-destination", "", "ACH immediate destination routing number")
	f.StringVar(&orig.ODFIRouting, "ach-odfi", "", "originating bank routing number")
	return cmd
}
