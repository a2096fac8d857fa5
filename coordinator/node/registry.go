package node

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

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
}

// PartyID is the ledger party of a peer: a short, stable digest of its ID
// (party IDs are at most 14 characters). A verifier is enrolled by an API
// key of the verifier role whose subject is its PartyID.
func PartyID(role wire.Role, id peer.ID) string {
	h := sha256.Sum256([]byte(id))
	p := "s"
	if role == wire.RoleVerifier {
		p = "v"
	}
	return p + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:])[:12])
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

func (c *Node) hello(ctx context.Context, from peer.ID, h *wire.Hello) error {
	party := PartyID(h.Role, from)
	enrolled := false
	if h.Role == wire.RoleVerifier {
		ok, err := c.svc.Enrolled(ctx, party)
		if err != nil {
			return err
		}
		enrolled = ok
	}
	c.mu.Lock()
	p := c.peers[from]
	if p == nil || p.Role != h.Role {
		p = &Peer{ID: from, Party: party, Role: h.Role}
		c.peers[from] = p
	}
	p.Hello, p.LastSeen, p.Enrolled = *h, time.Now(), enrolled
	if h.Role == wire.RoleVerifier && enrolled {
		// Audits waiting for a verifier try again now.
		for _, j := range c.jobs {
			j.nextAssign = time.Time{}
		}
	}
	c.mu.Unlock()
	if h.Role == wire.RoleSolver {
		c.log.Info("solver joined", "peer", shortPeer(from), "party", party, "backend", h.Backend, "ask_micro_usd_per_cu", h.AskMicroUSDPerUnit)
		c.spawn(func(ctx context.Context) { c.ask(ctx, from) })
		return nil
	}
	if !enrolled {
		// It may stay and say hello again once enrolled; it gets no audit
		// and holds no replica until then.
		c.log.Warn("verifier joined unenrolled", "peer", shortPeer(from), "party", party)
		return nil
	}
	c.log.Info("verifier joined", "peer", shortPeer(from), "party", party)
	c.wake()
	return nil
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
		j.lossQ16 = h.LossQ16 // the client's progress (progress.go)
	}
	return nil
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
