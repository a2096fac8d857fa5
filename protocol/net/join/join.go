// Package join keeps a solver or verifier daemon registered with its
// coordinator: it connects and says hello, retrying with exponential
// backoff while the coordinator cannot be reached (a daemon started
// before its coordinator waits instead of exiting), and says hello again
// whenever the registration may have been lost — the connection to the
// coordinator dropped (a coordinator restart, a network cut), or the
// coordinator answered a request with SayHello (it no longer knows the
// peer). A coordinator that answers and refuses the hello is final.
//
// It also holds what both roles must agree on about registration: the
// ledger party a peer ID stands for (PartyID), and the way a coordinator
// that accepts a hello says why the peer gets no work yet (Notice).
package join

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/multiformats/go-multiaddr"

	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// SayHello is in the error a coordinator answers a peer it does not know
// (a heartbeat after the coordinator restarted): the peer must say hello
// again. IsUnregistered finds it.
const SayHello = "peer not registered: say hello again"

// IsUnregistered reports whether err is a coordinator's answer that it
// does not know the peer.
func IsUnregistered(err error) bool {
	return err != nil && errors.Is(err, p2p.ErrRemote) && strings.Contains(err.Error(), SayHello)
}

// PartyID is the ledger party of a peer in a role: a short, stable digest
// of its peer ID ("s" or "v" and 12 base32 letters; party IDs are at most
// 14 characters). The coordinator books the peer's bond, jobs and
// earnings under it; the operator issues the peer's API key for it.
func PartyID(role wire.Role, id peer.ID) string {
	h := sha256.Sum256([]byte(id))
	p := "s"
	if role == wire.RoleVerifier {
		p = "v"
	}
	return p + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:])[:12])
}

// Notice is why a coordinator that accepted a hello gives the peer no
// work yet ("" when it can work): the text of the hello's Ack, which is
// OK.
func Notice(ack wire.Message) string {
	if a, ok := ack.(*wire.Ack); ok && a.OK {
		return a.Error
	}
	return ""
}

// Events (messages of the slog records a Member logs).
const (
	// EventJoined: the hello was accepted (Info; "coordinator",
	// "attempts", "rejoin", and "notice" when the coordinator gives the
	// peer no work yet, logged at Warn).
	EventJoined = "joined the coordinator"
	// EventUnreachable: an attempt failed; another follows (Warn;
	// "attempt", "retry_in", "err").
	EventUnreachable = "coordinator unreachable, retrying"
	// EventLost: the registration may be lost; the member says hello
	// again (Warn; "why").
	EventLost = "lost the coordinator, registering again"
)

// Config configures a Member.
type Config struct {
	// Addr is the coordinator's full multiaddr (with /p2p/ID).
	Addr string
	// Hello returns the hello to send (called at each attempt: the
	// peer's addresses may have changed).
	Hello func() *wire.Hello
	// MaxBackoff is the longest wait between attempts (default 30 s; the
	// first retry is after 250 ms).
	MaxBackoff time.Duration
	// Logger receives the events (default: discarded).
	Logger *slog.Logger
	// Joined, if set, is called after each accepted hello with the
	// coordinator's notice (see Notice).
	Joined func(notice string)
}

// Member is a peer's registration with its coordinator.
type Member struct {
	n     *p2p.Node
	cfg   Config
	coord peer.ID
	log   *slog.Logger
	lost  chan struct{}

	mu     sync.Mutex
	notice string
	joins  int
	ready  bool // registered: joined, and not lost since
}

// ErrCoordinatorAddr: the coordinator address is not a multiaddr ending
// in /p2p/<peer ID>.
var ErrCoordinatorAddr = errors.New("the coordinator address must be a multiaddr ending in /p2p/<peer ID>, as the coordinator prints it")

// Coordinator is the peer ID a coordinator multiaddr ends with.
func Coordinator(addr string) (peer.ID, error) {
	ma, err := multiaddr.NewMultiaddr(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrCoordinatorAddr, addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(ma)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrCoordinatorAddr, addr, err)
	}
	return ai.ID, nil
}

// New returns a member of the coordinator at cfg.Addr, not yet joined.
func New(n *p2p.Node, cfg Config) (*Member, error) {
	coord, err := Coordinator(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Member{n: n, cfg: cfg, coord: coord, log: cfg.Logger, lost: make(chan struct{}, 1)}, nil
}

// CoordinatorID is the coordinator's peer ID.
func (m *Member) CoordinatorID() peer.ID { return m.coord }

// Notice is the coordinator's answer to the last accepted hello: why the
// peer gets no work yet, or "".
func (m *Member) Notice() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notice
}

// Joins counts the accepted hellos.
func (m *Member) Joins() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joins
}

// Ready reports whether the member is registered: its last hello was
// accepted and it has not been lost since. Messages about a job sent while
// it is not would reach a coordinator that does not know the job is this
// peer's (and count against it).
func (m *Member) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ready
}

// Lost tells the member its registration may be lost (a request answered
// with SayHello, heartbeats failing): Keep says hello again. It never
// blocks.
func (m *Member) Lost() {
	m.mu.Lock()
	m.ready = false
	m.mu.Unlock()
	select {
	case m.lost <- struct{}{}:
	default:
	}
}

// Join connects and says hello, retrying with backoff until the hello is
// accepted, the coordinator refuses it, or ctx ends.
func (m *Member) Join(ctx context.Context) error {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if b, ok := m.n.Host.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
			// This loop paces the retries; libp2p's own dial backoff
			// (5 s and up) would refuse them unseen.
			b.Backoff().Clear(m.coord)
		}
		_, err := m.n.Connect(ctx, m.cfg.Addr)
		var ack wire.Message
		if err == nil {
			ack, err = m.n.Request(ctx, m.coord, wire.ControlProtocol, [32]byte{}, m.cfg.Hello(), wire.TypeAck)
			if errors.Is(err, p2p.ErrRemote) {
				return fmt.Errorf("the coordinator refused this peer: %w", err)
			}
		}
		if err == nil {
			m.mu.Lock()
			m.notice = Notice(ack)
			m.joins++
			m.ready = true
			rejoin := m.joins > 1
			m.mu.Unlock()
			attrs := []any{"coordinator", shortPeer(m.coord), "attempts", attempt, "rejoin", rejoin}
			if n := Notice(ack); n != "" {
				m.log.Warn(EventJoined, append(attrs, "notice", n)...)
			} else {
				m.log.Info(EventJoined, attrs...)
			}
			if m.cfg.Joined != nil {
				m.cfg.Joined(Notice(ack))
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("join the coordinator: %w", err)
		}
		m.log.Warn(EventUnreachable, "coordinator", shortPeer(m.coord), "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("join the coordinator: %w", err)
		case <-t.C:
		}
		wait = min(2*wait, m.cfg.MaxBackoff)
	}
}

// Keep says hello again whenever the connection to the coordinator drops
// or Lost is called, until ctx ends. A coordinator that refuses the hello
// ends it with the error.
func (m *Member) Keep(ctx context.Context) error {
	nb := &network.NotifyBundle{DisconnectedF: func(nw network.Network, c network.Conn) {
		if c.RemotePeer() == m.coord && nw.Connectedness(m.coord) != network.Connected {
			m.Lost()
		}
	}}
	m.n.Host.Network().Notify(nb)
	defer m.n.Host.Network().StopNotify(nb)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.lost:
		}
		why := "connection closed"
		if m.n.Host.Network().Connectedness(m.coord) == network.Connected {
			why = "the coordinator does not know this peer"
		}
		m.log.Warn(EventLost, "coordinator", shortPeer(m.coord), "why", why)
		if err := m.Join(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// shortPeer is the short form of a peer ID the logs use.
func shortPeer(p peer.ID) string {
	s := p.String()
	if len(s) <= 8 {
		return s
	}
	return s[:2] + "*" + s[len(s)-6:]
}
