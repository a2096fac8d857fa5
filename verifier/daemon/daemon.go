// Package daemon is the verifier daemon (`beluga verifier`): it joins a
// coordinator, takes audit tasks, fetches the checkpoints a sampled
// segment starts from out of the holders' stores (protocol/net/exchange,
// every chunk verified against the committed digest), replays the segments
// with the spec's semantics on its own copy of the data (verifier/audit),
// submits a signed report, and answers the referee if the audit becomes a
// dispute (protocol/net/disputenet).
package daemon

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/verifier/audit"
)

// Config configures a verifier daemon.
type Config struct {
	Coordinator string
	DataDir     string
	Events      func(string)
	// SilentForTesting makes the daemon accept audit tasks and never report
	// (the fault test of a verifier that goes silent).
	SilentForTesting bool
	// Keys holds the zk verifying keys (prover.Keyring) for confidential
	// audits; nil: this verifier refuses them.
	Keys *prover.Keyring
	// ReplicaTTL: the replicas of a job with no new checkpoint for this
	// long are dropped (default 24 h).
	ReplicaTTL time.Duration
}

// Daemon is a running verifier.
type Daemon struct {
	n     *p2p.Node
	cfg   Config
	coord peer.ID

	mu    sync.Mutex
	tasks map[spec.JobID]*task
	// beacons are the audit beacons seen on the audits topic: a task whose
	// beacon differs from the published one is refused (at most
	// maxPublished are kept).
	beacons map[spec.JobID][]byte
	// replicas holds checkpoints the coordinator asked this verifier to
	// keep, served to any peer (protocol/net/exchange): the newest of each job
	// only. Fetches hold replMu for reading from their first chunk to their
	// manifest, pruning holds it for writing, so that GC never collects the
	// chunks of a fetch under way.
	replicas    *store.Memory
	replMu      sync.RWMutex
	replicaSeen map[spec.JobID]time.Time // last replica per job (under replMu)
}

type task struct {
	spec  *spec.Spec
	train *dataset.Dataset
}

// Start joins the coordinator and serves until the node closes.
func Start(ctx context.Context, n *p2p.Node, cfg Config) (*Daemon, error) {
	if cfg.Events == nil {
		cfg.Events = func(string) {}
	}
	if cfg.ReplicaTTL <= 0 {
		cfg.ReplicaTTL = 24 * time.Hour
	}
	d := &Daemon{n: n, cfg: cfg, tasks: map[spec.JobID]*task{}, beacons: map[spec.JobID][]byte{},
		replicas: store.NewMemory(), replicaSeen: map[spec.JobID]time.Time{}}
	coord, err := n.Connect(ctx, cfg.Coordinator)
	if err != nil {
		return nil, fmt.Errorf("join coordinator: %w", err)
	}
	d.coord = coord
	n.Handle(wire.AuditProtocol, d.onTask, wire.TypeAuditTask)
	n.Handle(wire.ReplicateProtocol, d.onReplicate, wire.TypeCheckpointAnnounce)
	exchange.Serve(n, d.replicas)
	disputenet.Serve(n, d.party)
	if _, err := n.Request(ctx, coord, wire.ControlProtocol, [32]byte{}, &wire.Hello{Role: wire.RoleVerifier, Backend: "cpu", Addrs: n.Addrs()}, wire.TypeAck); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if n.PubSub != nil {
		// Opened audits are public: anyone sees each job's trace root and
		// beacon, so the coordinator cannot show verifiers different ones.
		if _, err := n.Join(wire.AuditsTopic, wire.TypeAuditTask); err != nil {
			return nil, err
		}
		if err := n.Subscribe(ctx, wire.AuditsTopic, func(e *wire.Envelope, m wire.Message) {
			if e.Sender != coord {
				return
			}
			t := m.(*wire.AuditTask)
			d.mu.Lock()
			first, seen := d.beacons[spec.JobID(e.Job)]
			if !seen && len(d.beacons) < maxPublished {
				d.beacons[spec.JobID(e.Job)] = t.Beacon
			}
			d.mu.Unlock()
			if seen && !bytes.Equal(first, t.Beacon) {
				// The first published beacon stands; a second one is the
				// coordinator trying to redraw the sample.
				cfg.Events(fmt.Sprintf("verifier %s: the coordinator published a second beacon for job %s (ignored)", n.ID().ShortString(), spec.JobID(e.Job).String()[:12]))
				return
			}
			cfg.Events(fmt.Sprintf("verifier %s saw the audit of job %s open on %s (trace root %x…, beacon %x…)",
				n.ID().ShortString(), spec.JobID(e.Job).String()[:12], wire.AuditsTopic, t.TraceRoot[:6], t.Beacon[:min(6, len(t.Beacon))]))
		}, wire.TypeAuditTask); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// maxPublished bounds the published beacons a verifier remembers.
const maxPublished = 1 << 14

// party is the verifier's side of a dispute: an honest replay.
func (d *Daemon) party(job spec.JobID) (dispute.Party, error) {
	d.mu.Lock()
	t := d.tasks[job]
	d.mu.Unlock()
	if t == nil {
		return nil, disputenet.ErrNoParty
	}
	return dispute.NewReplayer(t.spec, t.train, t.spec.Init())
}

func (d *Daemon) onTask(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
	if e.Sender != d.coord {
		return r.Reply(&wire.Ack{Error: "audit tasks come from the coordinator"})
	}
	t := m.(*wire.AuditTask)
	d.n.Learn(t.ProviderAddrs)
	s, err := spec.Decode(t.SpecJSON)
	if err != nil {
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	if id, err := s.ID(); err != nil || id != spec.JobID(e.Job) {
		return r.Reply(&wire.Ack{Error: "spec does not match the job ID"})
	}
	if s.Audit.Confidential && d.cfg.Keys == nil {
		return r.Reply(&wire.Ack{Error: "confidential audits need zk verifying keys, and this verifier has none"})
	}
	d.mu.Lock()
	published, seen := d.beacons[spec.JobID(e.Job)]
	delete(d.beacons, spec.JobID(e.Job))
	d.mu.Unlock()
	if seen && !bytes.Equal(published, t.Beacon) {
		d.cfg.Events(fmt.Sprintf("verifier %s refused the audit of job %s: its beacon is not the one published on %s",
			d.n.ID().ShortString(), spec.JobID(e.Job).String()[:12], wire.AuditsTopic))
		return r.Reply(&wire.Ack{Error: "the task's beacon is not the one published for this job"})
	}
	if err := r.Reply(&wire.Ack{OK: true}); err != nil {
		return err
	}
	if d.cfg.SilentForTesting {
		d.cfg.Events(fmt.Sprintf("verifier %s took the audit of job %s and will never answer", d.n.ID().ShortString(), s.Name))
		return nil
	}
	go func() {
		check := d.audit
		if s.Audit.Confidential {
			check = d.zkAudit
		}
		if err := check(context.WithoutCancel(ctx), spec.JobID(e.Job), s, t); err != nil {
			d.cfg.Events(fmt.Sprintf("verifier %s: audit of job %s: %v", d.n.ID().ShortString(), spec.JobID(e.Job).String()[:12], err))
		}
	}()
	return nil
}

func (d *Daemon) audit(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.AuditTask) error {
	train, _, err := catalog.LoadData(s, d.cfg.DataDir)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.tasks[id] = &task{spec: s, train: train}
	d.mu.Unlock()
	tr := &trace.Trace{Job: id}
	for _, e := range t.Entries {
		tr.Entries = append(tr.Entries, trace.Entry{Step: e.Step, Digest: merkle.Digest(e.Digest)})
	}
	if tr.Root() != merkle.Digest(t.TraceRoot) {
		return fmt.Errorf("the task's trace does not have its root")
	}
	sol := &netSolver{n: d.n, spec: s, job: id, trace: tr, train: train, holders: append([]peer.ID{t.Solver}, t.Providers...)}
	rep, err := audit.Run(ctx, audit.Config{Spec: s, Train: train, Beacon: t.Beacon}, sol)
	if err != nil {
		return err
	}
	d.cfg.Events(fmt.Sprintf("verifier %s: job %s: %d checkpoint(s) fetched from peers, %d fetch(es) failed", d.n.ID().ShortString(), id.String()[:12], sol.fetched, sol.failed))
	out := &wire.AuditReport{Solver: t.Solver, Pass: rep.Verdict == audit.Pass, StepsChecked: rep.StepsChecked, FirstBadStep: -1,
		ConfidencePPM: uint32(rep.Confidence * 1e6), Reason: rep.Reason}
	if rep.FirstBadStep != nil {
		out.FirstBadStep = *rep.FirstBadStep
	}
	_, err = d.n.Request(ctx, d.coord, wire.ControlProtocol, id, out, wire.TypeAck)
	return err
}

// zkAudit audits a confidential job without its weights or its data: the
// tiles drawn from the committed roots and the beacon (SPEC.md §17.3) are
// proven by the solver and checked here against the committed zk trace.
func (d *Daemon) zkAudit(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.AuditTask) error {
	tr := &trace.Trace{Job: id}
	for _, e := range t.Entries {
		tr.Entries = append(tr.Entries, trace.Entry{Step: e.Step, Digest: merkle.Digest(e.Digest)})
	}
	if tr.Root() != merkle.Digest(t.TraceRoot) {
		return fmt.Errorf("the task's trace does not have its root")
	}
	zs := make([]trace.ZKEntry, len(t.ZKEntries))
	for i, e := range t.ZKEntries {
		zs[i] = trace.ZKEntry{Step: e.Step, Root: e.Digest}
	}
	z, err := zkchallenge.ZKTraceOf(s, zs)
	if err != nil {
		return err
	}
	count, err := zkchallenge.Count(s)
	if err != nil {
		return err
	}
	chs, err := zkchallenge.Challenges(s, t.TraceRoot, z.Root(), t.Beacon, count)
	if err != nil {
		return err
	}
	out := &wire.AuditReport{Solver: t.Solver, Pass: true, FirstBadStep: -1}
	var verifyTime time.Duration
	for _, ch := range chs {
		m, err := d.requestProof(ctx, id, t.Solver, ch)
		var why string
		switch {
		case err != nil:
			why = fmt.Sprintf("no proof of %v: %v", ch, err)
		case m.(*wire.Proof).Error != "":
			why = fmt.Sprintf("the solver could not prove %v: %s", ch, m.(*wire.Proof).Error)
		default:
			t0 := time.Now()
			err := prover.VerifyTile(d.cfg.Keys, s, z, ch, m.(*wire.Proof).Proof)
			verifyTime += time.Since(t0)
			if err != nil {
				why = fmt.Sprintf("invalid proof of %v: %v", ch, err)
			}
		}
		if why != "" {
			out.Pass, out.FirstBadStep, out.Reason = false, ch.Step, why
			break
		}
		out.StepsChecked++
	}
	conf := plan.Confidence(s.Steps, 1, out.StepsChecked, s.Audit.CheatFractionPPM, plan.Clustered)
	out.ConfidencePPM = uint32(conf * 1e6)
	d.cfg.Events(fmt.Sprintf("verifier %s: job %s: %d of %d challenged tile proofs valid (verified in %v total), no weights or data seen",
		d.n.ID().ShortString(), id.String()[:12], out.StepsChecked, len(chs), verifyTime.Round(time.Microsecond)))
	_, err = d.n.Request(ctx, d.coord, wire.ControlProtocol, id, out, wire.TypeAck)
	return err
}

// Proof requests: the solver proves the challenged tiles in order from the
// moment the beacon reaches it, so a request may wait for a proof or two;
// one that is not ready is asked again, a few times, before it counts as
// missing (a slow solver must not look like a cheater, and a verifier must
// not accuse one that would have answered).
const (
	proofRequestTimeout = 3 * time.Minute
	proofAttempts       = 3
)

func (d *Daemon) requestProof(ctx context.Context, id spec.JobID, solver peer.ID, ch zkchallenge.Challenge) (wire.Message, error) {
	req := &wire.ProofRequest{Step: ch.Step, Layer: ch.Layer, Row: ch.Row, Col: ch.Col}
	var m wire.Message
	var err error
	for range proofAttempts {
		rctx, cancel := context.WithTimeout(ctx, proofRequestTimeout)
		m, err = d.n.Request(rctx, solver, wire.ProofProtocol, id, req, wire.TypeProof)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if p, ok := m.(*wire.Proof); err == nil && ok && p.Error != wire.ProofNotReady {
			return m, nil
		}
	}
	return m, err
}

// netSolver is audit.Solver over the network: the trace from the task,
// states from the newest committed checkpoint at or before the step,
// fetched from the holders and replayed forward locally.
type netSolver struct {
	n       *p2p.Node
	spec    *spec.Spec
	job     spec.JobID
	trace   *trace.Trace
	train   *dataset.Dataset
	holders []peer.ID
	// missing are checkpoints no holder could serve (a resumed job's early
	// checkpoints lived on the solver that vanished): not asked for again.
	missing map[int64]bool
	// cursor is the last state opened (replayed here from a checked
	// state): audits open steps in ascending order, so a later step whose
	// checkpoints are missing replays from here, not from the start.
	cursor *spec.State
	// fetched and failed count checkpoint fetches (a failed one falls back
	// to an earlier checkpoint, the cursor, at worst the initial state).
	fetched, failed int
}

var _ audit.Solver = (*netSolver)(nil)

func (s *netSolver) Trace(context.Context) (*trace.Trace, error) { return s.trace, nil }

func (s *netSolver) Open(ctx context.Context, step int64) (*spec.State, error) {
	if step < 0 || step > s.spec.Steps {
		return nil, fmt.Errorf("no step %d", step)
	}
	if s.missing == nil {
		s.missing = map[int64]bool{}
	}
	// The newest start at or before step: a checkpoint whose digest the
	// trace commits, the cursor, or the initial state.
	st := s.spec.Init()
	if s.cursor != nil && s.cursor.Step <= step {
		st = s.cursor.Clone()
	}
	for cp := step - step%s.spec.CheckpointInterval; cp > st.Step; cp -= s.spec.CheckpointInterval {
		i := s.trace.Index(cp)
		if i < 0 || s.missing[cp] {
			continue
		}
		got, err := exchange.FetchState(ctx, s.n, s.holders, s.spec, s.job, cp, s.trace.Entries[i].Digest, exchange.Options{})
		if err == nil {
			st = got
			s.fetched++
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.missing[cp] = true
		s.failed++
	}
	if st.Step != step {
		eng, err := engine.New(s.spec, st)
		if err != nil {
			return nil, err
		}
		if err := eng.Replay(ctx, s.train, step); err != nil {
			return nil, err
		}
		st = eng.State()
	}
	s.cursor = st.Clone()
	return st, nil
}

// onReplicate fetches a checkpoint from its holders — the manifest checked
// against the committed digest, every chunk against its hash — keeps it
// and tells the coordinator it holds it too, so that the job survives its
// solver.
func (d *Daemon) onReplicate(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
	if e.Sender != d.coord {
		return r.Reply(&wire.Ack{Error: "replication requests come from the coordinator"})
	}
	a := m.(*wire.CheckpointAnnounce)
	d.n.Learn(a.ProviderAddrs)
	if err := r.Reply(&wire.Ack{OK: true}); err != nil {
		return err
	}
	go func() {
		ctx := context.WithoutCancel(ctx)
		job := spec.JobID(e.Job)
		if err := d.replicate(ctx, job, a); err != nil {
			d.cfg.Events(fmt.Sprintf("verifier %s: replica of step %d: %v", d.n.ID().ShortString(), a.Step, err))
			return
		}
		d.cfg.Events(fmt.Sprintf("verifier %s holds a replica of the checkpoint at step %d of job %s", d.n.ID().ShortString(), a.Step, job.String()[:12]))
		d.n.Request(ctx, d.coord, wire.ControlProtocol, job, &wire.CheckpointAnnounce{Step: a.Step, Digest: a.Digest}, wire.TypeAck)
		if err := d.prune(ctx, job); err != nil {
			d.cfg.Events(fmt.Sprintf("verifier %s: pruning replicas: %v", d.n.ID().ShortString(), err))
		}
	}()
	return nil
}

// replicate fetches the announced checkpoint into the replica store.
func (d *Daemon) replicate(ctx context.Context, job spec.JobID, a *wire.CheckpointAnnounce) error {
	d.replMu.RLock()
	defer d.replMu.RUnlock()
	man, err := exchange.FetchManifest(ctx, d.n, a.Providers, job, a.Step, a.Digest)
	if err != nil {
		return err
	}
	err = exchange.FetchChunks(ctx, d.n, a.Providers, job, man.ChunkIDs(), func(_ store.ChunkID, data []byte) error {
		_, err := d.replicas.Put(ctx, data)
		return err
	}, exchange.Options{})
	if err != nil {
		return err
	}
	return d.replicas.PutManifest(ctx, *man)
}

// prune drops every replica of job but the newest, and every replica of
// the jobs that have had no new checkpoint for ReplicaTTL (finished or
// abandoned), then collects the chunks no replica references any more: a
// verifier keeps one state per live job however long it runs.
func (d *Daemon) prune(ctx context.Context, job spec.JobID) error {
	d.replMu.Lock()
	defer d.replMu.Unlock()
	now := time.Now()
	d.replicaSeen[job] = now
	drop := map[spec.JobID]bool{}
	for j, seen := range d.replicaSeen {
		if now.Sub(seen) > d.cfg.ReplicaTTL {
			drop[j] = true
			delete(d.replicaSeen, j)
		}
	}
	steps, err := d.replicas.ListCheckpoints(ctx, job)
	if err != nil {
		return err
	}
	stale := len(steps) > 1 || len(drop) > 0
	if len(steps) > 1 {
		for _, st := range steps[:len(steps)-1] {
			if err := d.replicas.DeleteCheckpoint(ctx, job, st); err != nil {
				return err
			}
		}
	}
	for j := range drop {
		old, err := d.replicas.ListCheckpoints(ctx, j)
		if err != nil {
			return err
		}
		for _, st := range old {
			if err := d.replicas.DeleteCheckpoint(ctx, j, st); err != nil {
				return err
			}
		}
	}
	if !stale {
		return nil
	}
	_, _, err = d.replicas.GC(ctx)
	return err
}
