package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
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
	s := spec.ExampleGPT()
	s.Model.Layers = s.Model.Layers[:2]
	s.Model.Layers[0].Context, s.Model.Layers[0].Dim = 32, 16
	s.Model.Layers[1].Heads, s.Model.Layers[1].FF = 2, 32
	s.Model.Layers = append(s.Model.Layers, spec.Layer{Op: spec.OpRMSNorm}, spec.Layer{Op: spec.OpLinear, Out: gpt.Vocab})
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
	st := c.Init()
	h := commit.Hasher{Threads: 1}
	digest := h.StateDigest(job, spec.GPTTensors(c, st))
	oc := c
	oc.Seed++
	ost := oc.Init()

	svc, err := service.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ev := &events{}
	gh, _ := testHost(t)
	g := New(svc, nil, gh, slog.New(ev))
	if err := svc.Store().PutRaw(specKey(job.String()), canon); err != nil {
		t.Fatal(err)
	}
	m := Model{ID: "tiny", Digest: fmt.Sprintf("%x", digest[:]), Job: job.String(), Context: c.Context, InputMicroUSDPer1K: 1, OutputMicroUSDPer1K: 1}
	if _, err := g.cat.publish(m); err != nil {
		t.Fatal(err)
	}
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
	g.dispute(&m, req, inference.NewRecord("tiny", req, res.Output, rc), sh.ID(), vh.ID(), "client", 10, vd)
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
	g.dispute(&m, req, rec, sh.ID(), hh.ID(), "client", 10, vd)
	if e := ev.last(EventDisputePlayed); e == nil || e["verdict"] != "solver loses (inconsistent claim)" {
		t.Fatalf("a tampered answer: event %v", e)
	}
	if !g.Slashed(solver) || g.Slashed(join.PartyID(wire.RoleVerifier, hh.ID())) {
		t.Fatal("the cheating solver was not slashed, or the honest verifier was")
	}
	// Accused by the liar too: both claims are off, both lose.
	g.dispute(&m, req, rec, sh.ID(), vh.ID(), "client", 10, vd)
	if e := ev.last(EventDisputePlayed); e == nil || e["verdict"] != "both loses (inconsistent claim)" {
		t.Fatalf("a tampered answer accused by the liar: event %v", e)
	}
}

// TestGPT2VerdictsRerunThePosition: a model of GPT-2 blocks has no
// reference graph for the game, so its verdicts are judged by re-running
// the blamed position: a made-up byte there is the solver's loss, an
// honest byte the verifier's.
func TestGPT2VerdictsRerunThePosition(t *testing.T) {
	t.Parallel()
	c := gpt.Config{Context: 16, Dim: 8, Layers: 1, Heads: 2, FF: 16, Bits: 12, Batch: 1, Seed: 3,
		Beta1: gpt.Ratio{Num: 1, Shift: 1}, Beta2: gpt.Ratio{Num: 1, Shift: 1}, WeightDecay: gpt.Ratio{Num: 0, Shift: 1}, Eps: 1,
		LRShift: 40, LR: []gpt.LRPoint{{Step: 0, Value: 1}}, GPT2: true}
	gen, err := gpt.NewGenerator(c, c.Init(), kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	d := merkle.Digest{9}
	g := &Gateway{}
	g.ref.gens = map[merkle.Digest]*gpt.Generator{d: gen}
	req := &inference.Request{ID: "r", Model: d, Prompt: []byte("ab"), MaxTokens: 6, Seed: 1, Temperature: 65536}
	res, err := inference.Generate(gen, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	rc, _ := inference.NewReceipt(req, res, key)
	r, err := g.rerunPosition(context.Background(), &Model{ID: "m"}, req, res.Output, rc, 2)
	if err != nil || r.loser != dispute.LoserVerifier {
		t.Fatalf("an honest byte: %+v, %v", r, err)
	}
	res.Output[2] ^= 0x40
	rc, _ = inference.NewReceipt(req, res, key)
	r, err = g.rerunPosition(context.Background(), &Model{ID: "m"}, req, res.Output, rc, 2)
	if err != nil || r.loser != dispute.LoserSolver {
		t.Fatalf("a made-up byte: %+v, %v", r, err)
	}
}
