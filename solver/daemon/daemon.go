// Package daemon is the solver daemon (`beluga solver`): it joins a
// coordinator, advertises its hardware and its ask, runs the jobs it is
// assigned with solver/trainer (committing a state digest every
// digest_interval steps and storing checkpoints in a content-addressed
// store), resumes a job from a checkpoint fetched from other peers,
// announces its checkpoints, serves their chunks to the peers the
// coordinator grants them to (protocol/net/exchange) and answers the
// referee in a dispute (protocol/net/disputenet). It runs both kinds of
// job (spec/model): an MLP on its dataset, a GPT on its text corpus (the
// fortunes, or a text file the operator names), each checked against the
// spec's commitment before the first step.
//
// It runs a job only while its Gate allows (solver/idle: the machine's
// owner is away). While the gate is closed it takes no job: its heartbeats
// say paused, the coordinator withdraws its offer, and an assignment that
// crosses the pause is refused (the job goes back to the market). A job
// already running pauses at its next step boundary, keeping a resumable
// checkpoint, and stays this solver's (its heartbeats go on, saying
// paused) until the gate reopens: it is paused, not released, so no
// other solver redoes its steps; the job's deadline still bounds it.
//
// # Confidential jobs
//
// No plaintext state of a confidential job leaves this solver: it serves
// none of its checkpoints (whatever grant a peer presents), answers no
// replay dispute about it (the coordinator referees confidential audits on
// zk proofs alone), and never resumes one from a checkpoint fetched from
// elsewhere. A confidential job whose solver dies therefore restarts from
// step 0 on another solver: the coordinator asks no one to replicate its
// checkpoints, so there is nothing to resume from. Encrypted replicas
// would save the rerun, but need a key only the job's solvers share and a
// way to hand it over that the coordinator cannot read; a rerun costs
// compute the coordinator already accounts for, and leaks nothing.
//
// # Lifecycle
//
// Start joins (retrying with backoff while the coordinator is
// unreachable) and starts the daemon's goroutines, all owned by the
// daemon; it says hello again whenever the connection to the coordinator
// drops or the coordinator no longer knows it (protocol/net/join), and a
// job given back to it after a coordinator restart goes on where it is.
// The goroutines end when the context given to Start ends or Close is
// called. A job being trained then stops at a step boundary and saves a
// checkpoint (solver/trainer), which Close waits for before closing the
// run's store. A finished run is kept for RunTTL (its checkpoints are
// served, its disputes answered, its tiles proven) and at most MaxRuns are
// kept, so a long-running daemon holds a bounded number of datasets and
// open stores.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/sync/errgroup"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/datanet"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/solver/idle"
	"github.com/beluga-compute/beluga/solver/trainer"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/gptref"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/ref"
)

// Config configures a solver daemon.
type Config struct {
	// Coordinator is the coordinator's full multiaddr (with /p2p/ID).
	Coordinator string
	// Dir holds one run directory per job.
	Dir string
	// DataDir is where Fashion-MNIST lives (empty: the Debian path).
	DataDir string
	// FortunesDir is where a GPT job's "fortunes" corpus lives (empty:
	// the Debian path, dataset.FortunesDir).
	FortunesDir string
	// TextFile holds the corpus of GPT jobs whose source is "text", read
	// and checked against the spec's root and size when such a job is
	// assigned. Without it, or when it holds another corpus, the job's
	// corpus is fetched from the coordinator (a client uploaded it),
	// checked and kept in Dir/data/text; a solver that cannot get it
	// declines the job, which goes to another solver.
	TextFile string
	// AskNanoUSDPerCU is the ask in nano-dollars per compute unit; 0
	// follows the market.
	AskNanoUSDPerCU int64
	// Backend describes the hardware for the Hello: the backend that
	// trains (model.ResolveBackend's choice), not merely a GPU present.
	Backend, GPUName string
	GPUMemoryBytes   uint64
	// Model are the runner options of every job (model.Chosen.Options:
	// the backend); none trains on the CPU.
	Model []model.Option
	// Heartbeat is the heartbeat period (default 500 ms).
	Heartbeat time.Duration
	// Logger receives the daemon's events (default: discarded).
	Logger *slog.Logger
	// Gate, if set, says when the machine is free (solver/idle): a job
	// pauses at a step boundary (checkpoint) when it closes and resumes
	// when it reopens. Nil runs whenever assigned. The daemon runs the
	// gate's sampling loop.
	Gate *idle.Gate
	// Keys holds the proving keys of the tile circuits (prover.Keyring):
	// with them the daemon takes confidential jobs, commits their zk trace
	// and serves tile proofs; without, it refuses confidential jobs.
	Keys *prover.Keyring
	// RunTTL is how long a finished run (committed, or failed) is kept:
	// its checkpoints served, its disputes answered, its challenged tiles
	// proven. Then its dataset is dropped and its store closed (the files
	// stay in Dir). Default 1 h.
	RunTTL time.Duration
	// MaxRuns bounds the finished runs kept (the oldest go first; the job
	// being trained is never dropped). Default 4.
	MaxRuns int
	// JoinBackoff is the longest wait between attempts to reach the
	// coordinator at start (default 30 s; the first retry is after 250 ms).
	JoinBackoff time.Duration
	// Now is the clock the TTLs run on (default time.Now).
	Now func() time.Time
	// CheatForTesting makes the daemon a cheating solver: it applies the
	// fault to its state after each step (training) and to its answers in
	// a dispute. Only tests and the devnet set it.
	CheatForTesting *Cheat
}

// Cheat is a deterministic fault: from step From on, the first value of
// the first layer's weight momentum is off by one (a GPT's: the first
// parameter's first moment). In a confidential job the run is honest and
// the fault is in its zk trace instead: the root committed for step From
// is not the step's.
type Cheat struct{ From int64 }

// apply changes the state of s after step st.Step−1.
func (c *Cheat) apply(s *spec.Spec, st *spec.State) {
	if st.Step <= c.From {
		return
	}
	if s.IsGPT() {
		// spec.GPTTensors: each parameter's weights, first moment, second
		// moment.
		st.Tensors[1].Data[0]++
		return
	}
	st.Layer(0, spec.TensorWeightMomentum)[0]++
}

// gptStep is the same fault as a dispute.GPTStepFunc of s: the step's
// next first moment of the first parameter is off by one.
func (c *Cheat) gptStep(s *spec.Spec) (dispute.GPTStepFunc, error) {
	tmpl, err := model.StateTemplate(s)
	if err != nil {
		return nil, err
	}
	name := "next." + tmpl.Tensors[1].Name
	return func(g *gptref.Graph, st *gpt.State, tokens, targets []byte) (map[string]ref.Tensor, error) {
		vals, err := dispute.HonestGPT(g, st, tokens, targets)
		if err != nil || st.Step+1 <= c.From {
			return vals, err
		}
		v, ok := vals[name]
		if !ok {
			return nil, fmt.Errorf("no tensor %s", name)
		}
		v = v.Clone()
		v.Data[0]++
		vals[name] = v
		return vals, nil
	}, nil
}

// step is the same fault as a dispute.StepFunc.
func (c *Cheat) step(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
	tr, err := dispute.Honest(s, st, t, x, y)
	if err != nil || t+1 <= c.From {
		return tr, err
	}
	name := "next." + spec.TensorName(s.Plan().Linear[0].Index, spec.TensorWeightMomentum)
	i := tr.Graph.Index(name)
	if i < 0 {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	tr.Value[i].Data[0]++
	return tr, nil
}

// Daemon is a running solver.
type Daemon struct {
	n     *p2p.Node
	cfg   Config
	log   *slog.Logger
	coord peer.ID
	now   func() time.Time
	// corpora keeps the "text" corpora fetched from the coordinator.
	corpora *datanet.Cache
	// member keeps the daemon registered (protocol/net/join); kick makes
	// the heartbeat loop send at once (the idle gate changed).
	member *join.Member
	kick   chan struct{}

	// ctx is the daemon's root context: every goroutine it starts ends
	// when ctx does (Close cancels it). group owns those goroutines;
	// spawn adds to it unless the daemon is stopping.
	ctx       context.Context
	cancel    context.CancelFunc
	group     errgroup.Group
	spawnMu   sync.Mutex
	stopping  bool
	closeOnce sync.Once
	closeErr  error

	mu    sync.Mutex
	runs  map[spec.JobID]*run
	state wire.Heartbeat
	job   spec.JobID

	// proving serializes tile proofs: each takes the machine's cores for
	// seconds, and a burst of requests must queue, not thrash.
	proving sync.Mutex
}

type run struct {
	spec  *spec.Spec
	dir   string
	data  *model.Data
	store *store.Badger
	// finished is when the run ended (committed or failed); zero while it
	// trains.
	finished time.Time
	// use guards store: users hold it for reading, dropping the run takes
	// it for writing before closing the store and setting closed.
	use    sync.RWMutex
	closed bool
	// zk is a confidential run's committed zk trace (nil until committed),
	// traceRoot its digest trace's root.
	zk        *trace.ZKTrace
	traceRoot [32]byte
	// challenges are the tiles its audit challenges, known once the
	// coordinator sends the beacon: only those are proven, each once, in
	// the order the verifier asks for them.
	challenges map[zkchallenge.Challenge]*proofSlot
}

// proofSlot is one challenged tile's proof, ready when done is closed.
type proofSlot struct {
	done  chan struct{}
	proof []byte
	err   error
}

// protocols are the streams the daemon serves.
var protocols = []string{wire.ExchangeProtocol, wire.DisputeProtocol, wire.AssignProtocol, wire.ProofProtocol}

// Start joins the coordinator and serves until ctx ends or Close is
// called. While the coordinator is unreachable it retries, with backoff,
// until ctx ends.
func Start(ctx context.Context, n *p2p.Node, cfg Config) (*Daemon, error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RunTTL <= 0 {
		cfg.RunTTL = time.Hour
	}
	if cfg.MaxRuns <= 0 {
		cfg.MaxRuns = 4
	}
	if cfg.JoinBackoff <= 0 {
		cfg.JoinBackoff = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	coord, err := join.Coordinator(cfg.Coordinator)
	if err != nil {
		return nil, err
	}
	d := &Daemon{n: n, cfg: cfg, coord: coord, now: cfg.Now, runs: map[spec.JobID]*run{}, state: wire.Heartbeat{State: wire.StateIdle},
		log: cfg.Logger.With("solver", shortPeer(n.ID())), kick: make(chan struct{}, 1)}
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.corpora = &datanet.Cache{Dir: filepath.Join(cfg.Dir, "data", "text"), Host: n.Host, Peer: coord, Log: d.log, Ctx: d.ctx}
	exchange.Serve(n, d, exchange.ServeConfig{Coordinator: coord, Logger: d.log})
	disputenet.Serve(n, d.party)
	n.Handle(wire.AssignProtocol, d.assign, wire.TypeAssign, wire.TypeBeacon)
	n.Handle(wire.ProofProtocol, d.onProof, wire.TypeProofRequest)
	hello := func() *wire.Hello {
		return &wire.Hello{Role: wire.RoleSolver, Backend: cfg.Backend, GPUName: cfg.GPUName, GPUMemoryBytes: cfg.GPUMemoryBytes,
			AskNanoUSDPerCU: cfg.AskNanoUSDPerCU, Addrs: n.Addrs()}
	}
	d.member, err = join.New(n, join.Config{Addr: cfg.Coordinator, Hello: hello, MaxBackoff: cfg.JoinBackoff, Logger: d.log,
		// A hello (again) tells the coordinator at once whether this
		// solver is paused.
		Joined: func(string) { d.wakeHeartbeat() }})
	if err != nil {
		return nil, err
	}
	if err := d.member.Join(d.ctx); err != nil {
		d.Close()
		return nil, err
	}
	if n.PubSub != nil {
		if _, err := n.Join(wire.JobsTopic, wire.TypeJobOffer); err != nil {
			d.Close()
			return nil, err
		}
		if err := n.Subscribe(d.ctx, wire.JobsTopic, func(e *wire.Envelope, m wire.Message) {
			d.log.Debug("job offered", "job", short(spec.JobID(e.Job)), "topic", wire.JobsTopic)
		}, wire.TypeJobOffer); err != nil {
			d.Close()
			return nil, err
		}
	}
	if cfg.Gate != nil {
		d.spawn(func() { cfg.Gate.Run(d.ctx) })
		d.spawn(d.watchGate)
	}
	d.spawn(func() {
		if err := d.member.Keep(d.ctx); err != nil {
			d.log.Error("the coordinator refused this solver; it gets no more work", "err", err)
		}
	})
	d.spawn(d.heartbeats)
	d.spawn(d.janitor)
	return d, nil
}

// Member is the daemon's registration with its coordinator.
func (d *Daemon) Member() *join.Member { return d.member }

// Party is the daemon's ledger party at the coordinator (join.PartyID).
func (d *Daemon) Party() string { return join.PartyID(wire.RoleSolver, d.n.ID()) }

// spawn runs f in a goroutine the daemon owns, unless it is stopping.
func (d *Daemon) spawn(f func()) bool {
	d.spawnMu.Lock()
	defer d.spawnMu.Unlock()
	if d.stopping {
		return false
	}
	d.group.Go(func() error { f(); return nil })
	return true
}

// Close stops the daemon: it stops serving, cancels the root context (a
// job being trained saves a checkpoint at its next step boundary), waits
// for every goroutine of the daemon and closes the runs' stores.
func (d *Daemon) Close() error {
	for _, pid := range protocols {
		d.n.Host.RemoveStreamHandler(protocol.ID(pid))
	}
	d.cancel()
	return d.Wait()
}

// Wait blocks until the daemon has stopped (its context ended or Close
// was called) and everything it started has ended, then closes the runs'
// stores.
func (d *Daemon) Wait() error {
	<-d.ctx.Done()
	d.spawnMu.Lock()
	d.stopping = true
	d.spawnMu.Unlock()
	err := d.group.Wait()
	d.closeOnce.Do(func() {
		d.mu.Lock()
		runs := make([]*run, 0, len(d.runs))
		for id, r := range d.runs {
			runs = append(runs, r)
			delete(d.runs, id)
		}
		d.mu.Unlock()
		for _, r := range runs {
			d.closeErr = errors.Join(d.closeErr, r.drop())
		}
	})
	return errors.Join(err, d.closeErr)
}

// drop closes the run's store once no one uses it.
func (r *run) drop() error {
	r.use.Lock()
	defer r.use.Unlock()
	r.closed = true
	if r.store == nil {
		return nil
	}
	return r.store.Close()
}

// acquire returns the job's run with its store held open, and the
// function that releases it; nil if there is no such open run.
func (d *Daemon) acquire(job spec.JobID) (*run, func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.runs[job]
	if r == nil || r.store == nil {
		return nil, nil
	}
	// Under d.mu: a run still in the map is not being dropped yet, so
	// this never waits for a close.
	r.use.RLock()
	return r, r.use.RUnlock
}

// heartbeats tells the coordinator, every Heartbeat and whenever the idle
// gate changes, what the daemon is doing: idle, running or paused (a
// paused solver without a job has its offer withdrawn). A coordinator
// that no longer knows this solver, or heartbeats failing
// maxHeartbeatFailures times in a row, make the daemon say hello again.
func (d *Daemon) heartbeats() {
	t := time.NewTicker(d.cfg.Heartbeat)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
		hb, job := d.heartbeat()
		rctx, cancel := context.WithTimeout(d.ctx, d.cfg.Heartbeat*4)
		_, err := d.n.Request(rctx, d.coord, wire.ControlProtocol, job, &hb, wire.TypeAck)
		cancel()
		switch {
		case err == nil:
			failures = 0
		case join.IsUnregistered(err):
			failures = 0
			d.member.Lost()
		case errors.Is(err, p2p.ErrRemote):
			failures = 0
		default:
			if failures++; failures == maxHeartbeatFailures {
				d.member.Lost()
			}
		}
	}
}

// maxHeartbeatFailures: heartbeats failing this many times in a row make
// the daemon register again.
const maxHeartbeatFailures = 3

// heartbeat is what the next heartbeat says: the run's state, or paused
// while the idle gate is closed and no job runs.
func (d *Daemon) heartbeat() (wire.Heartbeat, spec.JobID) {
	d.mu.Lock()
	hb, job := d.state, d.job
	d.mu.Unlock()
	if hb.State == wire.StateIdle && d.paused() {
		hb.State = wire.StatePaused
	}
	return hb, job
}

// paused reports whether the idle gate is closed (the machine's owner is
// using it): the daemon takes no job.
func (d *Daemon) paused() bool { return d.cfg.Gate != nil && !d.cfg.Gate.Open() }

// wakeHeartbeat makes the heartbeat loop send now.
func (d *Daemon) wakeHeartbeat() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// watchGate sends a heartbeat whenever the idle gate closes or opens, so
// that the coordinator withdraws (or restores) this solver's offer at
// once rather than at the next period.
func (d *Daemon) watchGate() {
	g := d.cfg.Gate
	for {
		select {
		case <-g.Busy():
		case <-d.ctx.Done():
			return
		}
		d.log.Info(EventPaused)
		d.wakeHeartbeat()
		if g.Wait(d.ctx) != nil {
			return
		}
		d.log.Info(EventResumed)
		d.wakeHeartbeat()
	}
}

// janitor drops finished runs past RunTTL, or beyond MaxRuns, until the
// daemon stops.
func (d *Daemon) janitor() {
	t := time.NewTicker(min(d.cfg.RunTTL/4, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			d.prune()
		}
	}
}

// prune drops the finished runs that are older than RunTTL and the oldest
// beyond MaxRuns; it returns how many it dropped.
func (d *Daemon) prune() int {
	now := d.now()
	d.mu.Lock()
	var finished []spec.JobID
	for id, r := range d.runs {
		if !r.finished.IsZero() {
			finished = append(finished, id)
		}
	}
	sort.Slice(finished, func(a, b int) bool { return d.runs[finished[a]].finished.After(d.runs[finished[b]].finished) })
	var drop []*run
	for i, id := range finished {
		r := d.runs[id]
		if i >= d.cfg.MaxRuns || now.Sub(r.finished) > d.cfg.RunTTL {
			delete(d.runs, id)
			drop = append(drop, r)
			d.log.Info("run dropped", "job", short(id), "finished", r.finished.Format(time.TimeOnly))
		}
	}
	d.mu.Unlock()
	for _, r := range drop {
		if err := r.drop(); err != nil {
			d.log.Warn("closing a dropped run's store", "err", err)
		}
	}
	return len(drop)
}

// Runs reports how many runs the daemon holds (training or finished).
func (d *Daemon) Runs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.runs)
}

// Manifest serves a checkpoint manifest (exchange.Source); none of a
// confidential job.
func (d *Daemon) Manifest(ctx context.Context, job spec.JobID, step int64) (store.Manifest, error) {
	r, release := d.acquire(job)
	if r == nil {
		return store.Manifest{}, store.ErrNotFound
	}
	defer release()
	if r.closed {
		return store.Manifest{}, store.ErrNotFound
	}
	if r.spec.Audit.Confidential {
		return store.Manifest{}, ErrConfidential
	}
	return r.store.Manifest(ctx, job, step)
}

// Chunk serves a chunk of a job's checkpoint (exchange.Source); none of a
// confidential job.
func (d *Daemon) Chunk(ctx context.Context, job spec.JobID, id store.ChunkID) ([]byte, error) {
	r, release := d.acquire(job)
	if r == nil {
		return nil, store.ErrNotFound
	}
	defer release()
	if r.closed {
		return nil, store.ErrNotFound
	}
	if r.spec.Audit.Confidential {
		return nil, ErrConfidential
	}
	return r.store.Get(ctx, id)
}

// party answers the referee for a job this daemon ran: it replays its own
// run (with its own fault, if it cheats). A confidential job's state is
// opened to no one: its referee checks zk proofs instead.
func (d *Daemon) party(job spec.JobID) (dispute.Party, error) {
	d.mu.Lock()
	r := d.runs[job]
	d.mu.Unlock()
	if r == nil {
		return nil, disputenet.ErrNoParty
	}
	if r.spec.Audit.Confidential {
		return nil, fmt.Errorf("%w: %w", disputenet.ErrNoParty, ErrConfidential)
	}
	if r.spec.IsGPT() {
		init, err := model.InitState(r.spec)
		if err != nil {
			return nil, err
		}
		var opts []dispute.ReplayerOption
		if c := d.cfg.CheatForTesting; c != nil {
			f, err := c.gptStep(r.spec)
			if err != nil {
				return nil, err
			}
			opts = append(opts, dispute.WithGPTStep(f))
		}
		return dispute.NewGPTReplayer(r.spec, r.data.Text, init, opts...)
	}
	var opts []dispute.ReplayerOption
	if c := d.cfg.CheatForTesting; c != nil {
		opts = append(opts, dispute.WithStep(func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
			return c.step(s, st, t, x, y)
		}))
	}
	return dispute.NewReplayer(r.spec, r.data.Train, r.spec.Init(), opts...)
}

func (d *Daemon) assign(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
	if e.Sender != d.coord {
		return r.Reply(&wire.Ack{Error: "assignments come from the coordinator"})
	}
	if b, ok := m.(*wire.Beacon); ok {
		return d.onBeacon(ctx, e, b, r)
	}
	a := m.(*wire.Assign)
	d.n.Learn(a.ProviderAddrs)
	s, err := spec.Decode(a.SpecJSON)
	if err != nil {
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	id, err := s.ID()
	if err != nil || id != spec.JobID(e.Job) {
		return r.Reply(&wire.Ack{Error: "spec does not match the job ID"})
	}
	d.mu.Lock()
	running := d.job != ([32]byte{}) && (d.state.State == wire.StateRunning || d.state.State == wire.StatePaused || d.state.State == wire.StateDone)
	same := running && d.job == id
	d.mu.Unlock()
	if same {
		// The coordinator restarted and gives this solver back the job it
		// is running: it goes on where it is.
		d.log.Info(EventAssigned, "job", short(id), "resumed_here", true)
		return r.Reply(&wire.Ack{OK: true})
	}
	if running {
		return r.Reply(&wire.Ack{Error: "busy with another job"})
	}
	if d.paused() {
		d.log.Info("job declined: paused while the machine's owner uses it", "job", short(id))
		d.wakeHeartbeat()
		return r.Reply(&wire.Ack{Error: ErrPaused.Error()})
	}
	if s.Audit.Confidential && d.cfg.Keys == nil {
		return r.Reply(&wire.Ack{Error: "confidential jobs need zk proving keys, and this solver has none"})
	}
	// The job's data must be here, and be what the spec names, before the
	// job is taken: a solver without it (a GPT job's corpus not installed,
	// another copy of the file) declines, and the coordinator asks another.
	// A "text" corpus the solver lacks is fetched from the coordinator,
	// checked and kept under Dir (protocol/net/datanet), within the time
	// the coordinator waits for the answer.
	// A fetch slower than that goes on into the cache, for the next offer.
	fctx, cancel := context.WithTimeout(d.ctx, p2p.RequestTimeout*3/4)
	data, err := datanet.LoadData(fctx, d.corpora, s, model.DataOptions{IDXDir: d.cfg.DataDir, FortunesDir: d.cfg.FortunesDir, TextFile: d.cfg.TextFile})
	cancel()
	if err != nil {
		d.log.Warn("job declined: its data is not on this solver", "job", short(id), "err", err)
		return r.Reply(&wire.Ack{Error: "the job's data is not on this solver: " + err.Error()})
	}
	if !d.spawn(func() { d.runJob(id, s, a, data) }) {
		return r.Reply(&wire.Ack{Error: ErrStopping.Error()})
	}
	d.log.Info(EventAssigned, "job", short(id), "steps", s.Steps, "resume_step", a.ResumeStep)
	return r.Reply(&wire.Ack{OK: true})
}

// runJob runs an assigned job to its commitment and records how it ended.
func (d *Daemon) runJob(id spec.JobID, s *spec.Spec, a *wire.Assign, data *model.Data) {
	err := d.run(d.ctx, id, s, a, data)
	d.mu.Lock()
	if r := d.runs[id]; r != nil {
		r.finished = d.now()
	}
	if d.job == id {
		// Back to idle: heartbeats stop naming the job, and the
		// coordinator gives a failed one to another solver.
		d.state, d.job = wire.Heartbeat{State: wire.StateIdle}, spec.JobID{}
	}
	d.mu.Unlock()
	switch {
	case err == nil:
	case errors.Is(err, trainer.ErrInterrupted):
		d.log.Info("job interrupted, checkpoint saved", "job", short(id), "err", err)
	case d.ctx.Err() != nil:
		d.log.Info("job stopped: the daemon is shutting down", "job", short(id), "err", err)
	default:
		d.log.Error(EventFailed, "job", short(id), "err", err)
	}
	d.prune()
}

func (d *Daemon) run(ctx context.Context, id spec.JobID, s *spec.Spec, a *wire.Assign, data *model.Data) error {
	dir := filepath.Join(d.cfg.Dir, id.String()[:16])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The same job again (given back to this solver after it failed here,
	// or after the coordinator took it away): its earlier run goes first,
	// closing the store the new run opens in the same directory.
	d.mu.Lock()
	old := d.runs[id]
	delete(d.runs, id)
	d.mu.Unlock()
	if old != nil {
		if err := old.drop(); err != nil {
			return fmt.Errorf("close the earlier run of the job: %w", err)
		}
	}
	// The run's store is opened here, not by the trainer, so its chunks
	// are served while the job runs.
	cs, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.runs[id] = &run{spec: s, dir: dir, data: data, store: cs}
	d.job, d.state = id, wire.Heartbeat{State: wire.StateRunning}
	d.mu.Unlock()
	resume := false
	if a.ResumeStep > 0 && s.Audit.Confidential {
		// A confidential job's state never travels: no peer may hold a
		// checkpoint of it, so it restarts from the beginning.
		d.log.Warn("not resuming a confidential job from a fetched checkpoint; training from step 0", "job", short(id), "resume_step", a.ResumeStep)
	} else if a.ResumeStep > 0 {
		st, err := exchange.FetchState(ctx, d.n, a.Providers, s, id, a.ResumeStep, a.ResumeDigest, exchange.Options{Grant: a.Grant, Logger: d.log})
		if err != nil {
			return fmt.Errorf("fetch the checkpoint at step %d: %w", a.ResumeStep, err)
		}
		if err := trainer.Seed(dir, s, st, wire.Entries(a.Entries), cs); err != nil {
			return err
		}
		resume = true
		d.log.Info(EventResumedFrom, "job", short(id), "step", a.ResumeStep, "holders", len(a.Providers))
	}
	announce := &latest[*wire.CheckpointAnnounce]{spawn: d.spawn, send: func(ann *wire.CheckpointAnnounce) {
		if !d.member.Ready() {
			// The coordinator restarted or is out of reach: a later
			// checkpoint (or the commitment) announces this one.
			return
		}
		d.n.Request(ctx, d.coord, wire.ControlProtocol, id, ann, wire.TypeAck)
	}}
	opts := trainer.Options{OutDir: dir, Commit: true, Resume: resume, Store: cs, Progress: func(p trainer.Progress) {
		d.mu.Lock()
		d.state.Step, d.state.LossQ16 = p.Step, p.LossQ16
		d.state.Backend = d.trainsOn(p.Backend)
		d.mu.Unlock()
		// Yield at every step boundary: a training loop that never blocks
		// keeps its P, and goroutines woken by the network wait in the
		// global run queue behind it. Measured in the devnet (three
		// solvers on two cores): replicating a 1.9 MB checkpoint took
		// 1.5–2 s without this, ~0.1 s with it; a step is ~0.5 ms, a
		// yield under 1 µs.
		runtime.Gosched()
	}, Checkpointed: func(st *spec.State, entries []trace.Entry) {
		// Tell the coordinator, with the trace so far, so that another
		// solver can resume from here if this one disappears.
		if n := len(entries); n > 0 && entries[n-1].Step == st.Step {
			d.log.Info(EventCheckpoint, "job", short(id), "step", st.Step, "of", s.Steps)
			announce.put(&wire.CheckpointAnnounce{Step: st.Step, Digest: entries[n-1].Digest, Entries: wire.TraceEntries(entries)})
		}
	}}
	opts.Model = d.cfg.Model
	if c := d.cfg.CheatForTesting; c != nil && !s.Audit.Confidential {
		opts.FaultInjectForTesting = func(st *spec.State) { c.apply(s, st) }
	}
	res, err := d.runGated(ctx, id, s, data, opts)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.state = wire.Heartbeat{State: wire.StateDone, Step: res.Steps, LatestDigest: res.FinalDigest, Backend: d.state.Backend}
	d.mu.Unlock()
	steps, err := cs.ListCheckpoints(ctx, id)
	if err != nil {
		return err
	}
	for _, step := range steps {
		man, err := cs.Manifest(ctx, id, step)
		if err != nil {
			return err
		}
		if err := d.toCoordinator(ctx, id, &wire.CheckpointAnnounce{Step: step, Digest: man.Digest}); err != nil {
			return fmt.Errorf("announce the checkpoint at step %d to the coordinator: %w", step, err)
		}
	}
	tc := &wire.TraceCommit{Steps: s.Steps, TraceRoot: res.Trace.Root(), FinalDigest: res.FinalDigest, Entries: wire.TraceEntries(res.Trace.Entries)}
	if s.Audit.Confidential {
		// The zk trace is committed with the digest trace, before the
		// beacon that picks the challenged tiles exists.
		t0 := time.Now()
		z, err := prover.CommitRunStore(ctx, s, data.Train, dir, cs, nil)
		if err != nil {
			return fmt.Errorf("zk commitments: %w", err)
		}
		if c := d.cfg.CheatForTesting; c != nil && c.From <= s.Steps {
			z.Entries[c.From].Root[31] ^= 1 // another field element, still canonical
		}
		tc.ZKEntries = wire.ZKTraceEntries(z.Entries)
		d.mu.Lock()
		d.runs[id].zk, d.runs[id].traceRoot = z, tc.TraceRoot
		d.mu.Unlock()
		d.log.Info("zk trace committed", "job", short(id), "steps", len(z.Entries), "took", time.Since(t0).Round(time.Millisecond))
	}
	if err := d.toCoordinator(ctx, id, tc); err != nil {
		return fmt.Errorf("commit the trace to the coordinator: %w", err)
	}
	d.log.Info(EventCommitted, "job", short(id), "steps", s.Steps, "final_digest", fmt.Sprintf("%x", res.FinalDigest[:6]))
	return nil
}

// toCoordinator sends a finished run's message (a checkpoint announcement,
// the trace commitment) about job id, waiting while the daemon is not
// registered (the coordinator restarted or is out of reach: the work is
// done and is committed once it is back) and retrying, once, a refusal
// that the job is not this solver's (a restarted coordinator gives the
// job back just after the hello). Other refusals are final.
func (d *Daemon) toCoordinator(ctx context.Context, id spec.JobID, m wire.Message) error {
	wait, notYours := 250*time.Millisecond, 0
	for {
		var err error
		if d.member.Ready() {
			if _, err = d.n.Request(ctx, d.coord, wire.ControlProtocol, id, m, wire.TypeAck); err == nil {
				return nil
			}
			if join.IsUnregistered(err) {
				d.member.Lost()
			} else if errors.Is(err, p2p.ErrRemote) {
				if !strings.Contains(err.Error(), "not the sender's job") || notYours > 0 {
					return err
				}
				notYours++
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			d.log.Info("the coordinator did not take the job's result; retrying", "job", short(id), "retry_in", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// onBeacon learns a confidential job's audit beacon from the coordinator:
// the challenged tiles are fixed from here (SPEC.md §17.3), and the daemon
// proves them, in order, before they are asked for.
func (d *Daemon) onBeacon(ctx context.Context, e *wire.Envelope, b *wire.Beacon, r *p2p.Responder) error {
	id := spec.JobID(e.Job)
	d.mu.Lock()
	run := d.runs[id]
	var z *trace.ZKTrace
	var root [32]byte
	if run != nil {
		z, root = run.zk, run.traceRoot
	}
	d.mu.Unlock()
	if z == nil || d.cfg.Keys == nil {
		return r.Reply(&wire.Ack{Error: "no committed confidential run of this job here"})
	}
	count, err := zkchallenge.Count(run.spec)
	if err != nil {
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	chs, err := zkchallenge.Challenges(run.spec, root, z.Root(), b.Beacon, count)
	if err != nil {
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	d.mu.Lock()
	fresh := run.challenges == nil
	if fresh {
		run.challenges = map[zkchallenge.Challenge]*proofSlot{}
		for _, ch := range chs {
			run.challenges[ch] = &proofSlot{done: make(chan struct{})}
		}
	} else {
		// One beacon per job: a second one must draw the same tiles.
		for _, ch := range chs {
			if run.challenges[ch] == nil {
				d.mu.Unlock()
				return r.Reply(&wire.Ack{Error: "another beacon for this job"})
			}
		}
	}
	d.mu.Unlock()
	if fresh && !d.spawn(func() { d.proveAll(id, run, chs) }) {
		return r.Reply(&wire.Ack{Error: ErrStopping.Error()})
	}
	return r.Reply(&wire.Ack{OK: true})
}

// proveAll proves the challenged tiles of run in order, one proof at a
// time for the whole daemon (each takes the machine's cores for seconds).
// A tile it cannot prove (the daemon stopping, the run dropped) gets the
// error, so that no request waits for it.
func (d *Daemon) proveAll(id spec.JobID, run *run, chs []zkchallenge.Challenge) {
	for _, ch := range chs {
		d.mu.Lock()
		slot := run.challenges[ch]
		d.mu.Unlock()
		d.proving.Lock()
		t0 := time.Now()
		run.use.RLock()
		if run.closed {
			slot.err = ErrRunDropped
		} else {
			slot.proof, slot.err = prover.ProveTile(d.ctx, d.cfg.Keys, run.spec, run.data.Train, run.dir, run.store, ch)
		}
		run.use.RUnlock()
		d.proving.Unlock()
		close(slot.done)
		if slot.err != nil && d.ctx.Err() != nil {
			d.log.Info("proving stopped: the daemon is shutting down", "job", short(id), "tile", ch.String())
			continue
		}
		if slot.err != nil {
			d.log.Warn("proving a challenged tile failed", "job", short(id), "tile", ch.String(), "err", slot.err)
			continue
		}
		d.log.Info("challenged tile proved", "job", short(id), "tile", ch.String(), "took", time.Since(t0).Round(time.Millisecond), "bytes", len(slot.proof))
	}
}

// proofWait bounds how long a proof request waits for its tile's proof.
const proofWait = 2 * time.Minute

// onProof serves the proof of a challenged tile of a committed
// confidential run. Any peer may ask (a proof reveals nothing), but only
// the tiles the job's beacon challenges are ever proven, each once, so no
// peer can make the solver prove more than its audit needs.
func (d *Daemon) onProof(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
	q := m.(*wire.ProofRequest)
	id := spec.JobID(e.Job)
	c := zkchallenge.Challenge{Step: q.Step, Layer: q.Layer, Row: q.Row, Col: q.Col}
	d.mu.Lock()
	run := d.runs[id]
	var known bool
	var slot *proofSlot
	if run != nil && run.zk != nil {
		known, slot = run.challenges != nil, run.challenges[c]
	}
	d.mu.Unlock()
	switch {
	case run == nil || run.zk == nil || d.cfg.Keys == nil:
		return r.Reply(&wire.Proof{Error: "no committed confidential run of this job here"})
	case !known:
		return r.Reply(&wire.Proof{Error: "the audit beacon of this job has not reached this solver"})
	case slot == nil:
		return r.Reply(&wire.Proof{Error: "not a challenged tile of this job's audit"})
	}
	t := time.NewTimer(proofWait)
	defer t.Stop()
	select {
	case <-slot.done:
	case <-t.C:
		return r.Reply(&wire.Proof{Error: wire.ProofNotReady})
	case <-d.ctx.Done():
		return r.Reply(&wire.Proof{Error: ErrStopping.Error()})
	case <-ctx.Done():
		return ctx.Err()
	}
	if slot.err != nil {
		return r.Reply(&wire.Proof{Error: slot.err.Error()})
	}
	return r.Reply(&wire.Proof{Proof: slot.proof})
}

// runGated runs the job while the gate is open: when the owner comes back
// the run is interrupted at a step boundary (trainer checkpoints and
// keeps its partial trace), and it resumes from there once the gate
// reopens.
func (d *Daemon) runGated(ctx context.Context, id spec.JobID, s *spec.Spec, data *model.Data, opts trainer.Options) (*trainer.Result, error) {
	g := d.cfg.Gate
	if g == nil {
		return trainer.Run(ctx, s, data, opts)
	}
	for {
		if !g.Open() {
			d.setState(wire.StatePaused)
			if err := g.Wait(ctx); err != nil {
				return nil, err
			}
			d.setState(wire.StateRunning)
			d.log.Info("machine idle again, resuming job", "job", short(id))
		}
		// The owner coming back cancels this leg of the run.
		runCtx, cancel := context.WithCancel(ctx)
		busy := g.Busy()
		watch := make(chan struct{})
		var watcher sync.WaitGroup
		watcher.Go(func() {
			select {
			case <-busy:
				cancel()
			case <-watch:
			}
		})
		res, err := trainer.Run(runCtx, s, data, opts)
		close(watch)
		watcher.Wait()
		cancel()
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, trainer.ErrInterrupted) || ctx.Err() != nil {
			return nil, err
		}
		d.mu.Lock()
		step := d.state.Step
		d.mu.Unlock()
		d.log.Info("owner is back, job paused at step (checkpointed)", "job", short(id), "step", step)
		opts.Resume = true
	}
}

func (d *Daemon) setState(st wire.RunState) {
	d.mu.Lock()
	d.state.State = st
	d.mu.Unlock()
}

func short(id spec.JobID) string { return id.String()[:12] }

// latest hands values to send one at a time, in order, from a goroutine
// that spawn starts (the daemon's); a value not yet sent when a newer one
// arrives is dropped (only the newest checkpoint matters to the
// coordinator, and the training loop must never wait for the network).
type latest[T any] struct {
	send  func(T)
	spawn func(func()) bool

	mu   sync.Mutex
	next *T
	busy bool
}

func (l *latest[T]) put(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next = &v
	if l.busy {
		return
	}
	l.busy = l.spawn(func() {
		for {
			l.mu.Lock()
			v := l.next
			l.next = nil
			if v == nil {
				l.busy = false
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
			l.send(*v)
		}
	})
}

// shortPeer is the short form of a peer ID the logs use (as
// peer.ID.ShortString, without the brackets).
func shortPeer(p peer.ID) string {
	s := p.String()
	if len(s) <= 8 {
		return s
	}
	return s[:2] + "*" + s[len(s)-6:]
}

// trainsOn names backend b, where a job's runner trains, for the
// heartbeat: the hello's own words when they name b ("vulkan (<device>)",
// "cpu (<kernel>)"), else "cpu (<kernel>)" for a job that auto put on the
// CPU while the hello says vulkan (b's name for anything else).
func (d *Daemon) trainsOn(b model.Backend) string {
	switch {
	case strings.HasPrefix(d.cfg.Backend, string(b)):
		return d.cfg.Backend
	case b == model.BackendCPU:
		return "cpu (" + kernel.Best().Name() + ")"
	}
	return string(b)
}
