// Package node is the coordinator's libp2p side, beside its HTTP API: the
// host solvers and verifiers join (and can use as a relay), the registry
// of peers and their advertised capacity, the index of who holds which
// checkpoint, job assignment through the market (coordinator/service),
// audits with beacons drawn only after a solver's trace is committed,
// reassignment of silent verifiers and vanished solvers, disputes refereed
// one operator at a time (protocol/core/dispute) before a bond is slashed,
// and the deadline that ends every job.
//
// The package is split by concern: registry.go (peers and parties),
// assign.go (offers, matching, running jobs, trace commits), replicate.go
// (checkpoint replicas), audit.go (auditor draw, reports, outcomes),
// dispute.go and referee.go (failed audits), timeouts.go (the clock:
// heartbeats, audit deadlines, job deadlines) and recover.go (jobs in
// flight after a restart).
//
// # Security
//
// Every message is a signed envelope (protocol/net/wire) checked by
// protocol/net/p2p; the registry keys peers by their peer ID, so a report
// or a trace counts only from the peer the job or audit was given to. A
// peer's ledger party is derived from its peer ID (PartyID), as for
// solvers, whose bonds are locked when they are matched.
//
// A verifier audits only when enrolled and bonded: the operator enrols it
// by issuing it an API key of the verifier role for its party ID (POST
// /v1/keys with subject PartyID(verifier, peer ID) — the signed Hello
// proves the peer ID, so the key is bound to it), and the service locks
// the verifier's bond (service.VerifierBond: at least the audit plan's
// deterrent bond for the job) into the job's escrow when the audit is
// assigned (service.AssignAudit). The auditor is drawn with the job's
// beacon, which comes from crypto/rand after the trace root is recorded:
// candidates are ranked by SHA-256(beacon ‖ job ‖ party), so no choice of
// key puts a verifier first. A report counts only from the current
// auditor; settlement pays only a verifier whose bond is locked for the
// job. A failed audit slashes nobody by itself: the referee decides from
// the parties' answers, and whoever loses is slashed.
//
// # Every job ends
//
// Every job reaches a terminal state (settled, adjudicated_cheat,
// cancelled or expired) at most Config.JobTimeout (default 24 h) plus one
// tick (Config.Tick, default 1 s) after it was posted, whatever any one
// party does:
//
//   - a solver that stops heartbeating for HeartbeatTimeout loses the job,
//     which is matched again from its last replicated checkpoint;
//   - a verifier that has not reported AuditTimeout after its assignment
//     loses the audit to the next bonded verifier in the beacon's order,
//     and its bond is released; a verifier that enrols or joins later
//     audits jobs still waiting;
//   - a verifier whose accusation the referee rejects (or that does not
//     answer the referee) is slashed, and the audit goes to another;
//   - a dispute is bounded by the job's deadline;
//   - and a job still not over at its deadline (nobody took it, nobody
//     audited it, the client never came back) expires: the escrow goes back
//     to the client and every bond is released (service.Expire).
//
// The deadline is posting time plus JobTimeout, from the service's durable
// record, so it survives restarts: New recovers the jobs in flight from the
// service (and the traces and beacons this package stored beside them),
// puts jobs that were running back on the market, resumes audits and
// disputes, and expires jobs whose deadline passed while it was down.
//
// # Lifecycle
//
// New starts the node; Close stops it and waits for everything it
// started. Every goroutine of the package belongs to the node's group and
// runs under its root context; handlers of incoming requests are counted
// too, so that when Close returns nothing of the node runs.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Defaults of Config.
const (
	DefaultAuditTimeout     = 30 * time.Second
	DefaultHeartbeatTimeout = 10 * time.Second
	DefaultJobTimeout       = 24 * time.Hour
	DefaultTick             = time.Second
	// DefaultRetention: how long a finished job stays in the node's memory.
	DefaultRetention = time.Hour
)

// Config configures a Node.
type Config struct {
	Service *service.Service
	// AuditTimeout: a verifier that has not reported by then loses the
	// audit to another (default 30 s; confidential jobs get more per
	// challenged tile).
	AuditTimeout time.Duration
	// HeartbeatTimeout: a solver silent for this long while running a job
	// has vanished; the job is offered again (default 10 s).
	HeartbeatTimeout time.Duration
	// JobTimeout bounds a job's life: a job not over JobTimeout after it
	// was posted expires (default 24 h). It must exceed the longest job's
	// training and audit.
	JobTimeout time.Duration
	// Tick is how often the node checks heartbeats and deadlines (default
	// 1 s, at most a quarter of the shortest timeout).
	Tick time.Duration
	// Retention: a finished job's outcome stays in memory this long, then
	// the node forgets the job (default 1 h); the service keeps its record,
	// from which AwaitOutcome still answers. Memory thus holds the jobs in
	// flight and those finished within Retention, whatever the node's age.
	Retention time.Duration
	// Logger receives the node's events (default: discarded).
	Logger *slog.Logger
	// Keys holds the zk verifying keys (prover.Keyring) with which the
	// coordinator referees failed confidential audits; nil: confidential
	// jobs are not accepted.
	Keys *prover.Keyring
}

// Node is the coordinator node.
type Node struct {
	P2P *p2p.Node
	cfg Config
	svc *service.Service
	log *slog.Logger

	// ctx is the root context: cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
	// life guards closed; group owns every goroutine the node starts and
	// handlers counts the requests being handled.
	life     sync.Mutex
	closed   bool
	group    errgroup.Group
	handlers sync.WaitGroup
	// kick wakes the clock loop early (a verifier joined, an audit opened).
	kick chan struct{}

	mu    sync.Mutex
	peers map[peer.ID]*Peer
	jobs  map[spec.JobID]*job
	// finished is closed and replaced whenever a job ends (see
	// AwaitOutcome): a notification that never blocks the ending job.
	finished chan struct{}
}

// controlTypes are the messages peers send the coordinator.
var controlTypes = []wire.Type{wire.TypeHello, wire.TypeHeartbeat, wire.TypeCheckpointAnnounce, wire.TypeTraceCommit, wire.TypeAuditReport}

// New starts serving on n: it recovers the jobs in flight from the
// service, then handles peers and runs the clock until Close.
func New(n *p2p.Node, cfg Config) (*Node, error) {
	if cfg.Service == nil {
		return nil, ErrNoService
	}
	if cfg.AuditTimeout <= 0 {
		cfg.AuditTimeout = DefaultAuditTimeout
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	cfg.Tick = min(cfg.Tick, cfg.AuditTimeout/4, cfg.HeartbeatTimeout/4, cfg.JobTimeout/4)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Node{P2P: n, cfg: cfg, svc: cfg.Service, log: cfg.Logger, ctx: ctx, cancel: cancel,
		kick: make(chan struct{}, 1), peers: map[peer.ID]*Peer{}, jobs: map[spec.JobID]*job{}, finished: make(chan struct{})}
	if n.PubSub != nil {
		if _, err := n.Join(wire.JobsTopic, wire.TypeJobOffer); err != nil {
			cancel()
			return nil, err
		}
		if _, err := n.Join(wire.AuditsTopic, wire.TypeAuditTask); err != nil {
			cancel()
			return nil, err
		}
	}
	if err := c.recover(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("node: recover jobs: %w", err)
	}
	n.Handle(wire.ControlProtocol, c.control, controlTypes...)
	c.serveData()
	c.spawn(c.clock)
	return c, nil
}

// spawn runs f in the node's group under its root context, unless the
// node is closed.
func (c *Node) spawn(f func(ctx context.Context)) bool {
	c.life.Lock()
	defer c.life.Unlock()
	if c.closed {
		return false
	}
	c.group.Go(func() error {
		f(c.ctx)
		return nil
	})
	return true
}

// enter counts a request being handled; false once the node is closed.
func (c *Node) enter() bool {
	c.life.Lock()
	defer c.life.Unlock()
	if c.closed {
		return false
	}
	c.handlers.Add(1)
	return true
}

func (c *Node) leave() { c.handlers.Done() }

// Close stops the node: no more requests are handled, everything the node
// started is cancelled, and Close returns when all of it has returned.
// Jobs stay where the service has them; a new Node over the same service
// picks them up. Close is idempotent.
func (c *Node) Close() error {
	c.life.Lock()
	already := c.closed
	c.closed = true
	c.life.Unlock()
	if !already {
		c.P2P.Host.RemoveStreamHandler(protocol.ID(wire.ControlProtocol))
		c.cancel()
	}
	return c.Wait()
}

// Wait blocks until the node is closed and everything it started has
// returned.
func (c *Node) Wait() error {
	<-c.ctx.Done()
	c.handlers.Wait()
	return c.group.Wait()
}

// Done is closed when the node is closed.
func (c *Node) Done() <-chan struct{} { return c.ctx.Done() }

// wake asks the clock loop to run now.
func (c *Node) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func short(id spec.JobID) string { return id.String()[:12] }

func (c *Node) control(_ context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
	if !c.enter() {
		return r.Reply(&wire.Ack{Error: ErrClosed.Error()})
	}
	defer c.leave()
	ctx := c.ctx
	var err error
	var notice string // why a registered peer gets no work (join.Notice)
	switch m := m.(type) {
	case *wire.Hello:
		notice, err = c.hello(ctx, e.Sender, m)
	case *wire.Heartbeat:
		err = c.heartbeat(ctx, e, m)
	case *wire.CheckpointAnnounce:
		err = c.announce(ctx, e, m)
	case *wire.TraceCommit:
		err = c.traceCommit(ctx, e, m)
	case *wire.AuditReport:
		err = c.report(ctx, e, m)
	}
	if err != nil {
		// Refusals of a well-formed request are not misbehaviour worth a
		// strike unless the peer claimed what it is not.
		if errors.Is(err, ErrNotYours) {
			c.P2P.Reject(e.Sender, err)
		}
		return r.Reply(&wire.Ack{Error: err.Error()})
	}
	err = r.Reply(&wire.Ack{OK: true, Error: notice})
	if _, ok := m.(*wire.AuditReport); ok {
		// A report may have ended its job: say so now that the verifier
		// has its answer.
		c.announceEnds()
	}
	return err
}
