package node

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
)

// Peer is a registered solver or verifier.
type Peer struct {
	ID       peer.ID
	Party    string // ledger party ID
	Role     wire.Role
	Hello    wire.Hello
	LastSeen time.Time
	Busy     bool
	// Enrolled: a verifier whose party held a verifier key when it said
	// hello (the service checks again when it is given an audit).
	Enrolled bool
	// Paused: a solver whose heartbeats say its machine's owner is back:
	// its ask is withdrawn and it is given no job until it says it is idle
	// again.
	Paused bool
	// NeedsBond: a solver or verifier whose free bond was below the
	// minimum when it said hello: a solver is not asked for, and a verifier
	// is given no checkpoint replica, until a bond deposit arrives
	// (BondArrived).
	NeedsBond bool
	// Notice is why the peer gets no work, as its hello was answered (""
	// when it can work).
	Notice string
}

// available reports whether the solver may be asked for work now.
func (p *Peer) available() bool {
	return p.Role == wire.RoleSolver && !p.Busy && !p.Paused && !p.NeedsBond
}

// ErrUnregistered answers a peer the node does not know (it restarted, or
// dropped the peer): the peer must say hello again (join.IsUnregistered).
var ErrUnregistered = errors.New(join.SayHello)

// PartyID is the ledger party of a peer: a short, stable digest of its ID
// (join.PartyID). A verifier is enrolled by an API key of the verifier
// role whose subject is its PartyID.
func PartyID(role wire.Role, id peer.ID) string { return join.PartyID(role, id) }

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

// notice says why a peer of party in role gets no work, or "": a solver
// without the minimum free bond, a verifier not enrolled or below its
// bond. needsBond is the solver's case.
func (c *Node) notice(ctx context.Context, role wire.Role, party string) (notice string, needsBond, enrolled bool, err error) {
	var r service.PartyRole = service.PartySolver
	if role == wire.RoleVerifier {
		r = service.PartyVerifier
	}
	f, err := c.svc.Shortfall(ctx, party, r)
	if err != nil {
		return "", false, false, err
	}
	enrolled = role == wire.RoleVerifier && !f.NotEnrolled
	why := f.Reasons()
	if len(why) == 0 {
		return "", f.NeedsBond(), enrolled, nil
	}
	return "no work for party " + party + " yet: " + strings.Join(why, "; "), f.NeedsBond(), enrolled, nil
}

// hello registers a solver or verifier. It answers why the peer gets no
// work yet, if it does not (join.Notice): a solver without a bond stays
// registered and is asked for as soon as its bond arrives.
func (c *Node) hello(ctx context.Context, from peer.ID, h *wire.Hello) (string, error) {
	party := PartyID(h.Role, from)
	notice, needsBond, enrolled, err := c.notice(ctx, h.Role, party)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	p := c.peers[from]
	if p == nil || p.Role != h.Role {
		p = &Peer{ID: from, Party: party, Role: h.Role}
		c.peers[from] = p
	}
	p.Hello, p.LastSeen, p.Enrolled, p.NeedsBond, p.Notice = *h, time.Now(), enrolled, needsBond, notice
	// A peer that says hello again (after a restart of either side) is
	// running nothing of ours unless a job here names it.
	p.Busy = c.runningLocked(from)
	if h.Role == wire.RoleVerifier && enrolled {
		// Audits waiting for a verifier try again now.
		for _, j := range c.jobs {
			j.nextAssign = time.Time{}
		}
	}
	available := p.available()
	c.mu.Unlock()
	if h.Role == wire.RoleSolver {
		attrs := []any{"peer", shortPeer(from), "party", party, "backend", h.Backend, "ask_nano_usd_per_cu", h.AskNanoUSDPerCU}
		if needsBond {
			c.log.Warn("solver joined without a bond: no work until it arrives", append(attrs, "notice", notice)...)
			return notice, nil
		}
		c.log.Info("solver joined", attrs...)
		if available {
			c.spawn(func(ctx context.Context) { c.ask(ctx, from) })
		}
		return notice, nil
	}
	if !enrolled {
		// It may stay and say hello again once enrolled; it gets no audit
		// and holds no replica until then.
		c.log.Warn("verifier joined unenrolled", "peer", shortPeer(from), "party", party, "notice", notice)
		return notice, nil
	}
	c.log.Info("verifier joined", "peer", shortPeer(from), "party", party, "notice", notice)
	c.wake()
	return notice, nil
}

// runningLocked reports whether a job in flight here runs on p.
func (c *Node) runningLocked(p peer.ID) bool {
	for _, j := range c.jobs {
		if j.solver == p && j.trace == nil && j.outcome == nil {
			return true
		}
	}
	return false
}

// BondArrived tells the node that party's bond account was credited (a
// deposit through the API): a solver of that party waiting for its bond
// is asked for work, and audits waiting for a bonded verifier are tried
// again.
func (c *Node) BondArrived(party string) {
	c.spawn(func(ctx context.Context) { c.refresh(ctx, party) })
}

// Enrolled tells the node that party may have been enrolled (an API key
// was issued for it): a verifier of that party is checked again.
func (c *Node) Enrolled(party string) { c.BondArrived(party) }

// refresh checks the registered peers of party again and puts those that
// can now work to work.
func (c *Node) refresh(ctx context.Context, party string) {
	c.mu.Lock()
	var ids []peer.ID
	for id, p := range c.peers {
		if p.Party == party {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.mu.Lock()
		p := c.peers[id]
		if p == nil {
			c.mu.Unlock()
			continue
		}
		role := p.Role
		c.mu.Unlock()
		notice, needsBond, enrolled, err := c.notice(ctx, role, party)
		if err != nil {
			c.log.Warn("checking a party's bond", "party", party, "err", err)
			continue
		}
		c.mu.Lock()
		if p = c.peers[id]; p == nil {
			c.mu.Unlock()
			continue
		}
		was := p.NeedsBond
		p.NeedsBond, p.Notice, p.Enrolled = needsBond, notice, enrolled
		if role == wire.RoleVerifier {
			for _, j := range c.jobs {
				j.nextAssign = time.Time{}
			}
		}
		available := p.available()
		c.mu.Unlock()
		switch {
		case role == wire.RoleVerifier:
			c.log.Info("verifier status changed", "peer", shortPeer(id), "party", party, "enrolled", enrolled, "notice", notice)
			c.wake()
		case was && !needsBond:
			c.log.Info("solver bond arrived: asking for work", "peer", shortPeer(id), "party", party)
			if available {
				c.ask(ctx, id)
			}
		}
	}
}

func (c *Node) heartbeat(ctx context.Context, e *wire.Envelope, h *wire.Heartbeat) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[e.Sender]
	if p == nil {
		// This node does not know the peer (it restarted, or dropped the
		// peer): the peer must say hello again.
		return ErrUnregistered
	}
	p.LastSeen = time.Now()
	if p.Role == wire.RoleSolver {
		c.pauseLocked(p, h.State == wire.StatePaused)
	}
	if e.Job == ([32]byte{}) {
		if h.State == wire.StateIdle && p.Busy && !c.runningLocked(p.ID) {
			// Idle again after a job it was refused or that was taken
			// from it.
			p.Busy = false
			if p.available() {
				c.spawn(func(ctx context.Context) { c.ask(ctx, p.ID) })
			}
		}
		return nil
	}
	j, err := c.jobOf(e)
	if err != nil {
		return err
	}
	if j.solver == e.Sender {
		j.step, j.lastBeat = h.Step, time.Now()
		j.lossQ16 = h.LossQ16 // the client's progress (progress.go)
		j.noteLoss(h.Step, h.LossQ16)
		if h.Backend != "" && h.Backend != j.backend {
			// Where the job's runner actually trains, when it is not
			// what the hello said: the record is corrected.
			j.backend = h.Backend
			id, party, backend := spec.JobID(e.Job), p.Party, h.Backend
			c.spawn(func(ctx context.Context) {
				if err := c.svc.SetBackend(ctx, id.String(), party, backend); err != nil {
					c.log.Warn("recording the job's backend", jobAttr(id), "backend", backend, "err", err)
					return
				}
				c.log.Info("job backend", jobAttr(id), "party", party, "backend", backend)
			})
		}
	}
	return nil
}

// pauseLocked records whether the solver p is paused (its machine's owner
// is back): a paused solver's ask is withdrawn, and an unpaused one is
// asked for work again.
func (c *Node) pauseLocked(p *Peer, paused bool) {
	if p.Paused == paused {
		return
	}
	p.Paused = paused
	id, party := p.ID, p.Party
	if paused {
		c.log.Info("solver paused: its offer is withdrawn", "peer", shortPeer(id), "party", party)
		c.spawn(func(ctx context.Context) {
			if _, err := c.svc.WithdrawAsk(ctx, party); err != nil {
				c.log.Warn("withdrawing a paused solver's ask", "peer", shortPeer(id), "err", err)
			}
		})
		return
	}
	c.log.Info("solver resumed: asking for work", "peer", shortPeer(id), "party", party)
	if p.available() {
		c.spawn(func(ctx context.Context) { c.ask(ctx, id) })
	}
}

// declined puts back a job its solver refused (it was paused or busy when
// the assignment came): the solver stays registered, is not asked again
// until its heartbeats say it is idle, and the job goes back to the
// market.
func (c *Node) declined(ctx context.Context, id spec.JobID, solver peer.ID, why error) {
	c.mu.Lock()
	if j := c.jobs[id]; j != nil && j.solver == solver {
		j.solver = ""
	}
	if p := c.peers[solver]; p != nil {
		p.Busy = true
	}
	c.mu.Unlock()
	c.log.Info("solver declined the job", jobAttr(id), "peer", shortPeer(solver), "why", why)
	rec, err := c.svc.Vanish(ctx, id.String())
	if err != nil {
		c.log.Warn("job vanish", jobAttr(id), "err", err)
		return
	}
	c.rematch(ctx, rec)
}

func containsPeer(ps []peer.ID, p peer.ID) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
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

// shortPeer is a peer's short form for logs ("12*abcdef").
func shortPeer(p peer.ID) string {
	return strings.TrimSuffix(strings.TrimPrefix(p.ShortString(), "<peer.ID "), ">")
}

// jobAttr is a job's ID as a log attribute (its first 12 hex digits).
func jobAttr(id spec.JobID) slog.Attr { return slog.String("job", short(id)) }
