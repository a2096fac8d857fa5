// Package daemon is the verifier daemon (`beluga verifier`): it joins a
// coordinator, takes audit tasks, fetches the checkpoints a sampled
// segment starts from out of the holders' stores (protocol/net/exchange,
// presenting the grant the task carries; every chunk verified against the
// committed digest), replays the segments with the spec's semantics on its
// own copy of the data (verifier/audit: an MLP's dataset or a GPT's text
// corpus, checked against the spec's commitment), submits a signed report,
// and answers the referee if the audit becomes a dispute
// (protocol/net/disputenet). It keeps replicas of checkpoints the
// coordinator asks it to hold and serves them to the peers the
// coordinator grants them to.
//
// # Lifecycle and memory
//
// Start joins (retrying with backoff while the coordinator is
// unreachable) and starts the daemon's goroutines, all owned by the
// daemon: they end when the context given to Start ends or Close is
// called, and Close waits for them. An audit's task (its spec and training
// set, kept to answer the referee) is dropped TaskTTL after its report,
// and at most MaxTasks reported tasks are kept; replicas of a job go when
// a newer one lands or the job has been silent for ReplicaTTL; published
// beacons are forgotten after BeaconTTL. A verifier that runs for months
// holds a bounded number of datasets.
package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/sync/errgroup"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/core/report"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/datanet"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/verifier/audit"
)

// Config configures a verifier daemon.
type Config struct {
	// Coordinator is the coordinator's full multiaddr (with /p2p/ID).
	Coordinator string
	// DataDir is where Fashion-MNIST lives (empty: the Debian path).
	DataDir string
	// FortunesDir is where a GPT job's "fortunes" corpus lives (empty:
	// the Debian path, dataset.FortunesDir).
	FortunesDir string
	// TextFile holds the corpus of GPT jobs whose source is "text": an
	// audit of such a job reads it and checks it against the spec's root
	// and size. Without it, or when it holds another corpus, the job's
	// corpus is fetched from the coordinator (a client uploaded it),
	// checked and kept in CorpusDir.
	TextFile string
	// CorpusDir keeps the corpora fetched from the coordinator (empty:
	// beluga-corpora in the OS's temporary directory). Files are named by
	// their root and checked whenever they are read.
	CorpusDir string
	// Logger receives the daemon's events (default: discarded).
	Logger *slog.Logger
	// Model configures the replays: the backend (a Vulkan device), the
	// kernel, the threads. The digests never depend on it, so a verifier
	// on any backend audits a solver on any other.
	Model []model.Option
	// SilentForTesting makes the daemon accept audit tasks and never report
	// (the fault test of a verifier that goes silent).
	SilentForTesting bool
	// Keys holds the zk verifying keys (prover.Keyring) for confidential
	// audits; nil: this verifier refuses them.
	Keys *prover.Keyring
	// ReplicaTTL: the replicas of a job with no new checkpoint for this
	// long are dropped (default 24 h).
	ReplicaTTL time.Duration
	// TaskTTL is how long an audit's task (spec and training set) is kept
	// after its report, to answer the referee (default 1 h).
	TaskTTL time.Duration
	// MaxTasks bounds the reported tasks kept (the oldest go first; audits
	// under way are never dropped). Default 4.
	MaxTasks int
	// BeaconTTL is how long a beacon published on the audits topic is
	// remembered for a task that may come (default 24 h).
	BeaconTTL time.Duration
	// JoinBackoff is the longest wait between attempts to reach the
	// coordinator, at start or after losing it (default 30 s; the first
	// retry is after 250 ms).
	JoinBackoff time.Duration
	// Heartbeat is how often the daemon tells the coordinator it is there
	// (default 2 s): a coordinator that restarted answers that it does not
	// know this verifier, which then registers again.
	Heartbeat time.Duration
	// Now is the clock the TTLs run on (default time.Now).
	Now func() time.Time
}

// Daemon is a running verifier.
type Daemon struct {
	n     *p2p.Node
	cfg   Config
	log   *slog.Logger
	coord peer.ID
	now   func() time.Time
	// member keeps the daemon registered (protocol/net/join).
	member *join.Member

	// ctx is the daemon's root context: every goroutine it starts ends
	// when ctx does (Close cancels it). group owns those goroutines;
	// spawn adds to it unless the daemon is stopping.
	ctx      context.Context
	cancel   context.CancelFunc
	group    errgroup.Group
	spawnMu  sync.Mutex
	stopping bool

	mu    sync.Mutex
	tasks map[spec.JobID]*task
	// beacons are the audit beacons seen on the audits topic: a task whose
	// beacon differs from the published one is refused (at most
	// maxPublished are kept, each for BeaconTTL).
	beacons map[spec.JobID]published
	// replicas holds checkpoints the coordinator asked this verifier to
	// keep, served to the peers the coordinator grants them to
	// (protocol/net/exchange): the newest of each job only. Fetches hold
	// replMu for reading from their first chunk to their manifest, pruning
	// holds it for writing, so that GC never collects the chunks of a
	// fetch under way.
	replicas    *store.Memory
	replMu      sync.RWMutex
	replicaSeen map[spec.JobID]time.Time // last replica per job (under replMu)
}

type task struct {
	spec *spec.Spec
	data *model.Data
	// reported is when the audit's report went out; zero while it runs.
	reported time.Time
}

// published is a beacon seen on the audits topic.
type published struct {
	beacon []byte
	at     time.Time
}

// protocols are the streams the daemon serves.
var protocols = []string{wire.AuditProtocol, wire.ReplicateProtocol, wire.ExchangeProtocol, wire.DisputeProtocol}

// Start joins the coordinator and serves until ctx ends or Close is
// called. While the coordinator is unreachable it retries, with backoff,
// until ctx ends.
func Start(ctx context.Context, n *p2p.Node, cfg Config) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplicaTTL <= 0 {
		cfg.ReplicaTTL = 24 * time.Hour
	}
	if cfg.TaskTTL <= 0 {
		cfg.TaskTTL = time.Hour
	}
	if cfg.MaxTasks <= 0 {
		cfg.MaxTasks = 4
	}
	if cfg.BeaconTTL <= 0 {
		cfg.BeaconTTL = 24 * time.Hour
	}
	if cfg.JoinBackoff <= 0 {
		cfg.JoinBackoff = 30 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	coord, err := join.Coordinator(cfg.Coordinator)
	if err != nil {
		return nil, err
	}
	d := newDaemon(n, cfg, coord)
	d.ctx, d.cancel = context.WithCancel(ctx)
	n.Handle(wire.AuditProtocol, d.onTask, wire.TypeAuditTask)
	n.Handle(wire.ReplicateProtocol, d.onReplicate, wire.TypeCheckpointAnnounce)
	exchange.Serve(n, exchange.FromStore(d.replicas), exchange.ServeConfig{Coordinator: coord, Logger: d.log})
	disputenet.Serve(n, d.party)
	hello := func() *wire.Hello { return &wire.Hello{Role: wire.RoleVerifier, Backend: "cpu", Addrs: n.Addrs()} }
	d.member, err = join.New(n, join.Config{Addr: cfg.Coordinator, Hello: hello, MaxBackoff: cfg.JoinBackoff, Logger: d.log})
	if err != nil {
		return nil, err
	}
	if err := d.member.Join(d.ctx); err != nil {
		d.Close()
		return nil, err
	}
	if n.PubSub != nil {
		// Opened audits are public: anyone sees each job's trace root and
		// beacon, so the coordinator cannot show verifiers different ones.
		if _, err := n.Join(wire.AuditsTopic, wire.TypeAuditTask); err != nil {
			d.Close()
			return nil, err
		}
		if err := n.Subscribe(d.ctx, wire.AuditsTopic, d.onPublished, wire.TypeAuditTask); err != nil {
			d.Close()
			return nil, err
		}
	}
	d.spawn(d.janitor)
	d.spawn(func() {
		if err := d.member.Keep(d.ctx); err != nil {
			d.log.Error("the coordinator refused this verifier; it gets no more audits", "err", err)
		}
	})
	d.spawn(d.heartbeats)
	return d, nil
}

// Member is the daemon's registration with its coordinator.
func (d *Daemon) Member() *join.Member { return d.member }

// Party is the daemon's ledger party at the coordinator (join.PartyID).
func (d *Daemon) Party() string { return join.PartyID(wire.RoleVerifier, d.n.ID()) }

// heartbeats tells the coordinator every Heartbeat that this verifier is
// there; a coordinator that no longer knows it (it restarted), or
// heartbeats failing maxHeartbeatFailures times in a row, make the daemon
// say hello again.
func (d *Daemon) heartbeats() {
	t := time.NewTicker(d.cfg.Heartbeat)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(d.ctx, d.cfg.Heartbeat*4)
		_, err := d.n.Request(rctx, d.coord, wire.ControlProtocol, [32]byte{}, &wire.Heartbeat{State: wire.StateIdle}, wire.TypeAck)
		cancel()
		switch {
		case err == nil, errors.Is(err, p2p.ErrRemote) && !join.IsUnregistered(err):
			failures = 0
		case join.IsUnregistered(err):
			failures = 0
			d.member.Lost()
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

func newDaemon(n *p2p.Node, cfg Config, coord peer.ID) *Daemon {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{n: n, cfg: cfg, coord: coord, now: cfg.Now, log: cfg.Logger, tasks: map[spec.JobID]*task{}, beacons: map[spec.JobID]published{},
		replicas: store.NewMemory(), replicaSeen: map[spec.JobID]time.Time{}}
	if n != nil {
		d.log = cfg.Logger.With("verifier", shortPeer(n.ID()))
	}
	return d
}

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

// Close stops the daemon: it stops serving, cancels the root context
// (audits and replications under way end) and waits for every goroutine
// of the daemon.
func (d *Daemon) Close() error {
	for _, pid := range protocols {
		d.n.Host.RemoveStreamHandler(protocol.ID(pid))
	}
	d.cancel()
	return d.Wait()
}

// Wait blocks until the daemon has stopped (its context ended or Close
// was called) and everything it started has ended.
func (d *Daemon) Wait() error {
	<-d.ctx.Done()
	d.spawnMu.Lock()
	d.stopping = true
	d.spawnMu.Unlock()
	return d.group.Wait()
}

// janitor drops expired tasks, beacons and replicas until the daemon
// stops.
func (d *Daemon) janitor() {
	t := time.NewTicker(min(d.cfg.TaskTTL/4, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			d.pruneTasks()
			d.pruneBeacons()
			if err := d.pruneSilent(d.ctx); err != nil {
				d.log.Warn("pruning replicas", "err", err)
			}
		}
	}
}

// maxPublished bounds the published beacons a verifier remembers.
const maxPublished = 1 << 14

// onPublished remembers the first beacon the coordinator publishes for
// each job.
func (d *Daemon) onPublished(e *wire.Envelope, m wire.Message) {
	if e.Sender != d.coord {
		return
	}
	t := m.(*wire.AuditTask)
	job := spec.JobID(e.Job)
	d.mu.Lock()
	first, seen := d.beacons[job]
	if !seen {
		if len(d.beacons) >= maxPublished {
			d.evictOldestBeaconLocked()
		}
		d.beacons[job] = published{beacon: t.Beacon, at: d.now()}
	}
	d.mu.Unlock()
	if seen && !bytes.Equal(first.beacon, t.Beacon) {
		// The first published beacon stands; a second one is the
		// coordinator trying to redraw the sample.
		d.log.Warn("the coordinator published a second beacon (ignored)", "job", short(job))
		return
	}
	d.log.Info("saw the audit open", "job", short(job), "topic", wire.AuditsTopic,
		"trace_root", fmt.Sprintf("%x…", t.TraceRoot[:6]), "beacon", fmt.Sprintf("%x…", t.Beacon[:min(6, len(t.Beacon))]))
}

func (d *Daemon) evictOldestBeaconLocked() {
	var oldest spec.JobID
	var at time.Time
	for j, p := range d.beacons {
		if at.IsZero() || p.at.Before(at) {
			oldest, at = j, p.at
		}
	}
	delete(d.beacons, oldest)
}

// pruneBeacons forgets beacons published longer than BeaconTTL ago.
func (d *Daemon) pruneBeacons() {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for j, p := range d.beacons {
		if now.Sub(p.at) > d.cfg.BeaconTTL {
			delete(d.beacons, j)
		}
	}
}

// pruneTasks drops reported tasks older than TaskTTL and the oldest
// beyond MaxTasks; it returns how many it dropped.
func (d *Daemon) pruneTasks() int {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	var done []spec.JobID
	for id, t := range d.tasks {
		if !t.reported.IsZero() {
			done = append(done, id)
		}
	}
	sort.Slice(done, func(a, b int) bool { return d.tasks[done[a]].reported.After(d.tasks[done[b]].reported) })
	dropped := 0
	for i, id := range done {
		if i >= d.cfg.MaxTasks || now.Sub(d.tasks[id].reported) > d.cfg.TaskTTL {
			delete(d.tasks, id)
			dropped++
			d.log.Debug("audit task dropped", "job", short(id))
		}
	}
	return dropped
}

// Tasks reports how many audit tasks (with their training sets) the
// daemon holds.
func (d *Daemon) Tasks() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tasks)
}

// party is the verifier's side of a dispute: an honest replay, on the
// data the audit checked (an MLP's training set, a GPT's corpus).
func (d *Daemon) party(job spec.JobID) (dispute.Party, error) {
	d.mu.Lock()
	t := d.tasks[job]
	d.mu.Unlock()
	if t == nil {
		return nil, disputenet.ErrNoParty
	}
	init, err := model.InitState(t.spec)
	if err != nil {
		return nil, err
	}
	if t.spec.IsGPT() {
		return dispute.NewGPTReplayer(t.spec, t.data.Text, init)
	}
	return dispute.NewReplayer(t.spec, t.data.Train, init)
}

// corpora is where this verifier keeps the "text" corpora it fetches
// from the coordinator (protocol/net/datanet).
func (d *Daemon) corpora() *datanet.Cache {
	dir := d.cfg.CorpusDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "beluga-corpora")
	}
	return &datanet.Cache{Dir: dir, Host: d.n.Host, Peer: d.coord, Log: d.log, Ctx: d.ctx}
}

// dataOptions says where this verifier finds a job's data.
func (d *Daemon) dataOptions() model.DataOptions {
	return model.DataOptions{IDXDir: d.cfg.DataDir, FortunesDir: d.cfg.FortunesDir, TextFile: d.cfg.TextFile}
}

func (d *Daemon) onTask(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
	if e.Sender != d.coord {
		return r.Reply(&wire.Ack{Error: "audit tasks come from the coordinator"})
	}
	t := m.(*wire.AuditTask)
	job := spec.JobID(e.Job)
	d.n.Learn(t.ProviderAddrs)
	s, err := spec.Decode(t.SpecJSON)
	if err != nil {
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	if id, err := s.ID(); err != nil || id != job {
		return r.Reply(&wire.Ack{Error: "spec does not match the job ID"})
	}
	if s.Audit.Confidential && d.cfg.Keys == nil {
		return r.Reply(&wire.Ack{Error: "confidential audits need zk verifying keys, and this verifier has none"})
	}
	d.mu.Lock()
	pub, seen := d.beacons[job]
	delete(d.beacons, job)
	d.mu.Unlock()
	if seen && !bytes.Equal(pub.beacon, t.Beacon) {
		d.log.Warn("refused an audit: its beacon is not the published one", "job", short(job), "topic", wire.AuditsTopic)
		return r.Reply(&wire.Ack{Error: "the task's beacon is not the one published for this job"})
	}
	if d.cfg.SilentForTesting {
		d.log.Info("took the audit and will never answer", "job", short(job))
		return r.Reply(&wire.Ack{OK: true})
	}
	check := d.audit
	if s.Audit.Confidential {
		check = d.zkAudit
	}
	d.log.Info(EventAuditAssigned, "job", short(job), "solver", shortPeer(t.Solver), "confidential", s.Audit.Confidential)
	if !d.spawn(func() {
		switch err := check(d.ctx, job, s, t); {
		case err == nil:
			d.log.Info(EventAudited, "job", short(job))
		case d.ctx.Err() != nil:
			d.log.Info("audit stopped: the daemon is shutting down", "job", short(job), "err", err)
		default:
			d.log.Error("audit failed to run", "job", short(job), "err", err)
		}
	}) {
		return r.Reply(&wire.Ack{Error: ErrStopping.Error()})
	}
	return r.Reply(&wire.Ack{OK: true})
}

func (d *Daemon) audit(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.AuditTask) error {
	tr := wire.Trace(id, t.Entries)
	if tr.Root() != merkle.Digest(t.TraceRoot) {
		return fmt.Errorf("the task's trace does not have its root")
	}
	data, err := datanet.LoadData(ctx, d.corpora(), s, d.dataOptions())
	if err != nil {
		return err
	}
	tk := &task{spec: s, data: data}
	d.mu.Lock()
	d.tasks[id] = tk
	d.mu.Unlock()
	defer d.reported(tk)
	sol := &netSolver{n: d.n, spec: s, job: id, trace: tr, data: data, holders: append([]peer.ID{t.Solver}, t.Providers...),
		fetch: exchange.Options{Grant: t.Grant, Logger: d.log}, local: d.replica}
	rep, err := audit.Run(ctx, audit.Config{Spec: s, Data: data, Beacon: t.Beacon, Solver: t.Solver.String(), Model: d.cfg.Model}, sol)
	if err != nil {
		return err
	}
	d.log.Info("checkpoints fetched from peers", "job", short(id), "fetched", sol.fetched, "failed", sol.failed, "own_replicas", sol.own)
	out, err := d.signed(t.Solver, rep)
	if err != nil {
		return err
	}
	d.reported(tk)
	_, err = d.n.Request(ctx, d.coord, wire.ControlProtocol, id, out, wire.TypeAck)
	return err
}

// signed signs the findings with this verifier's libp2p key (its peer ID
// names the key that checks them) and wraps them for the coordinator.
func (d *Daemon) signed(solver peer.ID, f *report.Findings) (*wire.AuditReport, error) {
	key, err := wire.SigningKey(d.n.Host.Peerstore().PrivKey(d.n.ID()))
	if err != nil {
		return nil, err
	}
	sf, err := report.SignFindings(f, key)
	if err != nil {
		return nil, err
	}
	return wire.NewAuditReport(solver, sf)
}

// replica returns the checkpoint of job at step from this verifier's own
// replicas if it holds one with the committed digest (a replica's chunks
// were checked when it was fetched), else nil.
func (d *Daemon) replica(ctx context.Context, s *spec.Spec, job spec.JobID, step int64, digest [32]byte) *spec.State {
	d.replMu.RLock()
	defer d.replMu.RUnlock()
	man, err := d.replicas.Manifest(ctx, job, step)
	if err != nil || man.Digest != digest {
		return nil
	}
	template, err := model.StateTemplate(s)
	if err != nil {
		return nil
	}
	st, err := d.replicas.GetState(ctx, job, step, template)
	if err != nil {
		return nil
	}
	return st
}

// reported marks an audit's task done, once (its TTL starts then), and
// prunes.
func (d *Daemon) reported(tk *task) {
	d.mu.Lock()
	if tk.reported.IsZero() {
		tk.reported = d.now()
	}
	d.mu.Unlock()
	d.pruneTasks()
}

// zkAudit audits a confidential job without its weights or its data: the
// tiles drawn from the committed roots and the beacon (SPEC.md §17.3) are
// proven by the solver and checked here against the committed zk trace.
func (d *Daemon) zkAudit(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.AuditTask) error {
	if wire.Trace(id, t.Entries).Root() != merkle.Digest(t.TraceRoot) {
		return fmt.Errorf("the task's trace does not have its root")
	}
	z, err := zkchallenge.ZKTraceOf(s, wire.ZKEntries(t.ZKEntries))
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
	zroot := z.Root()
	f := &report.Findings{JobID: id.String(), Solver: t.Solver.String(), TraceRoot: hex.EncodeToString(t.TraceRoot[:]),
		ZKTraceRoot: hex.EncodeToString(zroot[:]), Beacon: hex.EncodeToString(t.Beacon), Method: report.MethodZK, Population: s.Steps,
		Verdict: report.Pass}
	var verifyTime time.Duration
	for _, ch := range chs {
		tile := report.TileCheck{Step: ch.Step, Layer: int64(ch.Layer), Row: int64(ch.Row), Col: int64(ch.Col), Outcome: report.Skipped}
		if f.Verdict == report.Fail {
			f.Tiles = append(f.Tiles, tile)
			continue
		}
		m, err := d.requestProof(ctx, id, t.Solver, ch)
		var why string
		switch {
		case err != nil:
			why = fmt.Sprintf("no proof of %v: %v", ch, err)
		case m.(*wire.Proof).Error != "":
			why = fmt.Sprintf("the solver could not prove %v: %s", ch, m.(*wire.Proof).Error)
		default:
			proof := m.(*wire.Proof).Proof
			h := sha256.Sum256(proof)
			tile.ProofSHA256 = hex.EncodeToString(h[:])
			t0 := time.Now()
			err := prover.VerifyTile(d.cfg.Keys, s, z, ch, proof)
			verifyTime += time.Since(t0)
			if err != nil {
				why = fmt.Sprintf("invalid proof of %v: %v", ch, err)
			}
		}
		tile.Outcome = report.Match
		if why != "" {
			step := ch.Step
			f.Verdict, f.FirstBadStep, f.Reason, tile.Outcome = report.Fail, &step, why, report.Mismatch
		} else {
			f.StepsChecked++
		}
		f.Tiles = append(f.Tiles, tile)
	}
	conf := plan.Confidence(s.Steps, 1, f.StepsChecked, s.Audit.CheatFractionPPM, plan.Clustered)
	f.ConfidencePPM = int64(conf * plan.PPM)
	d.log.Info("challenged tile proofs valid, no weights or data seen", "job", short(id), "valid", f.StepsChecked, "challenged", len(chs),
		"verify_time", verifyTime.Round(time.Microsecond))
	out, err := d.signed(t.Solver, f)
	if err != nil {
		return err
	}
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
	data    *model.Data
	holders []peer.ID
	fetch   exchange.Options // with the task's grant
	// local, if set, returns a checkpoint with the committed digest this
	// verifier holds itself (a replica), or nil.
	local func(ctx context.Context, s *spec.Spec, job spec.JobID, step int64, digest [32]byte) *spec.State
	// missing are checkpoints no holder could serve (a resumed job's early
	// checkpoints lived on the solver that vanished): not asked for again.
	missing map[int64]bool
	// cursor is the last state opened (replayed here from a checked
	// state): audits open steps in ascending order, so a later step whose
	// checkpoints are missing replays from here, not from the start.
	cursor *spec.State
	// fetched and failed count checkpoint fetches (a failed one falls back
	// to an earlier checkpoint, the cursor, at worst the initial state),
	// own the checkpoints read from this verifier's own replicas.
	fetched, failed, own int
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
	st, err := model.InitState(s.spec)
	if err != nil {
		return nil, err
	}
	if s.cursor != nil && s.cursor.Step <= step {
		st = s.cursor.Clone()
	}
	for cp := step - step%s.spec.CheckpointInterval; cp > st.Step; cp -= s.spec.CheckpointInterval {
		i := s.trace.Index(cp)
		if i < 0 || s.missing[cp] {
			continue
		}
		if s.local != nil {
			if got := s.local(ctx, s.spec, s.job, cp, s.trace.Entries[i].Digest); got != nil {
				st = got
				s.own++
				break
			}
		}
		got, err := exchange.FetchState(ctx, s.n, s.holders, s.spec, s.job, cp, s.trace.Entries[i].Digest, s.fetch)
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
	if st, err = rundir.Replay(ctx, s.spec, s.data, st, step); err != nil {
		return nil, err
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
	job := spec.JobID(e.Job)
	if !d.spawn(func() {
		if err := d.replicate(d.ctx, job, a); err != nil {
			d.log.Warn("replication failed", "job", short(job), "step", a.Step, "err", err)
			return
		}
		d.log.Info("holds a replica of the checkpoint", "job", short(job), "step", a.Step)
		d.n.Request(d.ctx, d.coord, wire.ControlProtocol, job, &wire.CheckpointAnnounce{Step: a.Step, Digest: a.Digest}, wire.TypeAck)
		if err := d.prune(d.ctx, job); err != nil {
			d.log.Warn("pruning replicas", "err", err)
		}
	}) {
		return r.Reply(&wire.Ack{Error: ErrStopping.Error()})
	}
	return r.Reply(&wire.Ack{OK: true})
}

// replicate fetches the announced checkpoint into the replica store.
func (d *Daemon) replicate(ctx context.Context, job spec.JobID, a *wire.CheckpointAnnounce) error {
	d.replMu.RLock()
	defer d.replMu.RUnlock()
	o := exchange.Options{Grant: a.Grant, Logger: d.log}
	man, err := exchange.FetchManifest(ctx, d.n, a.Providers, job, a.Step, a.Digest, o)
	if err != nil {
		return err
	}
	err = exchange.FetchChunks(ctx, d.n, a.Providers, man, func(_ store.ChunkID, data []byte) error {
		_, err := d.replicas.Put(ctx, data)
		return err
	}, o)
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
	d.replicaSeen[job] = d.now()
	steps, err := d.replicas.ListCheckpoints(ctx, job)
	if err != nil {
		return err
	}
	stale := len(steps) > 1
	if len(steps) > 1 {
		for _, st := range steps[:len(steps)-1] {
			if err := d.replicas.DeleteCheckpoint(ctx, job, st); err != nil {
				return err
			}
		}
	}
	dropped, err := d.dropSilentLocked(ctx)
	if err != nil {
		return err
	}
	if !stale && !dropped {
		return nil
	}
	_, _, err = d.replicas.GC(ctx)
	return err
}

// pruneSilent drops the replicas of jobs silent for ReplicaTTL and
// collects their chunks (the janitor's part of prune: a job whose last
// replica landed long ago goes even if no other replication comes).
func (d *Daemon) pruneSilent(ctx context.Context) error {
	d.replMu.Lock()
	defer d.replMu.Unlock()
	dropped, err := d.dropSilentLocked(ctx)
	if err != nil || !dropped {
		return err
	}
	_, _, err = d.replicas.GC(ctx)
	return err
}

// dropSilentLocked deletes the replicas of the jobs that have had no new
// checkpoint for ReplicaTTL; replMu is held for writing.
func (d *Daemon) dropSilentLocked(ctx context.Context) (bool, error) {
	now := d.now()
	dropped := false
	for j, seen := range d.replicaSeen {
		if now.Sub(seen) <= d.cfg.ReplicaTTL {
			continue
		}
		delete(d.replicaSeen, j)
		dropped = true
		old, err := d.replicas.ListCheckpoints(ctx, j)
		if err != nil {
			return dropped, err
		}
		for _, st := range old {
			if err := d.replicas.DeleteCheckpoint(ctx, j, st); err != nil {
				return dropped, err
			}
		}
	}
	return dropped, nil
}

func short(id spec.JobID) string { return id.String()[:12] }

// shortPeer is the short form of a peer ID the logs use (as
// peer.ID.ShortString, without the brackets).
func shortPeer(p peer.ID) string {
	s := p.String()
	if len(s) <= 8 {
		return s
	}
	return s[:2] + "*" + s[len(s)-6:]
}
