// Package p2p is a Beluga node's libp2p side: a host (TCP, TLS 1.3,
// yamux), its signing identity, request/response over streams carrying
// signed envelopes (protocol/net/wire), gossipsub topics whose validators
// verify envelopes, and a limiter that cuts off peers that misbehave.
//
// # Security
//
// Every incoming envelope is opened (signature, type, size) and checked
// against the node's replay guard before a handler sees it; the envelope's
// signer must be the stream's remote peer. A peer whose message fails any
// check is logged with the reason (a structured event, EventRejected), its
// stream is reset, and it gets a strike; at MaxStrikes it is disconnected and refused (connection gater)
// for BanFor. Nothing else is disturbed: other peers' streams and the
// node's state are untouched. The coordinator can be allowlisted so that
// a node never bans it.
package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/multiformats/go-multiaddr"

	"github.com/beluga-compute/beluga/protocol/net/pb"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// Defaults.
const (
	// RelayDuration and RelayData bound one connection relayed through a
	// node with WithRelayService.
	RelayDuration = 30 * time.Minute
	RelayData     = 256 << 20

	MaxStrikes     = 3
	BanFor         = 10 * time.Minute
	RequestTimeout = 30 * time.Second
)

// ErrRemote: the remote peer answered with an error.
var ErrRemote = errors.New("p2p: remote error")

// The node's log events (messages of its slog records). Every one carries
// the attribute "peer"; EventRejected also "reason" and, for gossip,
// "topic"; EventLimited "ban"; EventHandlerFailed "protocol" and "err".
const (
	// EventRejected: a peer sent a message that failed a check (Warn).
	EventRejected = "p2p: message rejected"
	// EventLimited: a peer reached MaxStrikes and is refused for BanFor
	// (Warn).
	EventLimited = "p2p: peer limited"
	// EventHandlerFailed: a request handler returned an error and the
	// stream was reset (Info: the peer did nothing wrong).
	EventHandlerFailed = "p2p: request failed"
)

// Option configures a Node.
type Option func(*config)

type config struct {
	key    crypto.PrivKey
	listen []string
	log    *slog.Logger
	relay  bool
	allow  []peer.ID
	pubsub bool
	relays []string
	nat    bool
}

// WithKey sets the node's identity (default: a fresh ed25519 key).
func WithKey(k crypto.PrivKey) Option { return func(c *config) { c.key = k } }

// WithListen sets the listen addresses (default /ip4/127.0.0.1/tcp/0).
func WithListen(addrs ...string) Option { return func(c *config) { c.listen = addrs } }

// WithLogger receives the node's events (EventRejected, EventLimited,
// EventHandlerFailed); the default discards them. A nil logger is ignored.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithRelayService makes the node a circuit relay v2 for others (the
// coordinator does this for solvers behind NAT).
func WithRelayService() Option { return func(c *config) { c.relay = true } }

// WithAllow exempts peers (the coordinator) from strikes.
func WithAllow(ids ...peer.ID) Option { return func(c *config) { c.allow = append(c.allow, ids...) } }

// WithRelays makes the node reachable behind NAT: it keeps a reservation
// on these circuit relay v2 nodes (full multiaddrs, the coordinator's) and
// advertises the relayed addresses, maps ports with UPnP/NAT-PMP where the
// router allows, and upgrades relayed connections to direct ones by hole
// punching (DCUtR).
func WithRelays(addrs ...string) Option {
	return func(c *config) { c.relays = append(c.relays, addrs...) }
}

// WithBehindNAT tells the node it is not publicly reachable (instead of
// waiting for AutoNAT to find out), so that it takes relay reservations at
// once.
func WithBehindNAT() Option { return func(c *config) { c.nat = true } }

// WithPubSub starts gossipsub on the node.
func WithPubSub() Option { return func(c *config) { c.pubsub = true } }

// Node is a Beluga libp2p node.
type Node struct {
	Host   host.Host
	PubSub *pubsub.PubSub
	key    crypto.PrivKey
	seq    atomic.Uint64
	guard  *wire.Guard
	lim    *limiter
	log    *slog.Logger

	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	relay  bool
}

// New starts a node.
func New(ctx context.Context, opts ...Option) (*Node, error) {
	c := config{listen: []string{"/ip4/127.0.0.1/tcp/0"}, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	if c.key == nil {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			return nil, err
		}
		c.key = k
	}
	lim := newLimiter(c.allow)
	lo := []libp2p.Option{
		libp2p.Identity(c.key),
		libp2p.ListenAddrStrings(c.listen...),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionGater(lim),
		libp2p.DisableMetrics(),
	}
	if c.relay {
		// A relayed connection carries what a fetch from a peer behind NAT
		// needs (a checkpoint, a proof) while hole punching tries to make
		// it direct; libp2p's default of 128 KiB and 2 minutes would cut a
		// checkpoint short.
		lo = append(lo, libp2p.EnableRelayService(relayv2.WithLimit(&relayv2.RelayLimit{Duration: RelayDuration, Data: RelayData})),
			libp2p.ForceReachabilityPublic())
	}
	if len(c.relays) > 0 {
		var relays []peer.AddrInfo
		for _, a := range c.relays {
			ma, err := multiaddr.NewMultiaddr(a)
			if err != nil {
				return nil, fmt.Errorf("p2p: relay %q: %w", a, err)
			}
			ai, err := peer.AddrInfoFromP2pAddr(ma)
			if err != nil {
				return nil, fmt.Errorf("p2p: relay %q: %w", a, err)
			}
			relays = append(relays, *ai)
		}
		lo = append(lo, libp2p.EnableAutoRelayWithStaticRelays(relays), libp2p.EnableHolePunching(), libp2p.NATPortMap())
	}
	if c.nat {
		lo = append(lo, libp2p.ForceReachabilityPrivate())
	}
	h, err := libp2p.New(lo...)
	if err != nil {
		return nil, err
	}
	n := &Node{Host: h, key: c.key, guard: wire.NewGuard(), lim: lim, log: c.log, topics: map[string]*pubsub.Topic{}, relay: c.relay}
	// The sequence starts at the clock so a restarted node does not reuse
	// numbers its peers have seen (the guard itself trusts no clock).
	n.seq.Store(uint64(time.Now().UnixNano()))
	if c.pubsub {
		if n.PubSub, err = pubsub.NewGossipSub(ctx, h); err != nil {
			h.Close()
			return nil, err
		}
	}
	return n, nil
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.Host.ID() }

// Addrs returns the node's full multiaddrs (with /p2p/ID).
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.Host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.ID().String())
	}
	return out
}

// CircuitAddrs returns the addresses at which p is reached through this
// node's relay service (none if it runs none): for a peer behind NAT that
// holds a reservation here, the only addresses other peers can dial.
func (n *Node) CircuitAddrs(p peer.ID) []string {
	if !n.relay {
		return nil
	}
	var out []string
	for _, a := range n.Addrs() {
		out = append(out, a+"/p2p-circuit/p2p/"+p.String())
	}
	return out
}

// Close stops the node.
func (n *Node) Close() error { return n.Host.Close() }

// Connect dials a peer by one of its full multiaddrs.
func (n *Node) Connect(ctx context.Context, addr string) (peer.ID, error) {
	ma, err := multiaddr.NewMultiaddr(addr)
	if err != nil {
		return "", err
	}
	ai, err := peer.AddrInfoFromP2pAddr(ma)
	if err != nil {
		return "", err
	}
	return ai.ID, n.Host.Connect(ctx, *ai)
}

// Seal signs msg for job with the node's key and next sequence number.
func (n *Node) Seal(job [32]byte, msg wire.Message) (*pb.Envelope, error) {
	return wire.Seal(n.key, job, n.seq.Add(1), msg)
}

// Reject records that p sent a bad message: logs why (EventRejected), and
// strikes p.
func (n *Node) Reject(p peer.ID, why error) { n.reject(p, why) }

// reject is Reject with extra attributes for the event (the topic of a
// gossip message).
func (n *Node) reject(p peer.ID, why error, attrs ...any) {
	n.log.Warn(EventRejected, append([]any{"peer", p.String(), "reason", errString(why)}, attrs...)...)
	if n.lim.strike(p) {
		n.log.Warn(EventLimited, "peer", p.String(), "ban", BanFor)
		n.Host.Network().ClosePeer(p)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Limited reports whether p is currently refused.
func (n *Node) Limited(p peer.ID) bool { return n.lim.banned(p) }

// receive reads and checks one envelope from a stream: opened, signed by
// the stream's remote peer, not a replay.
func (n *Node) receive(s network.Stream, r *bufio.Reader, want ...wire.Type) (*wire.Envelope, wire.Message, error) {
	e, err := wire.Read(r, want...)
	if err != nil {
		return nil, nil, err
	}
	if e.Sender != s.Conn().RemotePeer() {
		return nil, nil, fmt.Errorf("%w: signed by %s, sent by %s", wire.ErrBadSignature, e.Sender, s.Conn().RemotePeer())
	}
	if err := n.guard.Check(e); err != nil {
		return nil, nil, err
	}
	m, err := wire.Decode(e)
	return e, m, err
}

// Responder answers one request on a stream.
type Responder struct {
	n   *Node
	s   network.Stream
	w   *bufio.Writer
	job [32]byte
}

// Reply sends msg back, bound to the request's job.
func (r *Responder) Reply(msg wire.Message) error {
	e, err := r.n.Seal(r.job, msg)
	if err != nil {
		return err
	}
	if err := wire.Write(r.w, e); err != nil {
		return err
	}
	return r.w.Flush()
}

// Raw writes a raw frame after a reply (chunk data).
func (r *Responder) Raw(data []byte) error { return wire.WriteRaw(r.w, data) }

// Flush flushes buffered raw frames.
func (r *Responder) Flush() error { return r.w.Flush() }

// Handler serves one request.
type Handler func(ctx context.Context, e *wire.Envelope, m wire.Message, r *Responder) error

// Handle serves requests of the given types on protocol pid: each stream
// carries requests one after another until the remote closes it. A bad
// message is rejected (Reject) and the stream reset.
func (n *Node) Handle(pid string, h Handler, want ...wire.Type) {
	n.Host.SetStreamHandler(protocol.ID(pid), func(s network.Stream) {
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := bufio.NewReaderSize(s, 64<<10)
		w := bufio.NewWriterSize(s, 64<<10)
		for {
			e, m, err := n.receive(s, r, want...)
			if err != nil {
				if misbehaved(err) {
					n.Reject(s.Conn().RemotePeer(), err)
				}
				s.Reset()
				return
			}
			if err := h(ctx, e, m, &Responder{n: n, s: s, w: w, job: e.Job}); err != nil {
				n.log.Info(EventHandlerFailed, "peer", s.Conn().RemotePeer().String(), "protocol", pid, "err", err.Error())
				s.Reset()
				return
			}
		}
	})
}

// Stream is a client's open request stream to a peer.
type Stream struct {
	n *Node
	s network.Stream
	r *bufio.Reader
	w *bufio.Writer
}

// Open opens a request stream to p on protocol pid.
func (n *Node) Open(ctx context.Context, p peer.ID, pid string) (*Stream, error) {
	s, err := n.Host.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), p, protocol.ID(pid))
	if err != nil {
		return nil, err
	}
	return &Stream{n: n, s: s, r: bufio.NewReaderSize(s, 256<<10), w: bufio.NewWriterSize(s, 64<<10)}, nil
}

// Close closes the stream.
func (st *Stream) Close() error { return st.s.Close() }

// Reset aborts the stream.
func (st *Stream) Reset() error { return st.s.Reset() }

// Request sends msg for job and reads a reply of one of the types in
// want, within the context's deadline (RequestTimeout if none); if the
// context is cancelled first, the stream is reset.
func (st *Stream) Request(ctx context.Context, job [32]byte, msg wire.Message, want ...wire.Type) (*wire.Envelope, wire.Message, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(RequestTimeout)
	}
	st.s.SetDeadline(dl)
	// A cancelled context ends the request now, not at its deadline.
	stop := context.AfterFunc(ctx, func() { st.s.Reset() })
	defer stop()
	e, err := st.n.Seal(job, msg)
	if err != nil {
		return nil, nil, err
	}
	if err := wire.Write(st.w, e); err != nil {
		return nil, nil, err
	}
	if err := st.w.Flush(); err != nil {
		return nil, nil, err
	}
	re, m, err := st.n.receive(st.s, st.r, want...)
	if err != nil {
		if misbehaved(err) {
			st.n.Reject(st.s.Conn().RemotePeer(), err)
		}
		return nil, nil, err
	}
	if re.Job != job {
		err := fmt.Errorf("%w: reply for another job", wire.ErrWrongJob)
		st.n.Reject(st.s.Conn().RemotePeer(), err)
		return nil, nil, err
	}
	if ack, isAck := m.(*wire.Ack); isAck && !ack.OK {
		return re, m, fmt.Errorf("%w: %s", ErrRemote, ack.Error)
	}
	return re, m, nil
}

// ReadRaw reads a raw frame of at most limit bytes.
func (st *Stream) ReadRaw(limit int, buf []byte) ([]byte, error) {
	return wire.ReadRaw(st.r, limit, buf)
}

// Request is a one-shot request/response on a fresh stream.
func (n *Node) Request(ctx context.Context, p peer.ID, pid string, job [32]byte, msg wire.Message, want ...wire.Type) (wire.Message, error) {
	st, err := n.Open(ctx, p, pid)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	_, m, err := st.Request(ctx, job, msg, want...)
	return m, err
}

// Join joins a gossipsub topic whose validator accepts only envelopes of
// the given types that open, are not replays and are signed by the peer
// that propagated them first (the message's source).
func (n *Node) Join(topic string, want ...wire.Type) (*pubsub.Topic, error) {
	if n.PubSub == nil {
		return nil, errors.New("p2p: node started without pubsub")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.topics[topic]; ok {
		return t, nil
	}
	err := n.PubSub.RegisterTopicValidator(topic, func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		var env pb.Envelope
		if err := unmarshalEnvelope(msg.Data, &env, want); err != nil {
			n.reject(from, err, "topic", topic)
			return pubsub.ValidationReject
		}
		e, err := wire.Open(&env, want...)
		if err == nil && e.Sender != msg.GetFrom() {
			err = fmt.Errorf("%w: signed by %s, published by %s", wire.ErrBadSignature, e.Sender, msg.GetFrom())
		}
		if err != nil {
			n.reject(from, err, "topic", topic)
			return pubsub.ValidationReject
		}
		return pubsub.ValidationAccept
	})
	if err != nil {
		return nil, err
	}
	t, err := n.PubSub.Join(topic)
	if err != nil {
		return nil, err
	}
	n.topics[topic] = t
	return t, nil
}

// Publish seals msg and publishes it on a joined topic, to the peers
// subscribed now (gossip is best effort: what must arrive is also sent
// point to point).
func (n *Node) Publish(ctx context.Context, topic string, job [32]byte, msg wire.Message) error {
	n.mu.Lock()
	t := n.topics[topic]
	n.mu.Unlock()
	if t == nil {
		return fmt.Errorf("p2p: topic %s not joined", topic)
	}
	e, err := n.Seal(job, msg)
	if err != nil {
		return err
	}
	data, err := marshalEnvelope(e)
	if err != nil {
		return err
	}
	return t.Publish(ctx, data)
}

// Subscribe delivers the opened, decoded, non-replayed messages of a
// joined topic to fn until ctx ends.
func (n *Node) Subscribe(ctx context.Context, topic string, fn func(*wire.Envelope, wire.Message), want ...wire.Type) error {
	n.mu.Lock()
	t := n.topics[topic]
	n.mu.Unlock()
	if t == nil {
		return fmt.Errorf("p2p: topic %s not joined", topic)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return err
	}
	go func() {
		defer sub.Cancel()
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			var env pb.Envelope
			if unmarshalEnvelope(msg.Data, &env, want) != nil {
				continue
			}
			e, err := wire.Open(&env, want...)
			if err != nil || n.guard.Check(e) != nil {
				continue
			}
			m, err := wire.Decode(e)
			if err != nil {
				n.reject(msg.ReceivedFrom, err, "topic", topic)
				continue
			}
			fn(e, m)
		}
	}()
	return nil
}

// limiter is the connection gater: peers with MaxStrikes strikes are
// refused for BanFor.
type limiter struct {
	mu      sync.Mutex
	strikes map[peer.ID]int
	until   map[peer.ID]time.Time
	allow   map[peer.ID]bool
	now     func() time.Time
}

func newLimiter(allow []peer.ID) *limiter {
	l := &limiter{strikes: map[peer.ID]int{}, until: map[peer.ID]time.Time{}, allow: map[peer.ID]bool{}, now: time.Now}
	for _, p := range allow {
		l.allow[p] = true
	}
	return l
}

func (l *limiter) strike(p peer.ID) (banned bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.allow[p] {
		return false
	}
	l.strikes[p]++
	if l.strikes[p] >= MaxStrikes {
		l.until[p] = l.now().Add(BanFor)
		l.strikes[p] = 0
		return true
	}
	return false
}

func (l *limiter) banned(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Before(l.until[p])
}

func (l *limiter) InterceptPeerDial(p peer.ID) bool                        { return !l.banned(p) }
func (l *limiter) InterceptAddrDial(p peer.ID, _ multiaddr.Multiaddr) bool { return !l.banned(p) }
func (l *limiter) InterceptAccept(network.ConnMultiaddrs) bool             { return true }
func (l *limiter) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !l.banned(p)
}
func (l *limiter) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// LoadOrCreateKey reads an ed25519 libp2p key from path, or creates one
// there (mode 0600) if the file does not exist: a node keeps its peer ID
// across restarts.
func LoadOrCreateKey(path string) (crypto.PrivKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if len(data) > 4096 {
			return nil, fmt.Errorf("p2p: key file %s is too large", path)
		}
		return crypto.UnmarshalPrivateKey(data)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	data, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return k, os.WriteFile(path, data, 0o600)
}

// Learn adds the peers' multiaddrs (…/p2p/<id>, as other messages carry
// them) to the peerstore, so that requests to those peers can dial them.
// Malformed addresses are skipped.
func (n *Node) Learn(addrs []string) {
	for _, a := range addrs {
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(ma)
		if err != nil || ai.ID == n.ID() {
			continue
		}
		n.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
}
