package gateway

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/beluga-compute/beluga/coordinator/auth"
	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/opgraph"
)

// events records the structured events of a logger.
type events struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) Handle(_ context.Context, r slog.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recs = append(e.recs, r.Clone())
	return nil
}
func (e *events) WithAttrs([]slog.Attr) slog.Handler { return e }
func (e *events) WithGroup(string) slog.Handler      { return e }

// last returns the attributes of the last event msg.
func (e *events) last(msg string) map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.recs) - 1; i >= 0; i-- {
		if e.recs[i].Message == msg {
			m := map[string]string{}
			e.recs[i].Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
			return m
		}
	}
	return nil
}

func testHost(t *testing.T) (host.Host, crypto.PrivKey) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Identity(k))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, k
}

// TestDisputePlaysTheGame: a fraud verdict makes the gateway play the
// inference dispute with the solver's and the verifier's nodes (each
// answering from the record with the model it holds): a verifier holding
// other weights that accuses an honest answer loses and is slashed; a
// solver whose answer was tampered loses to an honest verifier and is
// slashed and banned; accused by the liar, both lose; each decision is an
// EventDisputePlayed with its verdict.
func TestDisputePlaysTheGame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, st, job, canon, digest := tinyModel(t)
	oc := c
	oc.Seed++
	ost := oc.Init()

	g, gh, ev, m := refereeGateway(t, job, canon, digest, "tiny", c.Context)
	sh, sk := testHost(t)
	vh, _ := testHost(t)
	hh, _ := testHost(t) // an honest verifier
	for _, x := range []host.Host{sh, vh, hh} {
		if err := gh.Connect(ctx, peer.AddrInfo{ID: x.ID(), Addrs: x.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := infer.NewServer(sh, sk, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := infer.NewVerifierServer(vh, []infer.Model{{Digest: digest, Config: oc, State: ost}}, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := infer.NewVerifierServer(hh, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, nil); err != nil {
		t.Fatal(err)
	}
	gen, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: "r1", Model: digest, Prompt: []byte("abc"), MaxTokens: 10, Seed: 1, Temperature: 65536}
	res, err := inference.Generate(gen, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := sk.Raw()
	key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	rc, err := inference.NewReceipt(req, res, key)
	if err != nil {
		t.Fatal(err)
	}
	solver, verifier := join.PartyID(wire.RoleSolver, sh.ID()), join.PartyID(wire.RoleVerifier, vh.ID())
	vd := &infer.Verdict{Receipt: rc.ID(), Verdict: infer.VerdictFraud, Position: 0}
	g.dispute(ctx, &m, req, inference.NewRecord("tiny", req, res.Output, rc), sh.ID(), vh.ID(), "client", 10, vd)
	if e := ev.last(EventDisputePlayed); e == nil || e["verdict"] != "verifier loses (inconsistent claim)" {
		t.Fatalf("an honest answer accused: event %v", e)
	}
	if !g.Slashed(verifier) || g.Slashed(solver) {
		t.Fatal("the lying verifier was not slashed, or the honest solver was")
	}
	// A tampered answer accused by the honest verifier: the solver's own
	// node recomputes the honest pass, which does not end at what it
	// signed.
	res.Output[4] ^= 0x20
	rc, err = inference.NewReceipt(req, res, key)
	if err != nil {
		t.Fatal(err)
	}
	rec := inference.NewRecord("tiny", req, res.Output, rc)
	g.dispute(ctx, &m, req, rec, sh.ID(), hh.ID(), "client", 10, vd)
	if e := ev.last(EventDisputePlayed); e == nil || e["verdict"] != "solver loses (inconsistent claim)" {
		t.Fatalf("a tampered answer: event %v", e)
	}
	if !g.Slashed(solver) || g.Slashed(join.PartyID(wire.RoleVerifier, hh.ID())) {
		t.Fatal("the cheating solver was not slashed, or the honest verifier was")
	}
	// Accused by the liar too: both claims are off, both lose.
	g.dispute(ctx, &m, req, rec, sh.ID(), vh.ID(), "client", 10, vd)
	if e := ev.last(EventDisputePlayed); e == nil || e["verdict"] != "both loses (inconsistent claim)" {
		t.Fatalf("a tampered answer accused by the liar: event %v", e)
	}
}

// tamperedDisputes answers DisputeProtocol on h as a party holding model
// (c, st) that replays every record with tamper applied: a cheater that
// plays the game as consistently as it can.
func tamperedDisputes(t *testing.T, h host.Host, c gpt.Config, st *gpt.State, tamper func(*inferdispute.Graph, int, map[string]opgraph.Tensor)) {
	t.Helper()
	moments, err := inferdispute.MomentLeaves(c, st)
	if err != nil {
		t.Fatal(err)
	}
	h.SetStreamHandler(protocol.ID(infer.DisputeProtocol), func(s network.Stream) {
		defer s.Close()
		answer := func() ([]byte, error) {
			r := bufio.NewReader(s)
			if typ, err := r.ReadByte(); err != nil || typ != infer.FrameDisputeQuery {
				return nil, fmt.Errorf("frame %q: %v", typ, err)
			}
			n, err := binary.ReadUvarint(r)
			if err != nil || n > infer.MaxDisputeQuery {
				return nil, fmt.Errorf("query of %d bytes: %v", n, err)
			}
			q := make([]byte, n)
			if _, err := io.ReadFull(r, q); err != nil {
				return nil, err
			}
			kind, name, record, err := infer.DecodeDisputeQuery(q)
			if err != nil {
				return nil, err
			}
			req, out, rc, err := inference.DecodeRecord(record)
			if err != nil {
				return nil, err
			}
			rp, err := inferdispute.NewReplayer(c, st, inferdispute.Case{Request: req, Output: out, Receipt: rc},
				inferdispute.WithMoments(moments), inferdispute.WithTamper(tamper))
			if err != nil {
				return nil, err
			}
			if kind == infer.DisputeClaim {
				cl, err := rp.Claim(context.Background())
				if err != nil {
					return nil, err
				}
				return cl.MarshalBinary()
			}
			v, err := rp.Open(context.Background(), name)
			if err != nil {
				return nil, err
			}
			return inferdispute.MarshalTensor(v)
		}
		b, err := answer()
		typ := infer.FrameDisputeAnswer
		if err != nil {
			typ, b = infer.FrameError, []byte(err.Error())
		}
		s.Write(append(binary.AppendUvarint([]byte{typ}, uint64(len(b))), b...))
	})
}

// TestGPT2VerdictsPlayTheGame: a model of GPT-2 blocks (SPEC.md §22,
// imported and served) is judged by the same one-operator game as §20
// models, over the network: a solver that served it with other biases and
// claims the published weights with the logits it sampled from loses to
// an honest verifier with the referee recomputing the tied head alone,
// and is slashed and banned; an honest solver accused by a verifier that
// lies about one GELU output never loses: the referee recomputes that
// operator alone and slashes the verifier.
func TestGPT2VerdictsPlayTheGame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := spec.ServedGPT2("imported", 16, 8, 1, 2, 16, 12)
	c, job, canon := modelOf(t, s)
	withVectors := func(a int32) *gpt.State {
		st := c.Init()
		for p, pr := range c.Params() {
			if pr.Vector {
				for i := range st.W[p] {
					st.W[p][i] += (int32(i)*7919+int32(p)*104729+a*31)%32768 - 16384
				}
			}
		}
		return st
	}
	st, ost := withVectors(0), withVectors(1) // the published model; other biases
	h := commit.Hasher{Threads: 1}
	digest := h.StateDigest(job, spec.GPTTensors(c, st))

	g, gh, ev, m := refereeGateway(t, job, canon, digest, "imported", c.Context)
	sh, sk := testHost(t) // an honest solver
	ch, ck := testHost(t) // a solver serving other biases
	hv, _ := testHost(t)  // an honest verifier
	lv, _ := testHost(t)  // a verifier that lies about one operator
	for _, x := range []host.Host{sh, ch, hv, lv} {
		if err := gh.Connect(ctx, peer.AddrInfo{ID: x.ID(), Addrs: x.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := infer.NewServer(sh, sk, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := infer.NewVerifierServer(hv, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, nil); err != nil {
		t.Fatal(err)
	}
	signer := func(k crypto.PrivKey) ed25519.PrivateKey {
		raw, _ := k.Raw()
		return ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	}
	gen, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ogen, err := gpt.NewGenerator(c, ost, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: "r1", Model: digest, Prompt: []byte("GPT-2 "), MaxTokens: 8, Seed: 1, Temperature: 65536}
	vd := &infer.Verdict{Verdict: infer.VerdictFraud, Position: 0}

	// The cheat: generated with other biases, then in the game the
	// published weights and text, the honest pass up to the logits, and at
	// the output rows the logits it sampled from.
	cres, err := inference.Generate(ogen, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	crc, err := inference.NewReceipt(req, cres, signer(ck))
	if err != nil {
		t.Fatal(err)
	}
	p := len(req.Prompt)
	type row struct {
		z []int64
		e int
	}
	var rows []row
	text := append(slices.Clone(req.Prompt), cres.Output[:len(cres.Output)-1]...)
	if err := ogen.Positions(text, p-1, func(_ int, z []int64, e int) error {
		rows = append(rows, row{slices.Clone(z), e})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tamperedDisputes(t, ch, c, st, func(_ *inferdispute.Graph, _ int, out map[string]opgraph.Tensor) {
		if z, ok := out["act.logits"]; ok {
			for k, r := range rows {
				copy(z.Data[(p-1+k)*gpt.Vocab:], r.z)
				out["act.logits.exp"].Data[p-1+k] = int64(r.e)
			}
		}
		if v, ok := out[inferdispute.SampledTensor]; ok {
			for k, b := range cres.Output {
				v.Data[k] = int64(b)
			}
		}
		if v, ok := out[inferdispute.RootTensor]; ok {
			for k, b := range crc.Positions {
				v.Data[k] = int64(b)
			}
		}
	})
	cheater := join.PartyID(wire.RoleSolver, ch.ID())
	g.dispute(ctx, &m, req, inference.NewRecord("imported", req, cres.Output, crc), ch.ID(), hv.ID(), "client", 10, vd)
	if e := ev.last(EventDisputePlayed); e == nil || e["verdict"] != "solver loses (operator recomputed)" || e["op"] != "head" {
		t.Fatalf("a solver serving other biases: event %v", e)
	}
	if !g.Slashed(cheater) || g.Slashed(join.PartyID(wire.RoleVerifier, hv.ID())) {
		t.Fatal("the cheating solver was not slashed, or the honest verifier was")
	}

	// The honest answer, accused by a verifier lying about 0.gelu.
	res, err := inference.Generate(gen, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := inference.NewReceipt(req, res, signer(sk))
	if err != nil {
		t.Fatal(err)
	}
	tamperedDisputes(t, lv, c, st, func(_ *inferdispute.Graph, _ int, out map[string]opgraph.Tensor) {
		if v, ok := out["act.0.hq"]; ok {
			v.Data[0] ^= 1
		}
		if v, ok := out[inferdispute.RootTensor]; ok {
			v.Data[0] ^= 1 // accuse: another root than the receipt's
		}
	})
	g.dispute(ctx, &m, req, inference.NewRecord("imported", req, res.Output, rc), sh.ID(), lv.ID(), "client", 10, vd)
	if e := ev.last(EventDisputePlayed); e == nil || e["verdict"] != "verifier loses (operator recomputed)" || e["op"] != "0.gelu" {
		t.Fatalf("an honest answer accused by a liar: event %v", e)
	}
	if g.Slashed(join.PartyID(wire.RoleSolver, sh.ID())) || !g.Slashed(join.PartyID(wire.RoleVerifier, lv.ID())) {
		t.Fatal("the honest solver was slashed, or the lying verifier was not")
	}
}

// tinyModel is a one-layer GPT (d16, context 32) at its initial state:
// its config and state, the job that trains it (and that job's canonical
// spec) and its state digest.
func tinyModel(t *testing.T) (gpt.Config, *gpt.State, spec.JobID, []byte, merkle.Digest) {
	t.Helper()
	return tinyModelSeeded(t, spec.ExampleGPT().Seed)
}

// tinyModelSeeded is tinyModel initialised from seed: another model.
func tinyModelSeeded(t *testing.T, seed uint64) (gpt.Config, *gpt.State, spec.JobID, []byte, merkle.Digest) {
	t.Helper()
	s := spec.ExampleGPT()
	s.Seed = seed
	s.Model.Layers = s.Model.Layers[:2]
	s.Model.Layers[0].Context, s.Model.Layers[0].Dim = 32, 16
	s.Model.Layers[1].Heads, s.Model.Layers[1].FF = 2, 32
	s.Model.Layers = append(s.Model.Layers, spec.Layer{Op: spec.OpRMSNorm}, spec.Layer{Op: spec.OpLinear, Out: gpt.Vocab})
	c, job, canon := modelOf(t, s)
	st := c.Init()
	h := commit.Hasher{Threads: 1}
	return c, st, job, canon, h.StateDigest(job, spec.GPTTensors(c, st))
}

// modelOf is the GPT of spec s, the job that trains it and its canonical
// spec.
func modelOf(t *testing.T, s *spec.Spec) (gpt.Config, spec.JobID, []byte) {
	t.Helper()
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	canon, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return c, job, canon
}

// refereeGateway is a gateway on a fresh service with the model id
// (weights digest, trained by job whose canonical spec is canon)
// published: the referee's side of the dispute tests.
func refereeGateway(t *testing.T, job spec.JobID, canon []byte, digest merkle.Digest, id string, contextLen int) (*Gateway, host.Host, *events, Model) {
	t.Helper()
	svc, err := service.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ev := &events{}
	gh, _ := testHost(t)
	g := New(svc, nil, gh, slog.New(ev))
	t.Cleanup(g.Close)
	return g, gh, ev, publishModel(t, g, job, canon, digest, id, contextLen)
}

// publishModel publishes the model id on g (as refereeGateway says).
func publishModel(t *testing.T, g *Gateway, job spec.JobID, canon []byte, digest merkle.Digest, id string, contextLen int) Model {
	t.Helper()
	if err := g.svc.Store().PutRaw(specKey(job.String()), canon); err != nil {
		t.Fatal(err)
	}
	m := Model{ID: id, Digest: fmt.Sprintf("%x", digest[:]), Job: job.String(), Context: contextLen, InputMicroUSDPer1K: 1, OutputMicroUSDPer1K: 1}
	if _, err := g.cat.publish(m); err != nil {
		t.Fatal(err)
	}
	return m
}

// bonded gives peer p of role the bond that admits it (and enrols a
// verifier), as an operator would.
func bonded(t *testing.T, g *Gateway, role wire.Role, p peer.ID) {
	t.Helper()
	ctx := context.Background()
	party := join.PartyID(role, p)
	kind := service.KindSolverBond
	if role == wire.RoleVerifier {
		kind = service.KindVerifierBond
		if _, _, err := auth.NewKeys(g.svc.Store(), rand.Reader, time.Now).Issue(ctx, party, auth.RoleVerifier, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.svc.RecordDeposit(ctx, service.Deposit{Account: service.AccountRef{Kind: kind, Party: party},
		AmountMicroUSD: 100_000_000, BankRef: "bond-" + party}); err != nil {
		t.Fatal(err)
	}
}
