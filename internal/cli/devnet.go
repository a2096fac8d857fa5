package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/consensys/gnark/logger"
	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/devnet"
	"github.com/beluga-compute/beluga/spec/model"
)

func newDevnetCmd() *cobra.Command {
	cfg := devnet.Config{}
	var jsonOut, inference bool
	var inferenceRequests int
	var backendName string
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole network on loopback: coordinator, 3 solvers (one cheats), 2 verifiers, jobs end to end",
		Long: `Devnet starts, in this process and on 127.0.0.1 only, a coordinator (HTTP API,
ledger, libp2p node), three solvers — the third cheats — and two verifiers,
each with its own libp2p key. A client deposits and posts three jobs through
the HTTP API — two MLPs and a tiny byte-level GPT on a text the devnet writes,
the GPT being the cheater's job; the jobs are matched, trained with committed
digests, audited from checkpoints fetched peer to peer; the cheater is caught,
the referee recomputes one operator of the GPT's step, the cheater's bond is
slashed and the honest solvers and verifiers are paid. It prints the timeline and the ledger and exits 0
only if all of that happened. Nothing outlives the run.

With --console ADDR the coordinator's HTTP API and web console listen on ADDR;
after the jobs the network keeps running and the devnet prints a log-in link
for the operator, the client and each solver and verifier, until Ctrl-C.

With --confidential the first and third jobs are confidential MLPs (the GPT,
audited by replay only, is the second job, an honest solver's): their solvers
commit a Poseidon2 zk trace, and the verifiers check zk proofs of the
challenged tiles without seeing weights or data (SPEC.md §17); the cheater's
fault is then in its zk trace, and the coordinator referees with the proof of
the disputed tile. The keys come from a
single-party setup for development only, cached in --zk-keys (the first run
spends about a minute on it).`,
		Args:             cobra.NoArgs,
		PersistentPreRun: func(*cobra.Command, []string) { logger.Disable() },
		RunE: func(c *cobra.Command, _ []string) error {
			if !jsonOut {
				cfg.Out = c.OutOrStdout()
			}
			b, err := model.ParseBackend(backendName)
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--backend: %w", err)}
			}
			cfg.Backend = b
			if inference { // internal/cli/model.go
				return runInferenceDevnet(c, inferenceRequests, b, jsonOut)
			}
			ctx := c.Context()
			if cfg.Console != "" {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			res, err := devnet.Run(ctx, cfg)
			if jsonOut && res != nil {
				enc := json.NewEncoder(c.OutOrStdout())
				if e := enc.Encode(res); e != nil {
					return e
				}
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if !jsonOut {
				fmt.Fprintf(c.OutOrStdout(), "devnet passed in %.1f s\n", res.Seconds)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&jsonOut, "json", false, "print one JSON object at the end (jobs, slashed, paid_micro_usd, ledger_balanced, …)")
	f.StringVar(&cfg.Dataset, "dataset", "synthetic", "the MLP jobs' data: synthetic or fashion-mnist")
	f.StringVar(&cfg.DataDir, "data", "", "Fashion-MNIST directory")
	f.Int64Var(&cfg.Steps, "steps", 60, "steps per job")
	f.BoolVar(&cfg.Confidential, "confidential", false, "make the first and third jobs confidential: audited by zk tile proofs")
	f.Int64Var(&cfg.ConfidentialSteps, "confidential-steps", 12, "steps of each confidential job (one proof per challenged step)")
	f.StringVar(&cfg.Console, "console", "", "serve the API and web console here (e.g. 127.0.0.1:8700) and keep the network running after its jobs, printing each party's log-in link, until Ctrl-C")
	f.StringVar(&cfg.ZKKeysDir, "zk-keys", defaultDevKeysDir(), "where development zk keys are cached")
	f.BoolVar(&inference, "inference", false, "run verified inference instead: train and publish a GPT, honest and cheating solvers, a verifier, a burst through the OpenAI-compatible gateway (JSON: requests, receipts_verified, cheater_slashed, billed_micro_usd, ledger_balanced)")
	f.IntVar(&inferenceRequests, "requests", 48, "with --inference: the requests of the burst")
	f.StringVar(&backendName, "backend", "auto", "where the solvers train, MLP or GPT: cpu, vulkan (a Vulkan device, lavapipe included) "+
		"or auto (a Vulkan GPU if one works, else the CPU); the verifiers replay on the CPU, and each solver's backend is printed (--json: solvers, backends); "+
		"with --inference, where the two models are trained (inference itself runs on the CPU engine)")
	return cmd
}

// defaultDevKeysDir is the user's cache directory for development zk keys
// (empty, a temporary directory per run, when there is none).
func defaultDevKeysDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "beluga", "zk-dev-keys")
}
