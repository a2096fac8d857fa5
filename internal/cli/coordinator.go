package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/auth"
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
			svc, err := service.Open(ctx, filepath.Clean(dataDir), opts...)
			if err != nil {
				return err
			}
			defer svc.Close()
			ak := auth.NewKeys(svc.Store(), rand.Reader, time.Now)
			if _, done, err := svc.Store().GetRaw("meta/bootstrapped"); err != nil {
				return err
			} else if !done {
				key, rec, err := ak.Issue(ctx, "operator", auth.RoleOperator, 0)
				if err != nil {
					return err
				}
				if err := svc.Store().PutRaw("meta/bootstrapped", []byte(rec.ID)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "bootstrap operator API key (shown once, stored hashed):\n%s\n", key)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			handler := api.New(svc, ak, log)
			if p2pListen != "" {
				key, err := p2p.LoadOrCreateKey(filepath.Join(dataDir, "peer.key"))
				if err != nil {
					return err
				}
				n, err := p2p.New(ctx, p2p.WithKey(key), p2p.WithListen(p2pListen), p2p.WithPubSub(), p2p.WithRelayService(),
					p2p.WithLogger(log))
				if err != nil {
					return err
				}
				defer n.Close()
				cn, err := node.New(n, node.Config{Service: svc, Events: func(s string) { log.Info(s) }, Keys: zkKeys})
				if err != nil {
					return err
				}
				handler.OnJobPosted(func(spec []byte) {
					if err := cn.Offer(context.WithoutCancel(ctx), spec); err != nil {
						log.Error("offer", "err", err)
					}
				})
				fmt.Fprintf(cmd.OutOrStdout(), "coordinator libp2p node: %v\n", n.Addrs())
			}
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
			fmt.Fprintf(cmd.OutOrStdout(), "coordinator listening on http://%s (data %s)\n", ln.Addr(), dataDir)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "beluga-coordinator", "data directory (badger ledger and state)")
	f.StringVar(&listen, "listen", "127.0.0.1:8700", "listen address")
	f.StringVar(&p2pListen, "p2p-listen", "", "libp2p listen multiaddr for solvers and verifiers (e.g. /ip4/0.0.0.0/tcp/4001); empty: HTTP only")
	f.Var(keyringFlag{&zkKeys}, "zk-keys", "key cache with the tile circuits' verifying keys: accept confidential jobs and referee their audits")
	f.StringVar(&vaultKeyFile, "vault-key-file", "", "vault keyring file sealing bank details")
	f.StringVar(&vaultKeyEnv, "vault-key-env", "", "environment variable holding the vault keyring")
	f.StringVar(&orig.CompanyName, "ach-company-name", "", "ACH originator company name")
	f.StringVar(&orig.CompanyID, "ach-company-id", "", "ACH originator company id")
	f.StringVar(&orig.ImmediateOrigin, "ach-origin", "", "ACH immediate origin routing number")
	f.StringVar(&orig.ImmediateDestination, "ach-destination", "", "ACH immediate destination routing number")
	f.StringVar(&orig.ODFIRouting, "ach-odfi", "", "originating bank routing number")
	return cmd
}
