package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/prover"
	solverd "github.com/beluga-compute/beluga/solver/daemon"
	"github.com/beluga-compute/beluga/solver/gpu"
	"github.com/beluga-compute/beluga/solver/idle"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/model"
	verifierd "github.com/beluga-compute/beluga/verifier/daemon"
)

// announce says who the daemon is and what the operator must do for it
// to get work (onboarding): a block for people, and an "identity" event
// with the party and peer for programs and JSON logs.
func announce(out io.Writer, log *slog.Logger, role wire.Role, id peer.ID, keyFile, dir string, logJSON bool) {
	party := join.PartyID(role, id)
	if !logJSON {
		fmt.Fprintln(out, onboarding(role, id, party, keyFile, dir))
	}
	log.Info("identity", "role", roleName(role), "party", party, "peer", id.String(), "key", keyFile)
}

// daemonListen is the daemons' default libp2p listen address. A solver or
// verifier listens on every interface because the other peers fetch
// checkpoints from it directly (the exchange serves only the peers the
// coordinator grants each job) and hole punching needs a routable
// address; on 127.0.0.1 only, every byte would go through the
// coordinator's relay, which caps a relayed connection at 256 MiB and 30
// minutes.
const daemonListen = "/ip4/0.0.0.0/tcp/0"

const listenHelp = "libp2p listen address (all interfaces: peers fetch checkpoints from this one directly and hole punching needs a routable address; " +
	"/ip4/127.0.0.1/tcp/0 keeps it to this machine, reachable from elsewhere only through the coordinator's relay)"

// runDaemon waits until ctx ends (Ctrl-C, SIGTERM), then closes the
// daemon, which stops serving and waits for its goroutines: a job being
// trained saves a checkpoint first.
func runDaemon(ctx context.Context, log *slog.Logger, what string, close func() error) error {
	<-ctx.Done()
	log.Info(what + " stopping: saving work in progress")
	if err := close(); err != nil {
		return err
	}
	log.Info(what + " stopped")
	return nil
}

// solverTestFlags and verifierTestFlags add flags to `beluga solver` and
// `beluga verifier` that only test builds have (cheat.go, under the
// belugacheat build tag): the product binary has none.
var (
	solverTestFlags   []func(*pflag.FlagSet, *solverd.Config)
	verifierTestFlags []func(*pflag.FlagSet)
)

func newSolverCmd() *cobra.Command {
	var cfg solverd.Config
	var api partyAPI
	var listen, keyFile, httpAddr, askUSD, backendName string
	var grace, busyFor time.Duration
	var noIdle, behindNAT, logJSON bool
	var serveDirs, serveIDs []string // inference: internal/cli/model.go
	var inferenceSlots int
	cmd := &cobra.Command{
		Use:   "solver --coordinator ADDR",
		Short: "Run the solver daemon: join a coordinator, train assigned jobs, serve checkpoints",
		Long: `The solver daemon detects its GPUs (NVML; without an NVIDIA driver it says so and
trains on the CPU backend), joins the coordinator at ADDR (a libp2p multiaddr
ending in /p2p/<peer ID>), posts its ask (--ask, dollars per compute unit of
10^12 multiply-accumulates, to the nano-dollar; 0 follows the market), heartbeats, trains the jobs it is assigned with committed
digests, serves its checkpoints' chunks to the peers the coordinator grants them
to (never those of a confidential job) and answers the referee in a dispute. It
runs until interrupted (SIGINT or SIGTERM), then stops the job in progress at a
step boundary and saves a checkpoint before exiting. A coordinator that cannot
be reached at start is retried with backoff.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfg.Coordinator == "" {
				return &exitError{code: exitUsage, err: errNoCoordinator}
			}
			if _, err := join.Coordinator(cfg.Coordinator); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			ask, err := parseNanoUSD(askUSD)
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--ask %q: %v (dollars per compute unit, e.g. 0.00002)", askUSD, err)}
			}
			cfg.AskNanoUSDPerCU = ask
			backend, err := model.ParseBackend(backendName)
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--backend: %w", err)}
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			keyFile = keyPath(keyFile, cfg.Dir)
			key, err := p2p.LoadOrCreateKey(keyFile)
			if err != nil {
				return fmt.Errorf("the identity key %s: %w", keyFile, err)
			}
			probe := gpu.Detect()
			// The backend reported is the one that trains jobs, MLP and
			// GPT; NVML only says a GPU is there and, below, whether its
			// owner is using it.
			chosen, err := model.ResolveBackend(backend)
			if err != nil {
				return fmt.Errorf("--backend %s: %w", backend, err)
			}
			defer chosen.Close()
			cfg.Model = chosen.Options()
			cfg.GPUName = probe.Name()
			if len(probe.Devices) > 0 {
				cfg.GPUMemoryBytes = probe.Devices[0].MemoryBytes
			}
			cfg.Backend = chosen.Name()
			if chosen.Device != nil && cfg.GPUName == "" {
				info := chosen.Device.Info()
				cfg.GPUName, cfg.GPUMemoryBytes = info.Name, info.DeviceLocalBytes
			}
			cfg.Logger = daemonLogger(c.OutOrStdout(), logJSON)
			if ch := cfg.CheatForTesting; ch != nil {
				cfg.Logger.Warn("test build: this solver cheats", "from_step", ch.From)
			}
			cfg.Logger.Info("hardware: " + probe.Describe())
			cfg.Logger.Info("backend: "+chosen.Describe, "backend", cfg.Backend)
			if !noIdle {
				// Run only while the owner is away: the GPU if there is one
				// (another process on it, or load we did not cause), else the
				// CPUs (other processes above half the machine).
				var sampler idle.Sampler
				if len(probe.Devices) > 0 {
					// Training on the GPU ourselves (Vulkan) drives its
					// utilization: ours while we submitted work in the last
					// few seconds; another process on it still closes the gate.
					ours := func() bool {
						return chosen.Device != nil && time.Since(chosen.Device.LastSubmit()) < 5*time.Second
					}
					sampler = idle.GPU(probe, 0, 10, ours)
				} else {
					sampler = idle.CPU(50)
				}
				cfg.Gate = idle.NewGate(sampler, idle.Config{Grace: grace, BusyFor: busyFor, Changed: func(open bool, why string) {
					cfg.Logger.Info("idle gate "+map[bool]string{true: "open", false: "closed"}[open], "why", why)
				}})
			}
			n, err := p2p.New(ctx, netOptions(key, listen, cfg.Coordinator, behindNAT, cfg.Logger)...)
			if err != nil {
				return err
			}
			defer n.Close()
			announce(c.OutOrStdout(), cfg.Logger, wire.RoleSolver, n.ID(), keyFile, cfg.Dir, logJSON)
			stopHTTP, err := serveDaemonHTTPFlag(httpAddr, "solver", n, cfg.Coordinator, &cfg.Logger) // internal/cli/httpd.go
			if err != nil {
				return err
			}
			defer stopHTTP()
			d, err := solverd.Start(ctx, n, cfg)
			if err != nil {
				return err
			}
			stopServe, err := serveModels(ctx, n, key, cfg.Coordinator, serveDirs, serveIDs, inferenceSlots, cfg.Logger) // internal/cli/model.go
			if err != nil {
				d.Close()
				return err
			}
			defer stopServe()
			cfg.Logger.Info("solver listening", "peer", n.ID().String(), "addrs", strings.Join(n.Addrs(), ","))
			api.key = savedAPIKey(api.key, cfg.Dir) // a sign-up saved it there (signup.go)
			stopWatch := watchOwnParty(ctx, cfg.Logger, wire.RoleSolver, n.ID(), api)
			defer stopWatch()
			return runDaemon(ctx, cfg.Logger, "solver", d.Close)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Coordinator, "coordinator", "", "coordinator multiaddr (…/p2p/<peer ID>)")
	f.StringVar(&cfg.Dir, "dir", "beluga-solver", "work directory (one run directory per job)")
	f.StringVar(&cfg.DataDir, "data", "", "Fashion-MNIST directory")
	f.StringVar(&cfg.FortunesDir, "fortunes", "", "directory of the fortunes corpus of GPT jobs (default "+dataset.FortunesDir+")")
	f.StringVar(&cfg.TextFile, "text", "", "corpus file of GPT jobs whose data source is \"text\" (checked against each job's root and size; a job naming another corpus fetches it from the coordinator)")
	f.StringVar(&backendName, "backend", "auto", backendHelp)
	f.StringVar(&askUSD, "ask", "0", "ask in dollars per compute unit (10^12 MACs), to the nano-dollar, e.g. 0.00002; 0 follows the market")
	f.Var(keyringFlag{&cfg.Keys}, "zk-keys", "key cache with the tile circuits' proving keys (written by zk setup finalize --keys): take confidential jobs")
	f.StringVar(&listen, "listen", daemonListen, listenHelp)
	f.StringVar(&httpAddr, "http", "", httpHelp)
	f.StringVar(&keyFile, "key", "", "libp2p identity key file, created if absent (default: peer.key in --dir)")
	f.DurationVar(&grace, "idle-grace", 30*time.Second, "how long the machine must be idle, without a busy sample, before the solver takes work again")
	f.DurationVar(&busyFor, "busy-for", 10*time.Second, "how long the machine must be busy (net of idle samples) before the solver pauses and withdraws its offer")
	f.BoolVar(&logJSON, "log-json", false, "log JSON lines (one per event) instead of human-readable lines")
	api.flags(f)
	f.BoolVar(&noIdle, "no-idle-check", false, "run assigned jobs whatever else the machine is doing")
	f.BoolVar(&behindNAT, "behind-nat", false, "this machine is not reachable from the internet: take a relay reservation on the coordinator at once")
	f.StringArrayVar(&serveDirs, "serve-model", nil, "serve inference with the GPT in this run directory (its newest checkpoint; repeatable)")
	f.StringArrayVar(&serveIDs, "serve-model-id", nil, "serve inference with this published model (its ID or digest), its weights fetched from the peers serving it and checked against the digest (repeatable)")
	f.IntVar(&inferenceSlots, "inference-slots", 2, "inference requests served at once")
	for _, add := range solverTestFlags {
		add(f, &cfg)
	}
	cmd.AddCommand(newPartyStatusCmd(wire.RoleSolver, "beluga-solver"))
	cmd.AddCommand(newSignupCmd(wire.RoleSolver, "beluga-solver")) // internal/cli/signup.go
	return cmd
}

func newVerifierCmd() *cobra.Command {
	var cfg verifierd.Config
	var api partyAPI
	var listen, keyFile, httpAddr, dir, backendName string
	var behindNAT, logJSON bool
	var verifyDirs, verifyIDs []string // inference: internal/cli/model.go
	cmd := &cobra.Command{
		Use:   "verifier --coordinator ADDR",
		Short: "Run the verifier daemon: take audit tasks, replay, report, play disputes",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfg.Coordinator == "" {
				return &exitError{code: exitUsage, err: errNoCoordinator}
			}
			if _, err := join.Coordinator(cfg.Coordinator); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			backend, err := model.ParseBackend(backendName)
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("--backend: %w", err)}
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			keyFile = keyPath(keyFile, dir)
			key, err := p2p.LoadOrCreateKey(keyFile)
			if err != nil {
				return fmt.Errorf("the identity key %s: %w", keyFile, err)
			}
			cfg.Logger = daemonLogger(c.OutOrStdout(), logJSON)
			// Replays run where --backend says; the digests are the same
			// on every backend, so the solver's backend does not matter.
			chosen, err := model.ResolveBackend(backend)
			if err != nil {
				return fmt.Errorf("--backend %s: %w", backend, err)
			}
			defer chosen.Close()
			cfg.Model = chosen.Options()
			cfg.Logger.Info("backend: "+chosen.Describe, "replays_on", chosen.Backend)
			n, err := p2p.New(ctx, netOptions(key, listen, cfg.Coordinator, behindNAT, cfg.Logger)...)
			if err != nil {
				return err
			}
			defer n.Close()
			announce(c.OutOrStdout(), cfg.Logger, wire.RoleVerifier, n.ID(), keyFile, dir, logJSON)
			stopHTTP, err := serveDaemonHTTPFlag(httpAddr, "verifier", n, cfg.Coordinator, &cfg.Logger) // internal/cli/httpd.go
			if err != nil {
				return err
			}
			defer stopHTTP()
			cfg.CorpusDir = filepath.Join(dir, "data", "text") // corpora fetched from the coordinator
			d, err := verifierd.Start(ctx, n, cfg)
			if err != nil {
				return err
			}
			stopVerify, err := verifyModels(ctx, n, cfg.Coordinator, verifyDirs, verifyIDs, cfg.Logger) // internal/cli/model.go
			if err != nil {
				d.Close()
				return err
			}
			defer stopVerify()
			cfg.Logger.Info("verifier listening", "peer", n.ID().String(), "addrs", strings.Join(n.Addrs(), ","))
			api.key = savedAPIKey(api.key, dir) // a sign-up saved it there (signup.go)
			stopWatch := watchOwnParty(ctx, cfg.Logger, wire.RoleVerifier, n.ID(), api)
			defer stopWatch()
			return runDaemon(ctx, cfg.Logger, "verifier", d.Close)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Coordinator, "coordinator", "", "coordinator multiaddr (…/p2p/<peer ID>)")
	f.StringVar(&cfg.DataDir, "data", "", "Fashion-MNIST directory")
	f.StringVar(&cfg.FortunesDir, "fortunes", "", "directory of the fortunes corpus of GPT jobs (default "+dataset.FortunesDir+")")
	f.StringVar(&cfg.TextFile, "text", "", "corpus file of GPT jobs whose data source is \"text\" (checked against each job's root and size; a job naming another corpus fetches it from the coordinator)")
	f.StringVar(&listen, "listen", daemonListen, listenHelp)
	f.StringVar(&httpAddr, "http", "", httpHelp)
	f.StringVar(&backendName, "backend", "auto", "where audits replay steps: cpu, vulkan (a Vulkan device, lavapipe included) "+
		"or auto (a Vulkan GPU if one works and can take the job, else the CPU); the digests, and so the verdicts, never change")
	f.StringVar(&dir, "dir", "beluga-verifier", "work directory (holds the identity key and the text corpora fetched from the coordinator)")
	f.StringVar(&keyFile, "key", "", "libp2p identity key file, created if absent (default: peer.key in --dir)")
	f.BoolVar(&logJSON, "log-json", false, "log JSON lines (one per event) instead of human-readable lines")
	api.flags(f)
	f.BoolVar(&behindNAT, "behind-nat", false, "this machine is not reachable from the internet: take a relay reservation on the coordinator at once")
	f.Var(keyringFlag{&cfg.Keys}, "zk-keys", "key cache with the tile circuits' verifying keys: take confidential audits")
	f.StringArrayVar(&verifyDirs, "verify-model", nil, "check sampled inference receipts of the GPT in this run directory (its newest checkpoint; repeatable)")
	f.StringArrayVar(&verifyIDs, "verify-model-id", nil, "check sampled inference receipts of this published model (its ID or digest), its weights fetched from the peers serving it (repeatable)")
	for _, add := range verifierTestFlags {
		add(f)
	}
	cmd.AddCommand(newPartyStatusCmd(wire.RoleVerifier, "beluga-verifier"))
	cmd.AddCommand(newSignupCmd(wire.RoleVerifier, "beluga-verifier")) // internal/cli/signup.go
	return cmd
}

// keyringFlag sets a *prover.Keyring from a key cache directory.
type keyringFlag struct{ k **prover.Keyring }

func (f keyringFlag) String() string {
	if f.k == nil || *f.k == nil {
		return ""
	}
	return (*f.k).Cache.Dir
}

func (f keyringFlag) Set(dir string) error {
	if dir == "" {
		*f.k = nil
		return nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s is not a key cache directory", dir)
	}
	*f.k = prover.NewKeyring(dir)
	return nil
}

func (keyringFlag) Type() string { return "DIR" }

// netOptions are a daemon's libp2p options: its key and listen address,
// gossip, and the coordinator as its relay (used when AutoNAT finds the
// machine unreachable, or at once with --behind-nat), with hole punching.
func netOptions(key crypto.PrivKey, listen, coordinator string, behindNAT bool, log *slog.Logger) []p2p.Option {
	opts := []p2p.Option{p2p.WithKey(key), p2p.WithListen(listen), p2p.WithPubSub(), p2p.WithRelays(coordinator),
		p2p.WithLogger(log)}
	if behindNAT {
		opts = append(opts, p2p.WithBehindNAT())
	}
	return opts
}
