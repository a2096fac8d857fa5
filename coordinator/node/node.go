// Package node is the coordinator's libp2p side, beside its HTTP API: the
// host solvers and verifiers join (and can use as a relay), the registry
// of peers and their advertised capacity, the index of who holds which
// checkpoint, job assignment through the market (coordinator/service),
// audits with beacons drawn only after a solver's trace is committed,
// reassignment of silent verifiers and vanished solvers, and disputes
// refereed one operator at a time (protocol/core/dispute) before a bond is
// slashed.
//
// # Security
//
// Every message is a signed envelope (protocol/net/wire) checked by
// protocol/net/p2p; the registry keys peers by their peer ID, so a report or a
// trace counts only from the peer the job or audit was given to. The
// beacon comes from crypto/rand after the trace root is recorded. A
// failed audit slashes nobody by itself: the referee decides from the
// parties' answers, and whoever loses is slashed.
package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/net/disputenet"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Config configures a Node.
type Config struct {
	Service *service.Service
	// AuditTimeout: a verifier that has not reported by then loses the
	// audit to another (default 30 s).
	AuditTimeout time.Duration
	// HeartbeatTimeout: a solver silent for this long while running a job
	// has vanished; the job is offered again (default 10 s).
	HeartbeatTimeout time.Duration
	// Events receives a line per event, for a timeline (optional).
	Events func(string)
	// Keys holds the zk verifying keys (prover.Keyring) with which the
	// coordinator referees failed confidential audits; nil: confidential
	// jobs are not accepted.
	Keys *prover.Keyring
}

// Peer is a registered solver or verifier.
type Peer struct {
	ID       peer.ID
	Party    string // ledger party ID
	Role     wire.Role
	Hello    wire.Hello
	LastSeen time.Time
	Busy     bool
	audits   int
}

// Outcome is where a job ended.
type Outcome struct {
	Job      string   `json:"job_id"`
	State    string   `json:"state"`
	Solvers  []string `json:"solvers"`
	Verdict  string   `json:"audit_verdict,omitempty"`
	Verifier string   `json:"verifier,omitempty"`
	Slashed  string   `json:"slashed,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

type job struct {
	id          spec.JobID
	spec        *spec.Spec
	specJSON    []byte
	solver      peer.ID
	solvers     []peer.ID
	step        int64
	lastBeat    time.Time
	checkpoints map[int64]checkpoint
	trace       *wire.TraceCommit
	auditor     peer.ID
	tried       map[peer.ID]bool
	beacon      []byte
	outcome     *Outcome
	auditTimer  *time.Timer
	// replicating: a replica is fetching one of the job's checkpoints; the
	// next is replicated when it is done, so replication keeps pace with
	// the replica instead of queueing every checkpoint.
	replicating      bool
	replicatingSince time.Time
	replica          peer.ID // the verifier last asked to replicate
	replicaStep      int64   // the step it was asked for
}

type checkpoint struct {
	digest  [32]byte
	holders []peer.ID
	entries []wire.TraceEntry // the trace committed up to it
	pending bool              // a replica has been asked to hold it
}

// Node is the coordinator node.
type Node struct {
	P2P *p2p.Node
	cfg Config
	svc *service.Service

	mu    sync.Mutex
	peers map[peer.ID]*Peer
	jobs  map[spec.JobID]*job
	done  chan spec.JobID
}

// PartyID is the ledger party of a peer: a short, stable digest of its ID
// (party IDs are at most 14 characters).
func PartyID(role wire.Role, id peer.ID) string {
	h := sha256.Sum256([]byte(id))
	p := "s"
	if role == wire.RoleVerifier {
		p = "v"
	}
	return p + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:])[:12])
}

// New starts serving on n.
func New(n *p2p.Node, cfg Config) (*Node, error) {
	if cfg.Service == nil {
		return nil, errors.New("node: no service")
	}
	if cfg.AuditTimeout <= 0 {
		cfg.AuditTimeout = 30 * time.Second
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 10 * time.Second
	}
	if cfg.Events == nil {
		cfg.Events = func(string) {}
	}
	c := &Node{P2P: n, cfg: cfg, svc: cfg.Service, peers: map[peer.ID]*Peer{}, jobs: map[spec.JobID]*job{}, done: make(chan spec.JobID, 64)}
	n.Handle(wire.ControlProtocol, c.control, wire.TypeHello, wire.TypeHeartbeat, wire.TypeCheckpointAnnounce, wire.TypeTraceCommit, wire.TypeAuditReport)
	if n.PubSub != nil {
		if _, err := n.Join(wire.JobsTopic, wire.TypeJobOffer); err != nil {
			return nil, err
		}
		if _, err := n.Join(wire.AuditsTopic, wire.TypeAuditTask); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Node) event(format string, args ...any) { c.cfg.Events(fmt.Sprintf(format, args...)) }

// Done delivers the ID of each job that reached its end.
func (c *Node) Done() <-chan spec.JobID { return c.done }

// Outcome returns a finished job's outcome.
func (c *Node) Outcome(id spec.JobID) (*Outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.jobs[id]
	if j == nil || j.outcome == nil {
		return nil, false
	}
	o := *j.outcome
	return &o, true
}

// ResumePoint reports where the job solver is running (not yet committed)
// would resume if solver vanished now: the newest checkpoint of it that
// another registered peer holds, with the trace up to it.
func (c *Node) ResumePoint(solver peer.ID) (job spec.JobID, step int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, j := range c.jobs {
		if j.solver != solver || j.trace != nil || j.outcome != nil {
			continue // not running
		}
		for st, cp := range j.checkpoints {
			if st <= step || len(cp.entries) == 0 {
				continue
			}
			for _, h := range cp.holders {
				if h != solver && c.peers[h] != nil {
					job, step, ok = id, st, true
					break
				}
			}
		}
	}
	return job, step, ok
}

// Peers returns the registry, sorted by party.
func (c *Node) Peers() []Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Peer
	for _, p := range c.peers {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Party < out[k].Party })
	return out
}

// Offer announces a posted job (its spec) on the jobs topic and keeps it
// for assignment.
func (c *Node) Offer(ctx context.Context, specJSON []byte) error {
	s, err := spec.Decode(specJSON)
	if err != nil {
		return err
	}
	id, err := s.ID()
	if err != nil {
		return err
	}
	if s.Audit.Confidential && c.cfg.Keys == nil {
		return fmt.Errorf("job %s is confidential and this coordinator has no zk verifying keys to referee it", short(id))
	}
	c.mu.Lock()
	if c.jobs[id] == nil {
		c.jobs[id] = &job{id: id, spec: s, specJSON: specJSON, checkpoints: map[int64]checkpoint{}, tried: map[peer.ID]bool{}}
	}
	c.mu.Unlock()
	c.event("job %s offered (%d steps, batch %d)", short(id), s.Steps, s.BatchSize)
	if c.P2P.PubSub != nil {
		if err := c.P2P.Publish(ctx, wire.JobsTopic, id, &wire.JobOffer{SpecJSON: specJSON, Confidential: s.Audit.Confidential}); err != nil {
			return err
		}
	}
	// Posting may have matched the job with a waiting ask already.
	rec, err := c.svc.Job(ctx, id)
	if err != nil {
		return err
	}
	c.startIfMatched(ctx, rec)
	return nil
}

// startIfMatched starts a job the market matched outside an ask of ours
// (at posting, or when a vanished solver's job was bid again).
func (c *Node) startIfMatched(ctx context.Context, rec *service.Job) {
	if rec.State == lifecycle.Matched && len(rec.Solvers) > 0 {
		if p, ok := c.peerOfParty(rec.Solvers[len(rec.Solvers)-1].SolverID); ok {
			c.start(ctx, rec.ID, p)
		}
	}
}

func (c *Node) peerOfParty(party string) (peer.ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.peers {
		if p.Party == party {
			return id, true
		}
	}
	return "", false
}

func short(id spec.JobID) string { return id.String()[:12] }

func (c *Node) control(ctx context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
	var err error
	switch m := m.(type) {
	case *wire.Hello:
		err = c.hello(e.Sender, m)
	case *wire.Heartbeat:
		err = c.heartbeat(e, m)
	case *wire.CheckpointAnnounce:
		err = c.announce(e, m)
	case *wire.TraceCommit:
		err = c.traceCommit(e, m)
	case *wire.AuditReport:
		err = c.report(e, m)
	}
	if err != nil {
		c.P2P.Reject(e.Sender, err)
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	return r.Reply(&wire.Ack{OK: true})
}

func (c *Node) hello(from peer.ID, h *wire.Hello) error {
	c.mu.Lock()
	p := c.peers[from]
	if p == nil {
		p = &Peer{ID: from, Party: PartyID(h.Role, from), Role: h.Role}
		c.peers[from] = p
	}
	p.Hello, p.LastSeen = *h, time.Now()
	c.mu.Unlock()
	what := "verifier"
	if h.Role == wire.RoleSolver {
		what = fmt.Sprintf("solver (%s, ask %d µ$/CU)", h.Backend, h.AskMicroUSDPerUnit)
	}
	c.event("%s joined as %s, party %s", from.ShortString(), what, p.Party)
	if h.Role == wire.RoleSolver {
		go c.ask(context.Background(), from)
	}
	return nil
}

// ask posts the solver's ask to the market and starts the jobs it
// matched.
func (c *Node) ask(ctx context.Context, solver peer.ID) {
	c.mu.Lock()
	p := c.peers[solver]
	if p == nil || p.Busy {
		c.mu.Unlock()
		return
	}
	party, price := p.Party, p.Hello.AskMicroUSDPerUnit
	c.mu.Unlock()
	matched, err := c.svc.PostAsk(ctx, service.Ask{SolverID: party, PriceMicroUSDPerCU: price, Capacity: 1, TTL: time.Hour})
	if err != nil {
		c.event("ask of %s refused: %v", solver.ShortString(), err)
		return
	}
	for _, jid := range matched {
		c.start(ctx, jid, solver)
	}
}

// Rematch asks every idle solver again: jobs that are waiting (posted, or
// resumable after a solver vanished) get matched.
func (c *Node) Rematch(ctx context.Context) {
	c.mu.Lock()
	var idle []peer.ID
	for _, p := range c.peers {
		if p.Role == wire.RoleSolver && !p.Busy && c.P2P.Host.Network().Connectedness(p.ID) == network.Connected {
			idle = append(idle, p.ID)
		}
	}
	c.mu.Unlock()
	sort.Slice(idle, func(i, k int) bool { return idle[i] < idle[k] })
	for _, s := range idle {
		c.ask(ctx, s)
	}
}

func (c *Node) start(ctx context.Context, jid string, solver peer.ID) {
	id, err := spec.ParseJobID(jid)
	if err != nil {
		return
	}
	c.mu.Lock()
	j := c.jobs[id]
	if j == nil {
		c.mu.Unlock()
		c.event("job %s matched but never offered here", jid[:12])
		return
	}
	resume := int64(0)
	var digest [32]byte
	var holders []peer.ID
	var entries []wire.TraceEntry
	for step, cp := range j.checkpoints {
		if step <= resume || len(cp.entries) == 0 || step >= j.spec.Steps {
			continue
		}
		// Only holders still registered (a vanished solver is not).
		var live []peer.ID
		for _, h := range cp.holders {
			if c.peers[h] != nil {
				live = append(live, h)
			}
		}
		if len(live) > 0 {
			resume, digest, holders, entries = step, cp.digest, live, cp.entries
		}
	}
	j.solver, j.lastBeat = solver, time.Now()
	j.solvers = append(j.solvers, solver)
	c.peers[solver].Busy = true
	specJSON := j.specJSON
	c.mu.Unlock()
	if _, err := c.svc.Advance(ctx, jid, lifecycle.EventStart); err != nil {
		c.event("job %s start: %v", jid[:12], err)
		return
	}
	msg := &wire.Assign{SpecJSON: specJSON, ResumeStep: resume, ResumeDigest: digest, Providers: holders, Entries: entries, ProviderAddrs: c.addrsOf(holders)}
	if _, err := c.P2P.Request(ctx, solver, wire.AssignProtocol, id, msg, wire.TypeAck); err != nil {
		c.event("job %s: assigning to %s failed: %v", jid[:12], solver.ShortString(), err)
		c.vanish(ctx, id)
		return
	}
	if resume > 0 {
		c.event("job %s assigned to %s, resuming from the checkpoint at step %d held by %d peer(s)", jid[:12], solver.ShortString(), resume, len(holders))
	} else {
		c.event("job %s assigned to %s", jid[:12], solver.ShortString())
	}
	go c.watch(id, solver)
}

// watch declares the job's solver vanished when it stops heartbeating.
func (c *Node) watch(id spec.JobID, solver peer.ID) {
	t := time.NewTicker(c.cfg.HeartbeatTimeout / 4)
	defer t.Stop()
	for range t.C {
		c.mu.Lock()
		j := c.jobs[id]
		if j == nil || j.solver != solver || j.trace != nil || j.outcome != nil {
			c.mu.Unlock()
			return
		}
		silent := time.Since(j.lastBeat) > c.cfg.HeartbeatTimeout
		c.mu.Unlock()
		if silent {
			c.event("solver %s went silent on job %s", solver.ShortString(), short(id))
			c.vanish(context.Background(), id)
			return
		}
	}
}

func (c *Node) vanish(ctx context.Context, id spec.JobID) {
	c.mu.Lock()
	j := c.jobs[id]
	if j != nil && j.solver != "" {
		if p := c.peers[j.solver]; p != nil {
			delete(c.peers, j.solver) // gone: it must say hello again
		}
		j.solver = ""
	}
	c.mu.Unlock()
	rec, err := c.svc.Vanish(ctx, id.String())
	if err != nil {
		c.event("job %s vanish: %v", short(id), err)
		return
	}
	c.event("job %s is resumable from its last announced checkpoint", short(id))
	if rec.State == lifecycle.Matched {
		c.startIfMatched(ctx, rec)
		return
	}
	c.Rematch(ctx)
}

func (c *Node) jobOf(e *wire.Envelope) (*job, error) {
	j := c.jobs[spec.JobID(e.Job)]
	if j == nil {
		return nil, fmt.Errorf("%w: unknown job", wire.ErrWrongJob)
	}
	return j, nil
}

func (c *Node) heartbeat(e *wire.Envelope, h *wire.Heartbeat) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.peers[e.Sender]; p != nil {
		p.LastSeen = time.Now()
	}
	if e.Job == ([32]byte{}) {
		return nil
	}
	j, err := c.jobOf(e)
	if err != nil {
		return err
	}
	if j.solver == e.Sender {
		j.step, j.lastBeat = h.Step, time.Now()
	}
	return nil
}

func (c *Node) announce(e *wire.Envelope, a *wire.CheckpointAnnounce) error {
	c.mu.Lock()
	j, err := c.jobOf(e)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if a.Step > j.spec.Steps {
		c.mu.Unlock()
		return fmt.Errorf("checkpoint at step %d of a %d-step job", a.Step, j.spec.Steps)
	}
	cp := j.checkpoints[a.Step]
	if cp.digest != ([32]byte{}) && cp.digest != a.Digest {
		c.mu.Unlock()
		return fmt.Errorf("checkpoint at step %d announced with another digest", a.Step)
	}
	mine := j.solver == e.Sender
	if !mine {
		// Only the replica asked to hold a checkpoint the solver announced
		// confirms it; nobody else may name holders or digests.
		if !cp.pending || cp.digest != a.Digest || j.replica != e.Sender || len(a.Entries) > 0 {
			c.mu.Unlock()
			return fmt.Errorf("unsolicited checkpoint at step %d", a.Step)
		}
		if !containsPeer(cp.holders, e.Sender) {
			cp.holders = append(cp.holders, e.Sender)
		}
		j.checkpoints[a.Step] = cp
		j.replicating = false
		running := j.trace == nil
		c.mu.Unlock()
		// The checkpoint now outlives its solver: the steps up to it are
		// committed (a solver that vanishes is paid up to here, and the
		// job resumes from here). A job already committed has all its
		// steps recorded.
		if !running {
			return nil
		}
		if _, err := c.svc.Checkpoint(context.Background(), j.id.String(), a.Step); err != nil && !errors.Is(err, service.ErrInvalid) {
			c.event("job %s checkpoint %d: %v", short(j.id), a.Step, err)
		}
		return nil
	}
	if len(a.Entries) > 0 {
		// The trace so far must be a prefix of the run's trace ending at
		// this checkpoint.
		want := trace.Steps(j.spec)
		n := len(a.Entries)
		if n > len(want) || a.Entries[n-1].Step != a.Step || a.Entries[n-1].Digest != a.Digest {
			c.mu.Unlock()
			return fmt.Errorf("checkpoint at step %d with a trace that does not end at it", a.Step)
		}
		for i, en := range a.Entries {
			if en.Step != want[i] {
				c.mu.Unlock()
				return fmt.Errorf("checkpoint at step %d: trace entry %d is step %d, want %d", a.Step, i, en.Step, want[i])
			}
		}
		cp.entries = a.Entries
	}
	cp.digest = a.Digest
	if !containsPeer(cp.holders, e.Sender) {
		cp.holders = append(cp.holders, e.Sender)
	}
	// Keep a replica of the newest checkpoint, so that the job survives
	// its solver: one replication at a time per job, never of a checkpoint
	// older than one already replicated. A replica that has not confirmed
	// within replicaTimeout lost its fetch (it acknowledged the request
	// but could not complete it): move on.
	if j.replicating && time.Since(j.replicatingSince) > replicaTimeout {
		j.replicating = false
	}
	var replica peer.ID
	var solverAddrs []string
	if !cp.pending && !j.replicating && j.trace == nil && len(cp.entries) > 0 && a.Step > j.replicaStep && a.Step < j.spec.Steps {
		replica = c.pickReplica(cp.holders)
		if replica != "" {
			cp.pending = true
			j.replica, j.replicaStep = replica, a.Step
			j.replicating, j.replicatingSince = true, time.Now()
			solverAddrs = c.addrsLocked([]peer.ID{e.Sender})
		}
	}
	j.checkpoints[a.Step] = cp
	c.mu.Unlock()
	if replica != "" {
		go func() {
			req := &wire.CheckpointAnnounce{Step: a.Step, Digest: a.Digest, Providers: []peer.ID{e.Sender}, ProviderAddrs: solverAddrs}
			if _, err := c.P2P.Request(context.Background(), replica, wire.ReplicateProtocol, j.id, req, wire.TypeAck); err != nil {
				c.event("job %s: replicating the checkpoint at step %d to %s failed: %v", short(j.id), a.Step, replica.ShortString(), err)
				c.mu.Lock()
				j.replicating = false
				c.mu.Unlock()
			}
		}()
	}
	return nil
}

// replicaTimeout bounds how long one replication may block the next.
const replicaTimeout = 3 * time.Second

// pickReplica chooses a verifier that does not hold the checkpoint yet
// (verifiers keep replicas: they fetch checkpoints anyway to audit).
func (c *Node) pickReplica(holders []peer.ID) peer.ID {
	var best *Peer
	for _, p := range c.peers {
		if p.Role != wire.RoleVerifier || containsPeer(holders, p.ID) {
			continue
		}
		if best == nil || p.Party < best.Party {
			best = p
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

func containsPeer(ps []peer.ID, p peer.ID) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func (c *Node) traceCommit(e *wire.Envelope, t *wire.TraceCommit) error {
	c.mu.Lock()
	j, err := c.jobOf(e)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if j.solver != e.Sender || j.trace != nil {
		c.mu.Unlock()
		return fmt.Errorf("trace of job %s from a peer that is not running it", short(j.id))
	}
	tr := &trace.Trace{Job: j.id}
	for _, en := range t.Entries {
		tr.Entries = append(tr.Entries, trace.Entry{Step: en.Step, Digest: merkle.Digest(en.Digest)})
	}
	if err := tr.Check(j.spec); err != nil || tr.Root() != merkle.Digest(t.TraceRoot) || t.Steps != j.spec.Steps {
		c.mu.Unlock()
		return fmt.Errorf("trace of job %s does not match its root or its spec: %v", short(j.id), err)
	}
	// A confidential job commits its zk trace with its digest trace;
	// another job commits none.
	if j.spec.Audit.Confidential {
		if _, err := zkchallenge.ZKTraceOf(j.spec, zkEntries(t.ZKEntries)); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("zk trace of confidential job %s: %w", short(j.id), err)
		}
	} else if len(t.ZKEntries) > 0 {
		c.mu.Unlock()
		return fmt.Errorf("zk trace for job %s, which is not confidential", short(j.id))
	}
	j.trace = t
	if p := c.peers[e.Sender]; p != nil {
		p.Busy = false
	}
	c.mu.Unlock()
	ctx := context.Background()
	id := j.id.String()
	if _, err := c.svc.Checkpoint(ctx, id, t.Steps); err != nil && !errors.Is(err, service.ErrInvalid) {
		c.event("job %s: %v", short(j.id), err)
	}
	for _, ev := range []lifecycle.Event{lifecycle.EventCommit, lifecycle.EventOpenAudit} {
		if _, err := c.svc.Advance(ctx, id, ev); err != nil {
			return err
		}
	}
	beacon := make([]byte, 32)
	if _, err := rand.Read(beacon); err != nil {
		return err
	}
	c.mu.Lock()
	j.beacon = beacon
	c.mu.Unlock()
	c.event("job %s committed by %s: trace root %x…, %d digests; beacon drawn", short(j.id), e.Sender.ShortString(), t.TraceRoot[:6], len(t.Entries))
	if c.P2P.PubSub != nil {
		// The opened audit is public (without the trace entries, which
		// the assigned verifier gets directly): one trace root and one
		// beacon per job, for everyone to see.
		open := &wire.AuditTask{Solver: e.Sender, TraceRoot: t.TraceRoot, Beacon: beacon, SpecJSON: j.specJSON}
		if err := c.P2P.Publish(ctx, wire.AuditsTopic, j.id, open); err != nil {
			c.event("job %s: publishing the audit: %v", short(j.id), err)
		}
	}
	go func() {
		if j.spec.Audit.Confidential {
			// The solver proves only the tiles the beacon challenges, and
			// starts before the verifier asks.
			c.sendBeacon(context.Background(), j.id, e.Sender, beacon)
		}
		c.assignAudit(j.id)
	}()
	go c.Rematch(ctx)
	return nil
}

// assignAudit gives the job's audit to a verifier that has not had it,
// and reassigns it if the verifier stays silent.
func (c *Node) assignAudit(id spec.JobID) {
	c.mu.Lock()
	j := c.jobs[id]
	if j == nil || j.outcome != nil {
		c.mu.Unlock()
		return
	}
	var cands []*Peer
	for _, p := range c.peers {
		if p.Role == wire.RoleVerifier && !j.tried[p.ID] {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		c.mu.Unlock()
		c.event("job %s: no verifier left to audit it", short(id))
		return
	}
	// The least loaded verifier (ties by party ID).
	sort.Slice(cands, func(a, b int) bool {
		if cands[a].audits != cands[b].audits {
			return cands[a].audits < cands[b].audits
		}
		return cands[a].Party < cands[b].Party
	})
	cands[0].audits++
	v := cands[0].ID
	j.tried[v], j.auditor = true, v
	task := &wire.AuditTask{Solver: j.solver, TraceRoot: j.trace.TraceRoot, Beacon: j.beacon, SpecJSON: j.specJSON, Entries: j.trace.Entries,
		ZKEntries: j.trace.ZKEntries}
	for _, cp := range j.checkpoints {
		for _, h := range cp.holders {
			if !containsPeer(task.Providers, h) {
				task.Providers = append(task.Providers, h)
			}
		}
	}
	task.ProviderAddrs = c.addrsLocked(append([]peer.ID{j.solver}, task.Providers...))
	if j.auditTimer != nil {
		j.auditTimer.Stop()
	}
	timeout := c.cfg.AuditTimeout
	if j.spec.Audit.Confidential {
		// Each challenged tile is a proof of seconds on the solver.
		if n, err := zkchallenge.Count(j.spec); err == nil {
			timeout += time.Duration(n) * proofAllowance
		}
	}
	j.auditTimer = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		silent := j.auditor == v && j.outcome == nil
		c.mu.Unlock()
		if silent {
			c.event("verifier %s stayed silent on job %s: reassigning the audit", v.ShortString(), short(id))
			c.assignAudit(id)
		}
	})
	c.mu.Unlock()
	if _, err := c.P2P.Request(context.Background(), v, wire.AuditProtocol, id, task, wire.TypeAck); err != nil {
		c.event("job %s: audit task to %s failed: %v", short(id), v.ShortString(), err)
		c.assignAudit(id)
		return
	}
	c.event("job %s: audit assigned to verifier %s", short(id), v.ShortString())
}

func (c *Node) report(e *wire.Envelope, r *wire.AuditReport) error {
	c.mu.Lock()
	j, err := c.jobOf(e)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if j.auditor != e.Sender || j.outcome != nil {
		c.mu.Unlock()
		return fmt.Errorf("audit report for job %s from a peer not auditing it", short(j.id))
	}
	if j.auditTimer != nil {
		j.auditTimer.Stop()
	}
	verifier := c.peers[e.Sender]
	solver := j.solver
	spc := j.spec
	tr := j.trace
	beacon := j.beacon
	c.mu.Unlock()
	if verifier == nil {
		return fmt.Errorf("unknown verifier")
	}
	ctx := context.Background()
	id := j.id.String()
	raw, _ := json.Marshal(map[string]any{"pass": r.Pass, "steps_checked": r.StepsChecked, "first_bad_step": r.FirstBadStep,
		"confidence_ppm": r.ConfidencePPM, "reason": r.Reason, "verifier": e.Sender.String()})
	if err := c.svc.SetAudit(ctx, id, raw); err != nil {
		c.event("job %s: storing the audit: %v", short(j.id), err)
	}
	out := &Outcome{Job: id, Verifier: e.Sender.String()}
	for _, s := range j.solvers {
		out.Solvers = append(out.Solvers, s.String())
	}
	if r.Pass {
		out.Verdict = "pass"
		what := "steps replayed"
		if spc.Audit.Confidential {
			what = "challenged tiles proven in zero knowledge"
		}
		c.event("job %s: audit passed (%d %s, confidence %.4f)", short(j.id), r.StepsChecked, what, float64(r.ConfidencePPM)/1e6)
		if _, err := c.svc.Settle(ctx, id, []service.VerifierPay{{VerifierID: verifier.Party, Audits: 1}}); err != nil {
			return err
		}
		out.State = "settled"
		c.event("job %s settled: solver paid, verifier paid", short(j.id))
	} else {
		out.Verdict = "fail"
		c.event("job %s: audit FAILED at step %d (%s); dispute opened", short(j.id), r.FirstBadStep, r.Reason)
		referee := func(ctx context.Context) (bool, string, error) {
			return c.refereeReplay(ctx, j.id, spc, tr, solver, e.Sender, r)
		}
		if spc.Audit.Confidential {
			referee = func(ctx context.Context) (bool, string, error) {
				return c.refereeZK(ctx, j.id, spc, tr, beacon, solver, r)
			}
		}
		go c.dispute(j.id, solver, e.Sender, verifier.Party, referee)
		return nil
	}
	c.finish(j.id, out)
	return nil
}

func (c *Node) finish(id spec.JobID, out *Outcome) {
	c.mu.Lock()
	if j := c.jobs[id]; j != nil {
		j.outcome = out
	}
	c.mu.Unlock()
	c.done <- id
}

// dispute plays out a failed audit: it records the dispute, asks the
// referee which party loses, slashes that party's bond and finishes the
// job. referee reports whether the solver loses and why; an error leaves
// the job in dispute-error.
func (c *Node) dispute(id spec.JobID, solver, verifier peer.ID, vparty string, referee func(context.Context) (solverLoses bool, why string, err error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &Outcome{Job: id.String(), Verdict: "fail", Verifier: verifier.String(), Solvers: []string{solver.String()}}
	fail := func(err error) {
		out.State, out.Reason = "dispute-error", err.Error()
		c.event("job %s: dispute could not be played: %v", short(id), err)
		c.finish(id, out)
	}
	c.mu.Lock()
	sparty := ""
	if p := c.peers[solver]; p != nil {
		sparty = p.Party
	}
	c.mu.Unlock()
	if _, err := c.svc.Dispute(ctx, id.String(), vparty, sparty); err != nil {
		fail(err)
		return
	}
	solverLoses, why, err := referee(ctx)
	if err != nil {
		fail(err)
		return
	}
	if solverLoses {
		if _, err := c.svc.SlashSolver(ctx, id.String()); err != nil {
			fail(err)
			return
		}
		out.State, out.Slashed = "slashed", solver.String()
		c.event("job %s: solver %s SLASHED; bounty to verifier %s, the rest to the client", short(id), solver.ShortString(), verifier.ShortString())
	} else {
		if _, err := c.svc.SlashVerifier(ctx, id.String()); err != nil {
			fail(err)
			return
		}
		out.State, out.Slashed = "verifier-slashed", verifier.String()
		c.event("job %s: verifier %s slashed for a false accusation", short(id), verifier.ShortString())
	}
	out.Reason = why
	c.finish(id, out)
}

// refereeReplay referees a failed replay audit: bisection with both
// parties over the network, then one operator recomputed.
func (c *Node) refereeReplay(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.TraceCommit, solver, verifier peer.ID, r *wire.AuditReport) (bool, string, error) {
	// The disputed segment runs from the initial state, which both parties
	// agree on, to the first trace entry after the first bad step the
	// verifier found; bisection finds the first step they disagree on
	// (the audit's bad step may lie after it, when the verifier replayed
	// from one of the solver's own checkpoints).
	var seg dispute.Segment
	if len(t.Entries) > 0 && t.Entries[0].Step == 0 {
		seg.Start, seg.StartDigest = 0, t.Entries[0].Digest
	}
	for _, e := range t.Entries {
		if e.Step > r.FirstBadStep {
			seg.End, seg.SolverEnd = e.Step, e.Digest
			break
		}
	}
	if seg.End == 0 {
		return false, "", fmt.Errorf("first bad step %d is in no segment", r.FirstBadStep)
	}
	vp := &disputenet.Remote{Node: c.P2P, Peer: verifier, Job: id}
	sp := &disputenet.Remote{Node: c.P2P, Peer: solver, Job: id}
	vEnd, err := vp.DigestAt(ctx, seg.End)
	if err != nil {
		return false, "", err
	}
	seg.VerifierEnd = vEnd
	ref, err := dispute.NewReferee(s)
	if err != nil {
		return false, "", err
	}
	res, err := ref.Play(ctx, seg, sp, vp)
	if err != nil {
		return false, "", err
	}
	c.event("job %s: referee: %v after %d rounds, %d operator recomputed (%d of the step's %d MACs)",
		short(id), res.Verdict, res.Cost.Rounds, res.Cost.OpsRun, res.Cost.OpWork, res.Cost.StepWork)
	return res.Verdict.Loser == dispute.LoserSolver, res.Verdict.String(), nil
}

// sendBeacon gives a confidential job's solver its audit beacon.
func (c *Node) sendBeacon(ctx context.Context, id spec.JobID, solver peer.ID, beacon []byte) {
	if _, err := c.P2P.Request(ctx, solver, wire.AssignProtocol, id, &wire.Beacon{Beacon: beacon}, wire.TypeAck); err != nil {
		c.event("job %s: sending the audit beacon to %s: %v", short(id), solver.ShortString(), err)
	}
}

// proofAllowance is the audit time allowed per challenged tile of a
// confidential job (a proof takes ~1.5 s on two cores).
const proofAllowance = 10 * time.Second

func zkEntries(es []wire.TraceEntry) []trace.ZKEntry {
	out := make([]trace.ZKEntry, len(es))
	for i, e := range es {
		out[i] = trace.ZKEntry{Step: e.Step, Root: e.Digest}
	}
	return out
}

// refereeZK referees a failed confidential audit without seeing any
// value: the challenge at the reported step is recomputed from the
// committed roots and the beacon, the solver is asked for that tile's
// proof, and the proof is checked (milliseconds). A valid proof means a
// false accusation; none, or an invalid one, means the solver cannot back
// its commitment.
func (c *Node) refereeZK(ctx context.Context, id spec.JobID, s *spec.Spec, t *wire.TraceCommit, beacon []byte, solver peer.ID, r *wire.AuditReport) (bool, string, error) {
	if c.cfg.Keys == nil {
		return false, "", errors.New("no zk verifying keys to referee a confidential audit")
	}
	z, err := zkchallenge.ZKTraceOf(s, zkEntries(t.ZKEntries))
	if err != nil {
		return false, "", err
	}
	count, err := zkchallenge.Count(s)
	if err != nil {
		return false, "", err
	}
	chs, err := zkchallenge.Challenges(s, t.TraceRoot, z.Root(), beacon, count)
	if err != nil {
		return false, "", err
	}
	i := slices.IndexFunc(chs, func(ch zkchallenge.Challenge) bool { return ch.Step == r.FirstBadStep })
	if i < 0 {
		return false, fmt.Sprintf("step %d was not challenged", r.FirstBadStep), nil
	}
	ch := chs[i]
	// Again, in case the first beacon was lost: the solver must not lose a
	// dispute to a lost message.
	c.sendBeacon(ctx, id, solver, beacon)
	req := &wire.ProofRequest{Step: ch.Step, Layer: ch.Layer, Row: ch.Row, Col: ch.Col}
	m, err := c.P2P.Request(ctx, solver, wire.ProofProtocol, id, req, wire.TypeProof)
	solverLoses, why := true, ""
	switch {
	case err != nil:
		why = fmt.Sprintf("the solver did not answer for %v: %v", ch, err)
	case m.(*wire.Proof).Error != "":
		why = fmt.Sprintf("the solver could not prove %v: %s", ch, m.(*wire.Proof).Error)
	default:
		if err := prover.VerifyTile(c.cfg.Keys, s, z, ch, m.(*wire.Proof).Proof); err != nil {
			why = fmt.Sprintf("the solver's proof of %v is invalid: %v", ch, err)
		} else {
			solverLoses, why = false, fmt.Sprintf("the solver's proof of %v is valid", ch)
		}
	}
	c.event("job %s: zk referee: %s", short(id), why)
	return solverLoses, why, nil
}

// addrsOf returns the multiaddrs at which peers are reached: those they
// advertised in their Hello and the circuits through our relay.
func (c *Node) addrsOf(ps []peer.ID) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrsLocked(ps)
}

func (c *Node) addrsLocked(ps []peer.ID) []string {
	var out []string
	for _, p := range ps {
		q := c.peers[p]
		if q == nil {
			continue
		}
		// Its own addresses, then the circuits through this node's relay:
		// a peer behind NAT is dialed there (its reservation is ours).
		as := append(append([]string(nil), q.Hello.Addrs...), c.P2P.CircuitAddrs(p)...)
		if len(out)+len(as) <= wire.MaxAddrs {
			out = append(out, as...)
		}
	}
	return out
}
