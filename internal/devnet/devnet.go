// Package devnet runs a whole Beluga network on one machine, on loopback,
// with no setup (`beluga devnet`): a coordinator (HTTP API, ledger and
// libp2p node), three solvers — one of which cheats — and two verifiers,
// each a separate libp2p host with its own key and directory. A client
// funds its account and posts jobs through the HTTP API — two MLPs and a
// byte-level GPT on a text corpus the devnet writes, the cheater's job; the
// jobs are matched, trained, committed, audited from sampled checkpoints
// fetched peer to peer; the cheater's audit fails, the referee settles the
// dispute by recomputing one operator of the GPT's step, the cheater's bond
// is slashed and the honest solvers and the verifiers are paid. Everything it writes lives in a
// temporary directory that is removed at the end.
package devnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beluga-compute/beluga/coordinator/api"
	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/coordinatord"
	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/node"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/internal/eventlog"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/prover"
	solverd "github.com/beluga-compute/beluga/solver/daemon"
	"github.com/beluga-compute/beluga/solver/gpu"
	"github.com/beluga-compute/beluga/solver/idle"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/model"
	verifierd "github.com/beluga-compute/beluga/verifier/daemon"
)

// Config configures a devnet run.
type Config struct {
	// Dataset is "synthetic" (default) or "fashion-mnist".
	Dataset string
	DataDir string
	// Steps per job (default 60).
	Steps int64
	// Out receives the timeline; nil discards it.
	Out io.Writer
	// Timeout bounds the whole run (default 2 minutes; 10 confidential).
	Timeout time.Duration
	// Confidential makes the first and the third job confidential: the
	// verifier checks zk proofs of challenged tiles instead of replaying
	// steps, and sees no weights or data; the cheater's fault is in its zk
	// trace, and the coordinator referees with the challenged tile's proof. Its keys come from a single-party setup, which is
	// for development only (whoever runs it can forge proofs), kept in
	// ZKKeysDir (default: a temporary directory) so that later runs skip
	// the ~1 minute setup. ConfidentialSteps is that job's length
	// (default 12: one proof of ~1.5 s per challenged step).
	Confidential      bool
	ZKKeysDir         string
	ConfidentialSteps int64
	// Faults, for tests: the first verifier takes audits and never reports
	// (its audits must be reassigned), and the first honest solver is
	// killed (its host closed) after KillSolverAfter of training, as soon
	// as a replica holds a checkpoint of its job.
	SilentVerifier  bool
	KillSolverAfter time.Duration
	// OwnerBusyFrom/OwnerBusyFor: the second solver's machine owner comes
	// back OwnerBusyFrom after the solver starts its job, for OwnerBusyFor
	// (its idle gate closes; the job pauses at a step boundary and
	// resumes). Counted from the job's start, not the devnet's: a solver
	// whose owner is back before it has a job takes none.
	OwnerBusyFrom, OwnerBusyFor time.Duration
	// AuditTimeout and HeartbeatTimeout tune the coordinator (zero: the
	// node's defaults, as under `beluga coordinator`).
	AuditTimeout, HeartbeatTimeout time.Duration
	// Console, if set, is where the coordinator's HTTP API and web console
	// listen (e.g. 127.0.0.1:8700); once the jobs are over the devnet keeps
	// running, serving it, until ctx ends, and prints a log-in link for
	// each party (the operator, the client, each solver and verifier).
	// Timeout then bounds the jobs only. Sign-up is open there.
	Console string
	// ConsoleReady, if set, is called with the console's base URL and the
	// parties' log-in links once it serves them (tests).
	ConsoleReady func(base string, links []Link)
	// Backend is where the solvers train (model.ResolveBackend, once for
	// all three): cpu (the default), vulkan (a Vulkan device, lavapipe
	// included) or auto (a Vulkan GPU if there is one). The verifiers
	// replay on the CPU: a Vulkan run is then a cross-backend audit.
	Backend model.Backend
}

// Link is a party's console log-in link.
type Link struct {
	Role, Party, URL string
}

// Result is what `beluga devnet --json` prints.
type Result struct {
	Jobs []node.Outcome `json:"jobs"`
	// Models says what each job trained, in Jobs' order: "mlp" or "gpt".
	Models         []string         `json:"models"`
	Slashed        []string         `json:"slashed"`
	PaidMicroUSD   map[string]int64 `json:"paid_micro_usd"`
	LedgerBalanced bool             `json:"ledger_balanced"`
	// ReportsVerified counts the jobs whose audit report the client
	// fetched (GET /v1/jobs/{id}/report) and verified (report.Verify).
	ReportsVerified int       `json:"reports_verified"`
	Ledger          []Balance `json:"ledger"`
	Seconds         float64   `json:"seconds"`
	// Solvers are the solvers, in order, with the backend each trains on.
	Solvers []Solver `json:"solvers"`
	// Backends says, in Jobs' order, what the coordinator recorded as the
	// backend of the solver that finished each job (its hello's word).
	Backends []string `json:"backends"`
}

// Solver is one devnet solver and where it trains: "vulkan (<device>)" or
// "cpu (<kernel>)", as it tells the coordinator.
type Solver struct {
	Peer    string `json:"peer"`
	Party   string `json:"party"`
	Backend string `json:"backend"`
}

// Balance is one ledger account's balance (credits − debits, posted).
type Balance struct {
	Account    string `json:"account"`
	Peer       string `json:"peer,omitempty"`
	MicroUSD   int64  `json:"micro_usd"`
	PendingOut int64  `json:"pending_debits_micro_usd,omitempty"`
}

// jobSpec is the devnet's i-th job: gptJob(cfg) is a GPT on corpus, the
// others MLPs on cfg.Dataset. With cfg.Confidential the first and the
// third are confidential: the first goes to the first, honest solver (its
// ask is lowest), the third to the cheater, whose fault is then in its zk
// trace.
func jobSpec(cfg Config, i int, corpus []byte) (*spec.Spec, error) {
	if i == gptJob(cfg) {
		return gptSpec(i, cfg.Steps, corpus)
	}
	s, err := catalog.Example(cfg.Dataset)
	if err != nil {
		return nil, err
	}
	s.Name = fmt.Sprintf("devnet-%d", i+1)
	s.Seed = uint64(100 + i)
	s.Steps = cfg.Steps
	s.CheckpointInterval = 10
	s.DigestInterval = 1
	if len(s.Optimizer.LR) > 1 {
		s.Optimizer.LR = s.Optimizer.LR[:1]
	}
	if cfg.Confidential && i != 1 {
		s.Name += "-confidential"
		s.Steps = cfg.ConfidentialSteps
		s.Audit.Confidential = true
	}
	return s, s.Validate()
}

// Run runs the devnet and returns its result; it fails unless every job
// ended, the cheater was slashed, the honest solvers were paid and the
// ledger balances.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	if cfg.Steps <= 0 {
		cfg.Steps = 60
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
		if cfg.Confidential {
			cfg.Timeout = 10 * time.Minute
		}
	}
	if cfg.ConfidentialSteps <= 0 {
		cfg.ConfidentialSteps = 12
	}
	if cfg.Dataset == "" {
		cfg.Dataset = "synthetic"
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	// The jobs must end within Timeout; with a console the network then
	// keeps running until the caller's ctx ends.
	var cancel context.CancelFunc
	if cfg.Console == "" {
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	jobsCtx, jobsDone := context.WithTimeout(ctx, cfg.Timeout)
	defer jobsDone()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(out, "%6.2fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		outMu.Unlock()
	}
	// firstAudit closes when the first audit is assigned (SilentVerifier
	// starts the answering verifier only then, so that the silent one is
	// sure to hold an audit it never answers).
	firstAudit := make(chan struct{})
	var firstAuditOnce sync.Once
	event := func(s string) {
		if strings.HasPrefix(s, "audit assigned") {
			firstAuditOnce.Do(func() { close(firstAudit) })
		}
		say("%s", s)
	}

	tmp, err := os.MkdirTemp("", "beluga-devnet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// The GPT job's corpus, which every solver and verifier reads.
	corpus := gptCorpus()
	textFile := filepath.Join(tmp, "gpt-corpus.txt")
	if err := os.WriteFile(textFile, corpus, 0o644); err != nil {
		return nil, err
	}

	// The coordinator's libp2p host.
	cn, err := p2p.New(ctx, p2p.WithPubSub(), p2p.WithRelayService(), p2p.WithLogger(eventlog.New(func(l string) { say("coordinator: %s", l) })))
	if err != nil {
		return nil, err
	}
	defer cn.Close()
	var keyring *prover.Keyring
	if cfg.Confidential {
		dir := cfg.ZKKeysDir
		if dir == "" {
			dir = filepath.Join(tmp, "zk-keys")
		}
		keyring = prover.NewKeyring(dir)
		s, err := jobSpec(cfg, 0, nil) // the circuits are the same for both confidential jobs
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		n, err := prover.DevSetup(keyring, s)
		if err != nil {
			return nil, fmt.Errorf("zk dev setup: %w", err)
		}
		say("zk keys for the tile circuits in %s: %d set up in %v (single-party DEVELOPMENT setup: whoever runs it can forge proofs; real networks use `beluga zk setup`)",
			dir, n, time.Since(t0).Round(100*time.Millisecond))
	}
	// The coordinator — ledger and state, HTTP API, libp2p node —
	// assembled as `beluga coordinator` assembles it.
	ncfg := node.Config{AuditTimeout: cfg.AuditTimeout, HeartbeatTimeout: cfg.HeartbeatTimeout, Keys: keyring, Logger: eventlog.New(event)}
	ccfg := coordinatord.Config{DataDir: filepath.Join(tmp, "coordinator"), P2P: cn, Node: ncfg, HoldOffers: true}
	listen := "127.0.0.1:0"
	if cfg.Console != "" {
		listen = cfg.Console
		ccfg.ConsoleLinkLogin = true
		ccfg.Signup = &api.Signup{Instructions: "This is a devnet: log in as the operator (its link was printed) and record a deposit to your account under Operator → Record a deposit."}
	}
	cd, err := coordinatord.Open(ctx, ccfg)
	if err != nil {
		return nil, err
	}
	defer cd.Close()
	svc, coord := cd.Service, cd.Node
	// With a console, jobs posted after the devnet's own are offered at
	// once (the devnet's are held until all three are posted).
	var offerPosted atomic.Bool
	if cfg.Console != "" {
		cd.API.OnJobPosted(func(spec []byte) {
			if offerPosted.Load() {
				coord.OfferAsync(spec)
			}
		})
	}
	opKey, err := cd.Bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	clientKey, _, err := cd.Keys.Issue(ctx, "acme", auth.RoleClient, 0)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- cd.Serve(srvCtx, ln) }()
	defer func() { stopSrv(); <-served }()
	base := "http://" + ln.Addr().String()
	say("coordinator %s: HTTP API on %s, libp2p on %s", cn.ID().ShortString(), base, cn.Host.Addrs()[0])
	caddr := cn.Addrs()[0]

	// Three solvers (the third cheats from step 7 on) and two verifiers.
	probe := gpu.Detect()
	say("hardware: %s", probe.Describe())
	// One backend for the three solvers (a Vulkan device takes concurrent
	// runners; its submissions are serialised).
	chosen, err := model.ResolveBackend(cfg.Backend)
	if err != nil {
		return nil, fmt.Errorf("devnet: backend %s: %w", cfg.Backend, err)
	}
	defer chosen.Close()
	backend := chosen.Name()
	type solverSpec struct {
		ask   int64
		cheat *solverd.Cheat
	}
	solverSpecs := []solverSpec{{ask: 200_000_000}, {ask: 250_000_000}, {ask: 300_000_000, cheat: &solverd.Cheat{From: 7}}}
	var solverNodes []*p2p.Node
	for range solverSpecs {
		n, err := p2p.New(ctx, p2p.WithAllow(cn.ID()), p2p.WithPubSub())
		if err != nil {
			return nil, err
		}
		defer n.Close()
		solverNodes = append(solverNodes, n)
	}
	var verifierNodes []*p2p.Node
	for range 2 {
		n, err := p2p.New(ctx, p2p.WithAllow(cn.ID()), p2p.WithPubSub())
		if err != nil {
			return nil, err
		}
		defer n.Close()
		verifierNodes = append(verifierNodes, n)
	}

	// Money in, through the HTTP API as a bank feed would: the client's
	// funds, each solver's and verifier's bond.
	post := func(path, key string, body, out any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		h := sha256.Sum256(append([]byte(path), b...))
		req.Header.Set("Idempotency-Key", hex.EncodeToString(h[:16]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("POST %s: %s: %s", path, resp.Status, msg)
		}
		if out != nil {
			return json.Unmarshal(msg, out)
		}
		return nil
	}
	deposit := func(account string, amount int64) error {
		return post("/v1/deposits", opKey, api.DepositRequest{BankRef: "devnet-" + account, Account: account, AmountMicroUSD: amount}, nil)
	}
	if err := deposit("client:acme", 1_000_000_000); err != nil {
		return nil, err
	}
	for _, n := range solverNodes {
		if err := deposit("solver_bond:"+node.PartyID(wire.RoleSolver, n.ID()), 100_000_000); err != nil {
			return nil, err
		}
	}
	for _, n := range verifierNodes {
		party := node.PartyID(wire.RoleVerifier, n.ID())
		if err := deposit("verifier_bond:"+party, 100_000_000); err != nil {
			return nil, err
		}
		// The operator enrols the verifier: a verifier key for its party.
		if err := post("/v1/keys", opKey, api.KeyRequest{Subject: party, Role: auth.RoleVerifier.String()}, nil); err != nil {
			return nil, err
		}
	}
	say("deposits recorded: client $1,000; solver bonds 3 × $100; verifier bonds 2 × $100; verifiers enrolled")

	// The solvers and verifiers join.
	var ownerDaemon atomic.Pointer[solverd.Daemon] // the second solver, whose owner comes back
	var runningSince atomic.Int64                  // when it was first seen with a job (Unix ns)
	for i, ss := range solverSpecs {
		cfgS := solverd.Config{Coordinator: caddr, Dir: filepath.Join(tmp, fmt.Sprintf("solver%d", i+1)), DataDir: cfg.DataDir, TextFile: textFile,
			AskNanoUSDPerCU: ss.ask, Backend: backend, Model: chosen.Options(), GPUName: probe.Name(), Logger: eventlog.New(event), CheatForTesting: ss.cheat, Keys: keyring}
		if i == 1 && cfg.OwnerBusyFor > 0 {
			// The owner's activity, as the gate's sampler sees it.
			owner := func() (idle.Reading, error) {
				if d := ownerDaemon.Load(); d != nil && d.Runs() > 0 {
					runningSince.CompareAndSwap(0, time.Now().UnixNano())
				}
				since := runningSince.Load()
				if since == 0 {
					return idle.Reading{}, nil
				}
				el := time.Since(time.Unix(0, since))
				return idle.Reading{Busy: el >= cfg.OwnerBusyFrom && el < cfg.OwnerBusyFrom+cfg.OwnerBusyFor, Why: "the owner is gaming"}, nil
			}
			cfgS.Gate = idle.NewGate(owner, idle.Config{Interval: 10 * time.Millisecond, Grace: 100 * time.Millisecond,
				Changed: func(open bool, why string) {
					say("solver %s idle gate %s (%s)", solverNodes[1].ID().ShortString(), map[bool]string{true: "opened", false: "closed"}[open], why)
				}})
		}
		sd, err := solverd.Start(ctx, solverNodes[i], cfgS)
		if err != nil {
			return nil, err
		}
		defer sd.Close()
		if i == 1 {
			ownerDaemon.Store(sd)
		}
		say("solver %s trains on %s", solverNodes[i].ID().ShortString(), backend)
		if ss.cheat != nil {
			say("solver %s will cheat from step %d on (devnet fault injection)", solverNodes[i].ID().ShortString(), ss.cheat.From)
		}
	}
	var lateMu sync.Mutex
	var late []*verifierd.Daemon
	defer func() {
		lateMu.Lock()
		defer lateMu.Unlock()
		for _, vd := range late {
			vd.Close()
		}
	}()
	for i, n := range verifierNodes {
		vc := verifierd.Config{Coordinator: caddr, DataDir: cfg.DataDir, TextFile: textFile, Logger: eventlog.New(event), SilentForTesting: cfg.SilentVerifier && i == 0, Keys: keyring}
		if cfg.SilentVerifier && i > 0 {
			// Audits are drawn by their beacons: with both verifiers up, the
			// silent one might hold none. The answering one joins once the
			// silent one holds an audit, and takes it over at its timeout.
			go func() {
				select {
				case <-firstAudit:
				case <-ctx.Done():
					return
				}
				say("verifier %s joins late (devnet fault injection: the silent verifier holds an audit)", n.ID().ShortString())
				vd, err := verifierd.Start(ctx, n, vc)
				if err != nil {
					say("verifier %s: %v", n.ID().ShortString(), err)
					return
				}
				lateMu.Lock()
				late = append(late, vd)
				lateMu.Unlock()
			}()
			continue
		}
		vd, err := verifierd.Start(ctx, n, vc)
		if err != nil {
			return nil, err
		}
		defer vd.Close()
	}
	// Let the solvers' and verifiers' subscriptions reach the
	// coordinator's gossip mesh.
	for deadline := time.Now().Add(3 * time.Second); (len(cn.PubSub.ListPeers(wire.JobsTopic)) < len(solverNodes) ||
		len(cn.PubSub.ListPeers(wire.AuditsTopic)) < started(len(verifierNodes), cfg.SilentVerifier)) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}

	// Three jobs, posted by the client (matched with the waiting asks) and
	// offered on the jobs topic.
	// All three are posted before any is started, so that each waiting ask
	// takes one (a solver that finishes early must not take a second).
	var jobs []spec.JobID
	var specs [][]byte
	var models []string
	for i := range 3 {
		s, err := jobSpec(cfg, i, corpus)
		if err != nil {
			return nil, err
		}
		js, err := s.JSON()
		if err != nil {
			return nil, err
		}
		// The job is the posting's: its spec carries a posting tag in its
		// name, and the job ID is that spec's hash.
		var posted struct {
			ID   string          `json:"id"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := post("/v1/jobs", clientKey, api.JobRequest{Spec: js, MaxPriceNanoUSDPerCU: 0}, &posted); err != nil {
			return nil, err
		}
		id, err := spec.ParseJobID(posted.ID)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, id)
		specs = append(specs, posted.Spec)
		models = append(models, map[bool]string{false: "mlp", true: "gpt"}[s.IsGPT()])
		say("client posted job %s (%s): %s", id.String()[:12], s.Name, describe(s))
	}
	for _, js := range specs {
		if err := coord.Offer(ctx, js); err != nil {
			return nil, err
		}
	}

	if cfg.KillSolverAfter > 0 {
		// Killed once KillSolverAfter has passed and a checkpoint of its job
		// outlives it (a replica holds one), so that the job has somewhere
		// to resume from.
		victim := solverNodes[0]
		go func() {
			time.Sleep(cfg.KillSolverAfter)
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if id, step, ok := coord.ResumePoint(victim.ID()); ok {
					say("killing solver %s mid-job %s (fault injection; a replica holds step %d)", victim.ID().ShortString(), id.String()[:12], step)
					victim.Close()
					return
				}
			}
		}()
	}

	// Wait for every job to end.
	res := &Result{PaidMicroUSD: map[string]int64{}}
	for _, n := range solverNodes {
		res.Solvers = append(res.Solvers, Solver{Peer: n.ID().String(), Party: node.PartyID(wire.RoleSolver, n.ID()), Backend: backend})
	}
	for i, id := range jobs {
		o, err := coord.AwaitOutcome(jobsCtx, id)
		if err != nil {
			return nil, fmt.Errorf("devnet: %d job(s) unfinished: %w", len(jobs)-i, err)
		}
		res.Jobs = append(res.Jobs, *o)
		res.Models = append(res.Models, models[i])
		rec, err := svc.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		ran := ""
		if n := len(rec.Solvers); n > 0 {
			ran = rec.Solvers[n-1].Backend
		}
		res.Backends = append(res.Backends, ran)
		for _, p := range o.Slashed {
			res.Slashed = append(res.Slashed, p.String())
		}
		// The client fetches the job's audit report and checks it as a
		// third party would, pinned to the coordinator's peer ID.
		if err := verifyReport(ctx, base, clientKey, id, cn.ID().String()); err != nil {
			return nil, err
		}
		res.ReportsVerified++
		say("audit report of job %s (%s, %s, trained on %s): signed by the coordinator, verified offline", id.String()[:12], models[i], o.State, ran)
	}

	// The ledger.
	led := svc.Ledger()
	balance := func(ref service.AccountRef) (ledger.Account, error) { return led.Account(ctx, ref.ID()) }
	add := func(ref service.AccountRef, who string) error {
		a, err := balance(ref)
		if errors.Is(err, ledger.ErrAccountNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		res.Ledger = append(res.Ledger, Balance{Account: ref.String(), Peer: who, MicroUSD: a.CreditBalanceMicroUSD(), PendingOut: a.DebitsPendingMicroUSD})
		return nil
	}
	add(service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, "")
	for _, n := range solverNodes {
		p := node.PartyID(wire.RoleSolver, n.ID())
		add(service.AccountRef{Kind: service.KindSolverBond, Party: p}, n.ID().String())
		add(service.AccountRef{Kind: service.KindSolverEarnings, Party: p}, n.ID().String())
		if a, err := balance(service.AccountRef{Kind: service.KindSolverEarnings, Party: p}); err == nil {
			res.PaidMicroUSD[n.ID().String()] = a.CreditBalanceMicroUSD()
		} else {
			res.PaidMicroUSD[n.ID().String()] = 0
		}
	}
	for _, n := range verifierNodes {
		p := node.PartyID(wire.RoleVerifier, n.ID())
		add(service.AccountRef{Kind: service.KindVerifierBond, Party: p}, n.ID().String())
		add(service.AccountRef{Kind: service.KindVerifierEarnings, Party: p}, n.ID().String())
		if a, err := balance(service.AccountRef{Kind: service.KindVerifierEarnings, Party: p}); err == nil {
			res.PaidMicroUSD[n.ID().String()] = a.CreditBalanceMicroUSD()
		} else {
			res.PaidMicroUSD[n.ID().String()] = 0
		}
	}
	for _, id := range jobs {
		add(service.AccountRef{Kind: service.KindEscrow, Party: id.String()}, "")
	}
	add(service.AccountRef{Kind: service.KindPlatformFees}, "")
	add(service.AccountRef{Kind: service.KindBankClearing}, "")
	res.LedgerBalanced = ledger.CheckInvariants(ctx, led) == nil
	res.Seconds = time.Since(start).Seconds()

	say("ledger (posted balances, micro-dollars):")
	for _, b := range res.Ledger {
		outMu.Lock()
		fmt.Fprintf(out, "          %-40s %16d\n", b.Account, b.MicroUSD)
		outMu.Unlock()
	}
	say("ledger balanced: %v", res.LedgerBalanced)
	err = check(res, solverNodes)
	if cfg.Console != "" {
		links, lerr := consoleLinks(ctx, cd, base, opKey, clientKey, solverNodes, verifierNodes)
		if lerr != nil {
			return res, errors.Join(err, lerr)
		}
		say("the network keeps running; web console at %s/ — log in as each party (Ctrl-C ends the devnet):", base)
		for _, l := range links {
			outMu.Lock()
			fmt.Fprintf(out, "          %-9s %-14s %s\n", l.Role, l.Party, l.URL)
			outMu.Unlock()
		}
		offerPosted.Store(true)
		if cfg.ConsoleReady != nil {
			cfg.ConsoleReady(base, links)
		}
		<-ctx.Done()
	}
	return res, err
}

// consoleLinks issues each solver and verifier an API key of its own (the
// operator's job on a real network) and returns every party's log-in link.
func consoleLinks(ctx context.Context, cd *coordinatord.Coordinator, base, opKey, clientKey string, solvers, verifiers []*p2p.Node) ([]Link, error) {
	link := func(key string) string { return base + "/login?key=" + url.QueryEscape(key) }
	links := []Link{{Role: "operator", Party: "operator", URL: link(opKey)}, {Role: "client", Party: "acme", URL: link(clientKey)}}
	for _, g := range []struct {
		role  auth.Role
		wrole wire.Role
		nodes []*p2p.Node
	}{{auth.RoleSolver, wire.RoleSolver, solvers}, {auth.RoleVerifier, wire.RoleVerifier, verifiers}} {
		for _, n := range g.nodes {
			party := node.PartyID(g.wrole, n.ID())
			key, _, err := cd.Keys.Issue(ctx, party, g.role, 0)
			if err != nil {
				return nil, err
			}
			links = append(links, Link{Role: g.role.String(), Party: party, URL: link(key)})
		}
	}
	return links, nil
}

// check says whether the run did what a devnet must show.
func check(r *Result, solvers []*p2p.Node) error {
	var problems []string
	if !r.LedgerBalanced {
		problems = append(problems, "the ledger does not balance")
	}
	cheater := solvers[len(solvers)-1].ID().String()
	// The cheater is slashed for every job it cheated on: its own, and a
	// killed solver's job if it was the one to resume it.
	if len(r.Slashed) == 0 || slices.ContainsFunc(r.Slashed, func(p string) bool { return p != cheater }) {
		problems = append(problems, fmt.Sprintf("slashed %v, want the cheater %s alone", r.Slashed, cheater))
	}
	for _, s := range solvers[:len(solvers)-1] {
		if r.PaidMicroUSD[s.ID().String()] <= 0 {
			problems = append(problems, fmt.Sprintf("honest solver %s was not paid", s.ID()))
		}
	}
	if r.PaidMicroUSD[cheater] != 0 {
		problems = append(problems, "the cheater was paid")
	}
	if len(problems) > 0 {
		return fmt.Errorf("devnet: %v", problems)
	}
	return nil
}

// verifyReport fetches job id's audit report over the API with the
// client's key and verifies it pinned to the coordinator's peer ID.
func verifyReport(ctx context.Context, base, key string, id spec.JobID, coordinator string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/jobs/"+id.String()+"/report", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, report.MaxReportBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("devnet: report of job %s: %s: %s", id, resp.Status, b)
	}
	pin, err := report.ParseKey(coordinator)
	if err != nil {
		return err
	}
	if _, _, err := report.Verify(b, pin); err != nil {
		return fmt.Errorf("devnet: the audit report of job %s does not verify: %w", id, err)
	}
	return nil
}

// started is how many of n verifiers start with the devnet (with
// SilentVerifier, one joins late).
func started(n int, silent bool) int {
	if silent {
		return 1
	}
	return n
}
