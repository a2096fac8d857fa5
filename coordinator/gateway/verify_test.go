package gateway

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/spec/merkle"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
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
	verifier := func(h host.Host) (start func()) { return checker(ctx, t, g, gh, h, c, st, digest) }
	broken, _ := testHost(t)
	verifier(broken)()
	broken.RemoveStreamHandler(infer.VerifyProtocol)
	for deadline := time.Now().Add(10 * time.Second); g.ver.verifiers.Serving(digest) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the broken verifier never announced itself")
		}
	}

	_, sk := testHost(t) // the solver's key
	req, rec := honestAnswer(t, c, st, digest, sk, 1)
	honest, _ := testHost(t)
	startHonest := verifier(honest)
	time.AfterFunc(500*time.Millisecond, startHonest)
	v, vd, why := g.verdict(ctx, req, rec, "", VerifyWait)
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

// checker makes h an honest verifier of model (c, st) for gateway g on
// host gh, connected, enrolled and bonded; start announces it (until ctx
// ends).
func checker(ctx context.Context, t *testing.T, g *Gateway, gh, h host.Host, c gpt.Config, st *gpt.State, digest merkle.Digest) (start func()) {
	t.Helper()
	if err := gh.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	v, err := infer.NewVerifierServer(h, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	bonded(t, g, wire.RoleVerifier, h.ID())
	return func() { go v.Announce(ctx, gh.ID()) }
}

// honestAnswer is request "r<seed>" for the model (c, st) answered
// honestly, and its record signed with the solver's key sk.
func honestAnswer(t *testing.T, c gpt.Config, st *gpt.State, digest merkle.Digest, sk crypto.PrivKey, seed uint64) (*inference.Request, *inference.Record) {
	t.Helper()
	return signedAnswer(t, c, st, digest, sk, seed, false)
}

// signedAnswer is honestAnswer, or with tamper a byte of the answer
// changed before the solver signs it (a cheating solver).
func signedAnswer(t *testing.T, c gpt.Config, st *gpt.State, digest merkle.Digest, sk crypto.PrivKey, seed uint64, tamper bool) (*inference.Request, *inference.Record) {
	t.Helper()
	gen, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: fmt.Sprintf("r%d", seed), Model: digest, Prompt: []byte("abc"), MaxTokens: 8, Seed: seed, Temperature: 65536}
	res, err := inference.Generate(gen, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		res.Output[len(res.Output)/2] ^= 0x20
	}
	raw, _ := sk.Raw()
	rc, err := inference.NewReceipt(req, res, ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]))
	if err != nil {
		t.Fatal(err)
	}
	return req, inference.NewRecord("tiny", req, res.Output, rc)
}

// TestSampledReceiptsSurviveRestart: receipts sampled while no verifier
// holds their model wait in the store without holding a check (another
// model's receipt, whose verifier is online, is checked meanwhile); the
// coordinator stops, and its next run (the same data directory, a new
// host) checks every one when a verifier comes, never more than max at
// once.
func TestSampledReceiptsSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, st, job, canon, digest := tinyModel(t)
	cb, stb, jobb, canonb, digestb := tinyModelSeeded(t, 99)
	dir := t.TempDir()
	const max, n = 2, 5
	open := func() (*Gateway, host.Host, *service.Service) {
		svc, err := service.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := testHost(t)
		g := New(svc, nil, h, nil)
		g.SetVerifyRate(plan.PPM)
		g.SetSecondOpinionRate(0) // one verifier per model: no second one
		g.ver.mu.Lock()
		g.ver.max = max
		g.ver.mu.Unlock()
		return g, h, svc
	}
	pending := func(svc *service.Service) int {
		n := 0
		if err := svc.Store().ScanKeys(pendingPrefix, func(string) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	inFlight := func(g *Gateway) int {
		g.ver.mu.Lock()
		defer g.ver.mu.Unlock()
		return len(g.ver.checking)
	}

	g, gh, svc := open()
	m := publishModel(t, g, job, canon, digest, "tiny", c.Context)
	mb := publishModel(t, g, jobb, canonb, digestb, "other", cb.Context)
	checker(ctx, t, g, gh, func() host.Host { h, _ := testHost(t); return h }(), cb, stb, digestb)()
	waitFor(t, "the other model's verifier", func() bool { return g.VerifiersOf(digestb) == 1 })
	sh, sk := testHost(t)
	for i := range n {
		req, rec := honestAnswer(t, c, st, digest, sk, uint64(i+1))
		g.maybeVerify(&m, req, rec, sh.ID(), "client", 10)
	}
	req, rec := honestAnswer(t, cb, stb, digestb, sk, 1)
	g.maybeVerify(&mb, req, rec, sh.ID(), "client", 10)
	waitFor(t, "the other model's receipt checked", func() bool { return g.VerifyStats().Passed == 1 })
	if busy := inFlight(g); busy != 0 {
		t.Fatalf("%d checks in flight for receipts no verifier can check", busy)
	}
	g.Close()
	if got := pending(svc); got != n {
		t.Fatalf("%d sampled receipts stored after Close, want %d", got, n)
	}
	if vs := g.VerifyStats(); vs.Sampled != n+1 || vs.Unchecked != 0 || vs.Passed != 1 {
		t.Fatalf("first run: %+v", vs)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}

	g2, gh2, svc2 := open()
	defer svc2.Close()
	defer g2.Close()
	checker(ctx, t, g2, gh2, func() host.Host { h, _ := testHost(t); return h }(), c, st, digest)()
	done := make(chan struct{})
	go func() { g2.WaitVerifications(); close(done) }()
	for most := 0; ; time.Sleep(time.Millisecond) {
		if busy := inFlight(g2); busy > most {
			if most = busy; most > max {
				t.Fatalf("%d checks at once, at most %d", most, max)
			}
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("the restarted gateway did not check the stored receipts: %+v", g2.VerifyStats())
		default:
			continue
		}
		break
	}
	if vs := g2.VerifyStats(); vs.Passed != n || vs.Unchecked != 0 {
		t.Fatalf("restarted: %+v, want %d passes", vs, n)
	}
	if got := pending(svc2); got != 0 {
		t.Fatalf("%d sampled receipts still stored", got)
	}
}

// TestSecondOpinionSlashesAFalsePass: a receipt a verifier passed goes to
// another verifier. An honest answer passed twice slashes nobody. A
// tampered answer passed by a verifier covering for the solver is
// refuted: the second verifier's fraud verdict wins the dispute game, the
// solver is slashed, and the verifier that passed it loses its bond and
// is banned.
func TestSecondOpinionSlashesAFalsePass(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, st, job, canon, digest := tinyModel(t)
	g, gh, ev, m := refereeGateway(t, job, canon, digest, "tiny", c.Context)
	sh, sk := testHost(t)
	ch, _ := testHost(t) // the colluder
	hh, _ := testHost(t) // an honest verifier
	for _, h := range []host.Host{sh, ch} {
		if err := gh.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := infer.NewServer(sh, sk, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	bonded(t, g, wire.RoleSolver, sh.ID())
	cv, err := infer.NewVerifierServer(ch, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	cv.SetTamper(func(vd *infer.Verdict) { vd.Verdict = infer.VerdictPass }) // passes whatever it finds
	bonded(t, g, wire.RoleVerifier, ch.ID())
	checker(ctx, t, g, gh, hh, c, st, digest)()
	waitFor(t, "the honest verifier", func() bool { return g.VerifiersOf(digest) == 1 })
	solver, colluder := join.PartyID(wire.RoleSolver, sh.ID()), join.PartyID(wire.RoleVerifier, ch.ID())

	req, rec := honestAnswer(t, c, st, digest, sk, 1)
	second := func(req *inference.Request, rec *inference.Record) {
		r := pendingRef{sampled: time.Now(), model: digest, receipt: rec.ID, exclude: ch.ID()}
		g.secondOpinion(ctx, r, &m, req, rec, sh.ID(), &pendingCheck{Client: "client", Cost: 10})
	}
	second(req, rec)
	if vs := g.VerifyStats(); vs.SecondOpinions != 1 || vs.Disputes != 0 || g.Slashed(colluder) || g.Slashed(solver) {
		t.Fatalf("an honest answer's second opinion: %+v", vs)
	}

	// The solver signs a changed byte; the colluder passed it.
	req, rec = signedAnswer(t, c, st, digest, sk, 2, true)
	second(req, rec)
	e := ev.last(EventPassRefuted)
	if e == nil || e["verifier"] != colluder || e["request"] != req.ID {
		t.Fatalf("no refuted pass for the colluder: %v", e)
	}
	if !g.Slashed(colluder) || !g.Slashed(solver) {
		t.Fatal("the colluder or the cheating solver was not slashed")
	}
	f, err := g.svc.Shortfall(ctx, colluder, service.PartyVerifier)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(100_000_000) - f.MinBondMicroUSD; f.BondMicroUSD != want {
		t.Fatalf("the colluder's bond is %d, want %d", f.BondMicroUSD, want)
	}
	if vs := g.VerifyStats(); vs.SecondOpinions != 2 || vs.Frauds != 1 || vs.PassesRefuted != 1 {
		t.Fatalf("stats %+v", vs)
	}
}

// TestPendingKeyRoundTrip: a stored check's key gives back what the
// dispatcher reads from it, with and without a verifier to avoid, and
// the keys of one model sort by when they were drawn.
func TestPendingKeyRoundTrip(t *testing.T) {
	h, _ := testHost(t)
	var d merkle.Digest
	d[0], d[31] = 0xab, 0x01
	for _, r := range []pendingRef{
		{sampled: time.Unix(1_700_000_000, 5), model: d, receipt: "r1"},
		{sampled: time.Unix(1_700_000_001, 0), model: d, receipt: "r2", exclude: h.ID()},
	} {
		got, err := parsePendingKey(r.key())
		if err != nil || !got.sampled.Equal(r.sampled) || got.model != r.model || got.receipt != r.receipt || got.exclude != r.exclude {
			t.Fatalf("%s parsed to %+v, %v", r.key(), got, err)
		}
	}
	early, late := pendingRef{sampled: time.Unix(9, 0), model: d, receipt: "b"}, pendingRef{sampled: time.Unix(10, 0), model: d, receipt: "a"}
	if early.key() >= late.key() {
		t.Fatalf("%s sorts after %s", early.key(), late.key())
	}
	for _, bad := range []string{pendingPrefix + "x", pendingPrefix + "1/zz/r/-", pendingPrefix + "1/" + strings.Repeat("ab", 32) + "/r/nope"} {
		if _, err := parsePendingKey(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
