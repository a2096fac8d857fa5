package infer

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multiaddr"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/strictjson"
)

// Peer-to-peer weights. A published model is a GPT
// checkpoint named by its state digest. Every peer that serves or checks
// a model (it announces it on AnnounceProtocol or
// VerifierAnnounceProtocol) also serves the checkpoint's manifest and
// chunks through the checkpoint exchange (protocol/net/exchange) on
// WeightsExchangeProtocol, from memory. A peer that lacks the weights asks
// the coordinator on WeightsProtocol for a model (by ID or digest); the
// coordinator answers with the checkpoint's job, step, digest and spec,
// the peers that announce the model now, and a grant for the job sealed
// to the asker. The asker then fetches the chunks from all of them at
// once (FetchWeights): every chunk is checked against its hash, the
// manifest against the digest, and the rebuilt state's digest is
// recomputed, so no holder — and not the coordinator, whose spec must
// hash to the job — has to be trusted.
const (
	WeightsProtocol         = "/beluga/inference-weights/1"
	WeightsExchangeProtocol = "/beluga/inference-weights-exchange/1"
)

// Frame types of WeightsProtocol.
const (
	FrameWeightsRequest byte = 'W' // peer → coordinator: a WeightsRequest (JSON)
	FrameWeightsOffer   byte = 'O' // coordinator → peer: a WeightsOffer (JSON), or FrameError
)

// MaxWeightsHolders bounds the holders of an offer.
const MaxWeightsHolders = 64

// Events of the weights protocol.
const (
	// EventWeightsServed: a peer serves a model's checkpoint (Info):
	// "digest", "job", "step", "chunks".
	EventWeightsServed = "inference weights served"
	// EventWeightsFetched: a model's checkpoint was fetched and checked
	// (Info): "model", "digest", "holders", "bytes", "ms".
	EventWeightsFetched = "inference weights fetched"
)

// WeightsRequest asks the coordinator where a model's weights are.
type WeightsRequest struct {
	// Model is a published model's ID or its state digest (64 hex digits).
	Model string `json:"model"`
}

// WeightsOffer is where a model's weights are and the grant to fetch them.
type WeightsOffer struct {
	ID     string `json:"id"`
	Digest string `json:"digest"`
	Job    string `json:"job"`
	Step   int64  `json:"step"`
	// Spec is the job's spec, its canonical JSON as a string.
	Spec    string          `json:"spec"`
	Holders []WeightsHolder `json:"holders"`
	// Grant is the sealed exchange grant (exchange.IssueGrant) for the
	// job, to the asker, in hex (SetGrant).
	Grant string `json:"grant"`
}

// SetGrant sets the offer's grant to the sealed grant g.
func (o *WeightsOffer) SetGrant(g []byte) { o.Grant = hex.EncodeToString(g) }

// WeightsHolder is a peer holding the weights and its addresses.
type WeightsHolder struct {
	Peer  string   `json:"peer"`
	Addrs []string `json:"addrs,omitempty"`
}

// HeldModel is a model's checkpoint a peer holds: the job whose spec it
// is a checkpoint of, and the state in its tensor form (spec.GPTTensors,
// Step set).
type HeldModel struct {
	Spec  *spec.Spec
	Job   spec.JobID
	State *spec.State
}

// weightsSource serves the held checkpoints from memory.
type weightsSource struct{ st *store.Memory }

// ServeWeights serves held models' checkpoints on WeightsExchangeProtocol
// of n to the peers coordinator granted them, and returns their digests
// (each model's name).
func ServeWeights(ctx context.Context, n *p2p.Node, coordinator peer.ID, held []HeldModel, log *slog.Logger) ([]merkle.Digest, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mem := store.NewMemory()
	var ds []merkle.Digest
	for _, m := range held {
		if m.State == nil {
			return nil, errors.New("infer: serve weights: no state")
		}
		man, err := mem.PutCheckpoint(ctx, m.Job, m.State)
		if err != nil {
			return nil, fmt.Errorf("infer: serve weights of job %s: %w", m.Job, err)
		}
		ds = append(ds, man.Digest)
		log.Info(EventWeightsServed, "digest", fmt.Sprintf("%x", man.Digest[:]), "job", m.Job.String(), "step", man.Step, "chunks", len(man.ChunkIDs()))
	}
	exchange.Serve(n, exchange.FromStore(mem), exchange.ServeConfig{Coordinator: coordinator, Logger: log, Protocol: WeightsExchangeProtocol})
	return ds, nil
}

// ServeWeightsIndex answers WeightsRequests on h (the coordinator's) with
// lookup's offer for the asking peer; lookup's error is sent as a Refusal
// (a *Refusal as is, anything else as "failed").
func ServeWeightsIndex(h host.Host, lookup func(ctx context.Context, asker peer.ID, model string) (*WeightsOffer, error), log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h.SetStreamHandler(protocol.ID(WeightsProtocol), func(st network.Stream) {
		defer st.Close()
		st.SetDeadline(time.Now().Add(RequestReadTimeout))
		_, p, err := ReadFrame(bufio.NewReader(st), FrameWeightsRequest)
		if err != nil {
			st.Reset()
			return
		}
		w := bufio.NewWriter(st)
		reply := func(typ byte, v any) {
			b, _ := json.Marshal(v)
			if WriteFrame(w, typ, b) != nil || w.Flush() != nil {
				st.Reset()
			}
		}
		var req WeightsRequest
		if err := strictjson.Decode(p, &req); err != nil || req.Model == "" || len(req.Model) > 128 {
			reply(FrameError, &Refusal{Code: RefusedRequest, Message: "a weights request names a model: its ID or digest"})
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), RequestReadTimeout)
		defer cancel()
		o, err := lookup(ctx, st.Conn().RemotePeer(), req.Model)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) {
				r = &Refusal{Code: RefusedFailed, Message: err.Error()}
			}
			log.Info("inference weights refused", "peer", st.Conn().RemotePeer().String(), "model", req.Model, "why", r.Message)
			reply(FrameError, r)
			return
		}
		reply(FrameWeightsOffer, o)
	})
}

// AskWeights asks the coordinator where model's weights are.
func AskWeights(ctx context.Context, h host.Host, coordinator peer.ID, model string) (*WeightsOffer, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), coordinator, protocol.ID(WeightsProtocol))
	if err != nil {
		return nil, fmt.Errorf("ask the coordinator for model %s: %w", model, err)
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	b, _ := json.Marshal(&WeightsRequest{Model: model})
	w := bufio.NewWriter(st)
	if err := WriteFrame(w, FrameWeightsRequest, b); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	st.SetReadDeadline(time.Now().Add(time.Minute))
	typ, p, err := ReadFrame(bufio.NewReader(st), FrameWeightsOffer, FrameError)
	if err != nil {
		return nil, fmt.Errorf("the coordinator's answer about model %s: %w", model, err)
	}
	if typ == FrameError {
		var r Refusal
		if err := strictjson.Decode(p, &r); err != nil {
			return nil, fmt.Errorf("%w: refusal: %v", ErrFrame, err)
		}
		return nil, &r
	}
	o, _, err := DecodeWeightsOffer(p)
	if err != nil {
		return nil, fmt.Errorf("the coordinator's offer of model %s: %w", model, err)
	}
	return o, nil
}

// FetchedModel is a model fetched from its holders, checked against its
// digest.
type FetchedModel struct {
	ID    string
	Model Model
	Held  HeldModel
	Bytes int64
}

// FetchWeights fetches model (an ID or a digest) from the peers holding
// it: the coordinator says who they are and grants the fetch; the chunks
// come from all of them at once, each checked against its hash, and the
// state is checked against the model's digest.
func FetchWeights(ctx context.Context, n *p2p.Node, coordinator peer.ID, model string, log *slog.Logger) (*FetchedModel, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t0 := time.Now()
	o, err := AskWeights(ctx, n.Host, coordinator, model)
	if err != nil {
		return nil, err
	}
	return FetchOffered(ctx, n, o, t0, log)
}

// FetchOffered fetches the weights offer o names from its holders with
// its grant (FetchWeights after the coordinator's answer; the coordinator
// itself, which makes its own offers, starts here). t0 is when the fetch
// began, for the log.
func FetchOffered(ctx context.Context, n *p2p.Node, o *WeightsOffer, t0 time.Time, log *slog.Logger) (*FetchedModel, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	model := o.ID
	c, err := o.check()
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", model, err)
	}
	s, job, digest := c.Spec, c.Job, c.Digest
	var holders []peer.ID
	for _, h := range c.Holders {
		n.Host.Peerstore().AddAddrs(h.ID, h.Addrs, peerstore.TempAddrTTL)
		holders = append(holders, h.ID)
	}
	st, err := exchange.FetchState(ctx, n, holders, s, job, o.Step, digest, exchange.Options{Grant: c.Grant, Protocol: WeightsExchangeProtocol, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", model, err)
	}
	h := commit.Hasher{Threads: 2}
	if got := h.StateDigest(job, st); got != digest {
		return nil, fmt.Errorf("model %s: the fetched state's digest is %x, want %x", model, got[:8], digest[:8])
	}
	cfg, _ := s.GPT()
	gs, err := spec.GPTFromState(cfg, st)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", model, err)
	}
	var nb int64
	for _, t := range st.Tensors {
		nb += t.ByteLen()
	}
	log.Info(EventWeightsFetched, "model", o.ID, "digest", o.Digest, "holders", len(holders), "bytes", nb, "ms", time.Since(t0).Milliseconds())
	return &FetchedModel{ID: o.ID, Model: Model{Digest: digest, Config: cfg, State: gs}, Held: HeldModel{Spec: s, Job: job, State: st}, Bytes: nb}, nil
}

// CheckedOffer is a weights offer, decoded and checked: the spec hashes
// to the job, the digest, step and grant parse, the holders are peers.
type CheckedOffer struct {
	Spec    *spec.Spec
	Job     spec.JobID
	Digest  merkle.Digest
	Holders []peer.AddrInfo
	Grant   []byte
}

// DecodeWeightsOffer parses (strict JSON) and checks an offer from the
// coordinator: the outside bytes a fetching peer reads.
func DecodeWeightsOffer(b []byte) (*WeightsOffer, *CheckedOffer, error) {
	var o WeightsOffer
	if err := strictjson.Decode(b, &o); err != nil {
		return nil, nil, fmt.Errorf("%w: weights offer: %v", ErrFrame, err)
	}
	c, err := o.check()
	if err != nil {
		return nil, nil, err
	}
	return &o, c, nil
}

// check validates an offer: the spec is a GPT's and hashes to the job,
// the digest and grant parse, the holders are peers with addresses.
func (o *WeightsOffer) check() (*CheckedOffer, error) {
	c := &CheckedOffer{}
	var err error
	if c.Digest, err = ParseDigest(o.Digest); err != nil {
		return nil, err
	}
	if c.Job, err = spec.ParseJobID(o.Job); err != nil {
		return nil, err
	}
	if c.Grant, err = hex.DecodeString(o.Grant); err != nil || len(c.Grant) == 0 {
		return nil, fmt.Errorf("the offer's grant is not hex bytes")
	}
	if c.Spec, err = spec.Read(strings.NewReader(o.Spec)); err != nil {
		return nil, fmt.Errorf("the offer's spec: %w", err)
	}
	if id, err := c.Spec.ID(); err != nil || id != c.Job {
		return nil, fmt.Errorf("the offer's spec is not job %s's", c.Job)
	}
	if _, err := c.Spec.GPT(); err != nil {
		return nil, fmt.Errorf("the offer's spec is not a GPT: %w", err)
	}
	if o.Step < 0 || o.Step > c.Spec.Steps {
		return nil, fmt.Errorf("step %d outside the job's 0 to %d", o.Step, c.Spec.Steps)
	}
	if len(o.Holders) == 0 || len(o.Holders) > MaxWeightsHolders {
		return nil, fmt.Errorf("%w: %d holders offered", exchange.ErrNoHolder, len(o.Holders))
	}
	for _, h := range o.Holders {
		p, err := peer.Decode(h.Peer)
		if err != nil {
			return nil, fmt.Errorf("holder %q: %w", h.Peer, err)
		}
		ai := peer.AddrInfo{ID: p}
		for _, a := range h.Addrs {
			if ma, err := multiaddr.NewMultiaddr(a); err == nil {
				ai.Addrs = append(ai.Addrs, ma)
			}
		}
		c.Holders = append(c.Holders, ai)
	}
	return c, nil
}
