package infer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// The inference dispute over the network (protocol/core/inferdispute).
// When a verifier reports fraud, the coordinator referees: it asks the
// solver and the verifier, each on a fresh stream of DisputeProtocol, for
// their claim of the forward pass over the record's prompt + output, then
// for the inputs of the one operator their claims first differ on. Every
// query carries the record, so a party answers by recomputing its pass
// from the request alone (DisputeServer: the reference's pass with the
// model it holds, kept for the few records in dispute); nothing of the
// generation has to be kept. Answers are checked by the referee exactly
// as local ones are; a party that does not answer loses by forfeit.
const DisputeProtocol = "/beluga/inference-dispute/1"

// Frame types of DisputeProtocol.
const (
	FrameDisputeQuery  byte = 'G' // referee → party: EncodeDisputeQuery's bytes
	FrameDisputeAnswer byte = 'H' // party → referee: a claim or a tensor (inferdispute's encodings), or FrameError
)

// Dispute query kinds.
const (
	DisputeClaim byte = 'c' // the party's claim of the pass
	DisputeOpen  byte = 'o' // one tensor of the pass, by name
)

// Limits of DisputeProtocol's frames: a query holds a record and a tensor
// name; an answer, a claim or one opened tensor (a [T, T] attention or a
// [T, 256] logits block at the largest context).
const (
	MaxDisputeQuery  = inference.MaxRecordBytes + 512
	MaxDisputeAnswer = 256 << 20
	maxDisputeName   = 255
)

// EventDisputeAnswered: a party answered (or refused) one dispute query
// (Info): "kind" (c: claim, o: opening), "ok", "bytes", "us".
const EventDisputeAnswered = "inference dispute query answered"

// DisputeQueryTimeout bounds how long a party waits for a query frame.
const DisputeQueryTimeout = 10 * time.Second

// EncodeDisputeQuery encodes a query: the kind, the tensor name
// (uvarint length, bytes; empty for a claim), then the record (JSON).
func EncodeDisputeQuery(kind byte, name string, record []byte) []byte {
	b := binary.AppendUvarint([]byte{kind}, uint64(len(name)))
	return append(append(b, name...), record...)
}

// DecodeDisputeQuery parses a query from the referee: the outside bytes
// a party reads. The record is returned as is (inference.DecodeRecord
// checks it).
func DecodeDisputeQuery(p []byte) (kind byte, name string, record []byte, err error) {
	if len(p) < 2 || len(p) > MaxDisputeQuery {
		return 0, "", nil, fmt.Errorf("%w: dispute query of %d bytes", ErrFrame, len(p))
	}
	kind = p[0]
	if kind != DisputeClaim && kind != DisputeOpen {
		return 0, "", nil, fmt.Errorf("%w: dispute query kind %q", ErrFrame, kind)
	}
	n, k := binary.Uvarint(p[1:])
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > maxDisputeName || uint64(len(p)-1-k) < n {
		return 0, "", nil, fmt.Errorf("%w: dispute query name", ErrFrame)
	}
	name = string(p[1+k : 1+k+int(n)])
	if (kind == DisputeClaim) != (name == "") {
		return 0, "", nil, fmt.Errorf("%w: a claim names no tensor, an opening one", ErrFrame)
	}
	return kind, name, p[1+k+int(n):], nil
}

// DisputeServer answers dispute queries for the models a solver or a
// verifier holds.
type DisputeServer struct {
	log    *slog.Logger
	models map[merkle.Digest]Model

	mu      sync.Mutex
	moments map[merkle.Digest][]merkle.Digest
	cases   map[[32]byte]*inferdispute.Replayer // the few records in dispute
	order   [][32]byte
	gate    gate
}

// Restrict makes s answer only peer p, the coordinator (the referee):
// other peers' streams are reset unread.
func (s *DisputeServer) Restrict(p peer.ID) { s.gate.restrict(p) }

// maxDisputeCases bounds the passes a DisputeServer keeps.
const maxDisputeCases = 4

// NewDisputeServer answers DisputeProtocol on h for models (their full
// checkpoint states: the claim's moments are the state's).
func NewDisputeServer(h host.Host, models []Model, log *slog.Logger) *DisputeServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &DisputeServer{log: log, models: map[merkle.Digest]Model{}, moments: map[merkle.Digest][]merkle.Digest{}, cases: map[[32]byte]*inferdispute.Replayer{}}
	for _, m := range models {
		s.models[m.Digest] = m
	}
	h.SetStreamHandler(protocol.ID(DisputeProtocol), s.handle)
	return s
}

// party returns the replayer of record, computing nothing yet.
func (s *DisputeServer) party(record []byte) (*inferdispute.Replayer, error) {
	key := sha256.Sum256(record)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.cases[key]; r != nil {
		return r, nil
	}
	req, out, rc, err := inference.DecodeRecord(record)
	if err != nil {
		return nil, err
	}
	m, ok := s.models[rc.Model]
	if !ok {
		return nil, fmt.Errorf("model %x is not held here", rc.Model[:8])
	}
	if s.moments[m.Digest] == nil {
		if s.moments[m.Digest], err = inferdispute.MomentLeaves(m.Config, m.State); err != nil {
			return nil, err
		}
	}
	r, err := inferdispute.NewReplayer(m.Config, m.State, inferdispute.Case{Request: req, Output: out, Receipt: rc}, inferdispute.WithMoments(s.moments[m.Digest]))
	if err != nil {
		return nil, err
	}
	if len(s.order) == maxDisputeCases {
		delete(s.cases, s.order[0])
		s.order = s.order[1:]
	}
	s.cases[key], s.order = r, append(s.order, key)
	return r, nil
}

// Answer answers one query (the payload of a FrameDisputeQuery).
func (s *DisputeServer) Answer(ctx context.Context, q []byte) ([]byte, error) {
	kind, name, record, err := DecodeDisputeQuery(q)
	if err != nil {
		return nil, err
	}
	r, err := s.party(record)
	if err != nil {
		return nil, err
	}
	if kind == DisputeClaim {
		c, err := r.Claim(ctx)
		if err != nil {
			return nil, err
		}
		return c.MarshalBinary()
	}
	t, err := r.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	return inferdispute.MarshalTensor(t)
}

func (s *DisputeServer) handle(st network.Stream) {
	if !s.gate.admit(st) {
		s.log.Info(EventStrangerRefused, "protocol", DisputeProtocol, "peer", st.Conn().RemotePeer().String())
		st.Reset()
		return
	}
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(DisputeQueryTimeout))
	_, q, err := readBigFrame(bufio.NewReader(st), MaxDisputeQuery, FrameDisputeQuery)
	if err != nil {
		st.Reset()
		return
	}
	t0 := time.Now()
	ans, err := s.Answer(context.Background(), q)
	typ := FrameDisputeAnswer
	if err != nil {
		typ, ans = FrameError, []byte(err.Error())
	}
	s.log.Info(EventDisputeAnswered, "kind", string(q[:1]), "ok", err == nil, "bytes", len(ans), "us", time.Since(t0).Microseconds())
	w := bufio.NewWriter(st)
	if writeBigFrame(w, typ, ans) != nil || w.Flush() != nil {
		st.Reset()
	}
}

// DisputeParty is a solver or verifier on another node, as the referee
// sees it in the dispute over Record.
type DisputeParty struct {
	Host   host.Host
	Peer   peer.ID
	Record []byte
}

var _ inferdispute.Party = (*DisputeParty)(nil)

func (p *DisputeParty) ask(ctx context.Context, kind byte, name string) ([]byte, error) {
	st, err := p.Host.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), p.Peer, protocol.ID(DisputeProtocol))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	w := bufio.NewWriter(st)
	if err := writeBigFrame(w, FrameDisputeQuery, EncodeDisputeQuery(kind, name, p.Record)); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetReadDeadline(dl)
	}
	typ, b, err := readBigFrame(bufio.NewReader(st), MaxDisputeAnswer, FrameDisputeAnswer, FrameError)
	if err != nil {
		return nil, fmt.Errorf("dispute answer from %s: %w", p.Peer, err)
	}
	if typ == FrameError {
		return nil, fmt.Errorf("%s refused: %.200s", p.Peer, b)
	}
	return b, nil
}

// Claim implements inferdispute.Party.
func (p *DisputeParty) Claim(ctx context.Context) (inferdispute.Claim, error) {
	b, err := p.ask(ctx, DisputeClaim, "")
	if err != nil {
		return inferdispute.Claim{}, err
	}
	var c inferdispute.Claim
	return c, c.UnmarshalBinary(b)
}

// Open implements inferdispute.Party.
func (p *DisputeParty) Open(ctx context.Context, name string) (opgraph.Tensor, error) {
	if name == "" || len(name) > maxDisputeName {
		return opgraph.Tensor{}, fmt.Errorf("infer: tensor name of %d bytes", len(name))
	}
	b, err := p.ask(ctx, DisputeOpen, name)
	if err != nil {
		return opgraph.Tensor{}, err
	}
	return inferdispute.UnmarshalTensor(b)
}
