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
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/prover"
	"github.com/beluga-compute/beluga/spec"
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
