package gateway

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestVerdictWaitsAndPassesOver: a sampled receipt is not dropped for
// want of a verifier. The only verifier announced at first fails to
// answer (it stopped serving checks): it is passed over, with an
// "inference verifier failed" event naming it, and the receipt waits for
// the honest verifier that announces itself later, whose pass it gets.
func TestVerdictWaitsAndPassesOver(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, st, job, canon, digest := tinyModel(t)
	g, gh, ev, _ := refereeGateway(t, job, canon, digest, "tiny", c.Context)
	// verifier serves checks of the model on h; start announces it.
	verifier := func(h host.Host) (start func()) {
		t.Helper()
		if err := gh.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		v, err := infer.NewVerifierServer(h, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		return func() { go v.Announce(ctx, gh.ID()) }
	}
	broken, _ := testHost(t)
	verifier(broken)()
	broken.RemoveStreamHandler(infer.VerifyProtocol)
	for deadline := time.Now().Add(10 * time.Second); g.ver.verifiers.Serving(digest) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the broken verifier never announced itself")
		}
	}

	// An honest answer and its receipt.
	_, sk := testHost(t) // the solver's key
	gen, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: "r1", Model: digest, Prompt: []byte("abc"), MaxTokens: 8, Seed: 1, Temperature: 65536}
	res, err := inference.Generate(gen, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := sk.Raw()
	rc, err := inference.NewReceipt(req, res, ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]))
	if err != nil {
		t.Fatal(err)
	}
	rec := inference.NewRecord("tiny", req, res.Output, rc)

	honest, _ := testHost(t)
	startHonest := verifier(honest)
	time.AfterFunc(500*time.Millisecond, startHonest)
	v, vd, why := g.verdict(req, rec)
	if vd == nil {
		t.Fatalf("no verdict: %s", why)
	}
	if v != honest.ID() || vd.Verdict != infer.VerdictPass || vd.Receipt != rec.ID {
		t.Fatalf("verdict %+v from %s, want a pass from the honest verifier %s", vd, v, honest.ID())
	}
	if e := ev.last(EventVerifierFailed); e == nil || e["verifier"] != broken.ID().String() {
		t.Fatalf("no event for the verifier that failed: %v", e)
	}
}
