// Package daemon is the solver daemon (`beluga solver`): it joins a
// coordinator, advertises its hardware and its ask, runs the jobs it is
// assigned with solver/trainer (committing a state digest every
// digest_interval steps and storing checkpoints in a content-addressed
// store), resumes a job from a checkpoint fetched from other peers,
// announces its checkpoints, serves their chunks to anyone (protocol/
// exchange) and answers the referee in a dispute (protocol/net/disputenet).
//
// It runs a job only while its Gate allows (solver/idle: the GPU owner is
// away) and pauses at a step boundary otherwise, keeping a resumable
// checkpoint.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/solver/idle"
	"github.com/beluga-compute/beluga/solver/trainer"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
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
	// AskMicroUSDPerUnit is the ask per compute unit; 0 follows the market.
	AskMicroUSDPerUnit int64
	// Backend describes the hardware for the Hello (solver/gpu).
	Backend, GPUName string
	GPUMemoryBytes   uint64
	// Heartbeat is the heartbeat period (default 500 ms).
	Heartbeat time.Duration
	// Events receives a line per event (optional).
	Events func(string)
	// Gate, if set, says when the machine is free (solver/idle): a job
	// pauses at a step boundary (checkpoint) when it closes and resumes
	// when it reopens. Nil runs whenever assigned. The daemon runs the
	// gate's sampling loop.
	Gate *idle.Gate
	// Keys holds the proving keys of the tile circuits (prover.Keyring):
	// with them the daemon takes confidential jobs, commits their zk trace
	// and serves tile proofs; without, it refuses confidential jobs.
	Keys *prover.Keyring
	// CheatForTesting makes the daemon a cheating solver: it applies the
	// fault to its state after each step (training) and to its answers in
	// a dispute. Only tests and the devnet set it.
	CheatForTesting *Cheat
}

// Cheat is a deterministic fault: from step From on, the first value of
// the first layer's weight momentum is off by one. In a confidential job
// the run is honest and the fault is in its zk trace instead: the root
// committed for step From is not the step's.
type Cheat struct{ From int64 }

// apply changes the state after step st.Step−1.
func (c *Cheat) apply(st *spec.State) {
	if st.Step > c.From {
		st.Layer(0, spec.TensorWeightMomentum)[0]++
	}
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
	coord peer.ID

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
	train *dataset.Dataset
	store *store.Badger
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

// Start joins the coordinator and serves until ctx ends.
func Start(ctx context.Context, n *p2p.Node, cfg Config) (*Daemon, error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 500 * time.Millisecond
	}
	if cfg.Events == nil {
		cfg.Events = func(string) {}
	}
	d := &Daemon{n: n, cfg: cfg, runs: map[spec.JobID]*run{}, state: wire.Heartbeat{State: wire.StateIdle}}
	coord, err := n.Connect(ctx, cfg.Coordinator)
	if err != nil {
		return nil, fmt.Errorf("join coordinator: %w", err)
	}
	d.coord = coord
	exchange.Serve(n, d)
	disputenet.Serve(n, d.party)
	n.Handle(wire.AssignProtocol, d.assign, wire.TypeAssign, wire.TypeBeacon)
	n.Handle(wire.ProofProtocol, d.onProof, wire.TypeProofRequest)
	hello := &wire.Hello{Role: wire.RoleSolver, Backend: cfg.Backend, GPUName: cfg.GPUName, GPUMemoryBytes: cfg.GPUMemoryBytes,
		AskMicroUSDPerUnit: cfg.AskMicroUSDPerUnit, Addrs: n.Addrs()}
	if _, err := n.Request(ctx, coord, wire.ControlProtocol, [32]byte{}, hello, wire.TypeAck); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if n.PubSub != nil {
		if _, err := n.Join(wire.JobsTopic, wire.TypeJobOffer); err != nil {
			return nil, err
		}
		if err := n.Subscribe(ctx, wire.JobsTopic, func(e *wire.Envelope, m wire.Message) {
			cfg.Events(fmt.Sprintf("solver %s saw the offer of job %s on %s", n.ID().ShortString(), spec.JobID(e.Job).String()[:12], wire.JobsTopic))
		}, wire.TypeJobOffer); err != nil {
			return nil, err
		}
	}
	if cfg.Gate != nil {
		go cfg.Gate.Run(ctx)
	}
	go d.heartbeats(ctx)
	return d, nil
}

func (d *Daemon) heartbeats(ctx context.Context) {
	t := time.NewTicker(d.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		hb, job := d.state, d.job
		d.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, d.cfg.Heartbeat*4)
		d.n.Request(rctx, d.coord, wire.ControlProtocol, job, &hb, wire.TypeAck)
		cancel()
	}
}

// Get serves a chunk from any of the daemon's runs (exchange.Source).
func (d *Daemon) Get(ctx context.Context, id store.ChunkID) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.runs {
		if r.store == nil {
			continue
		}
		if data, err := r.store.Get(ctx, id); err == nil {
			return data, nil
		}
	}
	return nil, store.ErrNotFound
}

// Manifest serves a checkpoint manifest (exchange.Source).
func (d *Daemon) Manifest(ctx context.Context, job spec.JobID, step int64) (store.Manifest, error) {
	d.mu.Lock()
	r := d.runs[job]
	d.mu.Unlock()
	if r == nil || r.store == nil {
		return store.Manifest{}, store.ErrNotFound
	}
	return r.store.Manifest(ctx, job, step)
}

// party answers the referee for a job this daemon ran: it replays its own
// run (with its own fault, if it cheats).
func (d *Daemon) party(job spec.JobID) (dispute.Party, error) {
	d.mu.Lock()
	r := d.runs[job]
	d.mu.Unlock()
	if r == nil {
		return nil, disputenet.ErrNoParty
	}
	var opts []dispute.ReplayerOption
	if c := d.cfg.CheatForTesting; c != nil {
		opts = append(opts, dispute.WithStep(func(s *spec.Spec, st *spec.State, t int64, x [][]uint8, y []uint8) (*ref.OpTrace, error) {
			return c.step(s, st, t, x, y)
		}))
	}
	return dispute.NewReplayer(r.spec, r.train, r.spec.Init(), opts...)
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
	busy := d.job != ([32]byte{}) && d.state.State == wire.StateRunning
	d.mu.Unlock()
	if busy {
		return r.Reply(&wire.Ack{Error: "busy"})
	}
	if s.Audit.Confidential && d.cfg.Keys == nil {
		return r.Reply(&wire.Ack{Error: "confidential jobs need zk proving keys, and this solver has none"})
	}
	if err := r.Reply(&wire.Ack{OK: true}); err != nil {
		return err
	}
	go func() {
		if err := d.run(context.WithoutCancel(ctx), id, s, a); err != nil {
			d.cfg.Events(fmt.Sprintf("solver %s: job %s failed: %v", d.n.ID().ShortString(), id.String()[:12], err))
		}
	}()
	return nil
}

func (d *Daemon) run(ctx context.Context, id spec.JobID, s *spec.Spec, a *wire.Assign) error {
	train, test, err := catalog.LoadData(s, d.cfg.DataDir)
	if err != nil {
		return err
	}
	dir := filepath.Join(d.cfg.Dir, id.String()[:16])
	d.mu.Lock()
	d.runs[id] = &run{spec: s, dir: dir, train: train}
	d.job, d.state = id, wire.Heartbeat{State: wire.StateRunning}
	d.mu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The run's store is opened here, not by the trainer, so its chunks
	// are served while the job runs.
	cs, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.runs[id].store = cs
	d.mu.Unlock()
	resume := false
	if a.ResumeStep > 0 {
		st, err := exchange.FetchState(ctx, d.n, a.Providers, s, id, a.ResumeStep, a.ResumeDigest, exchange.Options{})
		if err != nil {
			return fmt.Errorf("fetch the checkpoint at step %d: %w", a.ResumeStep, err)
		}
		entries := make([]trace.Entry, len(a.Entries))
		for i, e := range a.Entries {
			entries[i] = trace.Entry{Step: e.Step, Digest: e.Digest}
		}
		if err := trainer.Seed(dir, s, st, entries, cs); err != nil {
			return err
		}
		resume = true
		d.cfg.Events(fmt.Sprintf("solver %s resumes job %s from the checkpoint at step %d, fetched from %d holder(s)", d.n.ID().ShortString(), id.String()[:12], a.ResumeStep, len(a.Providers)))
	}
	announce := &latest[*wire.CheckpointAnnounce]{send: func(ann *wire.CheckpointAnnounce) {
		d.n.Request(context.WithoutCancel(ctx), d.coord, wire.ControlProtocol, id, ann, wire.TypeAck)
	}}
	opts := trainer.Options{OutDir: dir, Commit: true, Resume: resume, Store: cs, Progress: func(p trainer.Progress) {
		d.mu.Lock()
		d.state.Step = p.Step
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
		ann := &wire.CheckpointAnnounce{Step: st.Step}
		for _, e := range entries {
			ann.Entries = append(ann.Entries, wire.TraceEntry{Step: e.Step, Digest: e.Digest})
		}
		if n := len(entries); n > 0 && entries[n-1].Step == st.Step {
			ann.Digest = entries[n-1].Digest
			announce.put(ann)
		}
	}}
	if c := d.cfg.CheatForTesting; c != nil && !s.Audit.Confidential {
		opts.FaultInjectForTesting = c.apply
	}
	res, err := d.runGated(ctx, id, s, train, test, opts)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.state = wire.Heartbeat{State: wire.StateDone, Step: res.Steps, LatestDigest: res.FinalDigest}
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
		if _, err := d.n.Request(ctx, d.coord, wire.ControlProtocol, id, &wire.CheckpointAnnounce{Step: step, Digest: man.Digest}, wire.TypeAck); err != nil {
			return err
		}
	}
	tc := &wire.TraceCommit{Steps: s.Steps, TraceRoot: res.Trace.Root(), FinalDigest: res.FinalDigest}
	for _, e := range res.Trace.Entries {
		tc.Entries = append(tc.Entries, wire.TraceEntry{Step: e.Step, Digest: e.Digest})
	}
	if s.Audit.Confidential {
		// The zk trace is committed with the digest trace, before the
		// beacon that picks the challenged tiles exists.
		t0 := time.Now()
		z, err := prover.CommitRunStore(ctx, s, train, dir, cs, nil)
		if err != nil {
			return fmt.Errorf("zk commitments: %w", err)
		}
		if c := d.cfg.CheatForTesting; c != nil && c.From <= s.Steps {
			z.Entries[c.From].Root[31] ^= 1 // another field element, still canonical
		}
		for _, e := range z.Entries {
			tc.ZKEntries = append(tc.ZKEntries, wire.TraceEntry{Step: e.Step, Digest: e.Root})
		}
		d.mu.Lock()
		d.runs[id].zk, d.runs[id].traceRoot = z, tc.TraceRoot
		d.mu.Unlock()
		d.cfg.Events(fmt.Sprintf("solver %s: job %s: zk trace of %d steps committed in %v", d.n.ID().ShortString(), id.String()[:12], len(z.Entries), time.Since(t0).Round(time.Millisecond)))
	}
	if _, err := d.n.Request(ctx, d.coord, wire.ControlProtocol, id, tc, wire.TypeAck); err != nil {
		return err
	}
	d.mu.Lock()
	d.state = wire.Heartbeat{State: wire.StateIdle}
	d.job = [32]byte{}
	d.mu.Unlock()
	return nil
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
	if err := r.Reply(&wire.Ack{OK: true}); err != nil {
		return err
	}
	if fresh {
		go d.proveAll(context.WithoutCancel(ctx), id, run, chs)
	}
	return nil
}

// proveAll proves the challenged tiles of run in order, one proof at a
// time for the whole daemon (each takes the machine's cores for seconds).
func (d *Daemon) proveAll(ctx context.Context, id spec.JobID, run *run, chs []zkchallenge.Challenge) {
	for _, ch := range chs {
		d.mu.Lock()
		slot := run.challenges[ch]
		d.mu.Unlock()
		d.proving.Lock()
		t0 := time.Now()
		slot.proof, slot.err = prover.ProveTile(ctx, d.cfg.Keys, run.spec, run.train, run.dir, run.store, ch)
		d.proving.Unlock()
		close(slot.done)
		if slot.err != nil {
			d.cfg.Events(fmt.Sprintf("solver %s: job %s: proving %v: %v", d.n.ID().ShortString(), id.String()[:12], ch, slot.err))
			continue
		}
		d.cfg.Events(fmt.Sprintf("solver %s: proved %v of job %s in %v (%d bytes)",
			d.n.ID().ShortString(), ch, id.String()[:12], time.Since(t0).Round(time.Millisecond), len(slot.proof)))
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
func (d *Daemon) runGated(ctx context.Context, id spec.JobID, s *spec.Spec, train, test *dataset.Dataset, opts trainer.Options) (*trainer.Result, error) {
	g := d.cfg.Gate
	if g == nil {
		return trainer.Run(ctx, s, train, test, opts)
	}
	for {
		if !g.Open() {
			d.setState(wire.StatePaused)
			if err := g.Wait(ctx); err != nil {
				return nil, err
			}
			d.setState(wire.StateRunning)
			d.cfg.Events(fmt.Sprintf("solver %s: machine idle again, resuming job %s", d.n.ID().ShortString(), id.String()[:12]))
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			select {
			case <-g.Busy():
				cancel()
			case <-done:
			}
		}()
		res, err := trainer.Run(runCtx, s, train, test, opts)
		close(done)
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
		d.cfg.Events(fmt.Sprintf("solver %s: owner is back, job %s paused at step %d (checkpointed)", d.n.ID().ShortString(), id.String()[:12], step))
		opts.Resume = true
	}
}

func (d *Daemon) setState(st wire.RunState) {
	d.mu.Lock()
	d.state.State = st
	d.mu.Unlock()
}

// latest hands values to send one at a time, in order, from its own
// goroutine; a value not yet sent when a newer one arrives is dropped (only
// the newest checkpoint matters to the coordinator, and the training loop
// must never wait for the network).
type latest[T any] struct {
	send func(T)

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
	l.busy = true
	go func() {
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
	}()
}
