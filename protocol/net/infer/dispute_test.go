package infer_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inferdispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestDisputeOverTheNetwork: the referee plays the inference dispute with
// a solver and a verifier on other nodes, each answering from the record
// alone with the model it holds (the DisputeServer that NewServer and
// NewVerifierServer start). A solver whose answer was tampered loses with
// on its own claim (its honest pass does not end at what it signed); a
// verifier
// holding other weights that accuses an honest solver loses; a node that
// holds no such model refuses and forfeits.
func TestDisputeOverTheNetwork(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := config()
	st := c.Init()
	job := spec.JobID{1}
	h := commit.Hasher{Threads: 1}
	digest := h.StateDigest(job, spec.GPTTensors(c, st))
	other := config()
	other.Seed = 6
	ost := other.Init()
	model := inferdispute.Model{Config: c, Job: job, Digest: digest}

	ref, _ := newHost(t)
	sh, sk := newHost(t)
	vh, _ := newHost(t)
	lh, _ := newHost(t)
	nh, _ := newHost(t)
	connect(t, ref, sh)
	connect(t, ref, vh)
	connect(t, ref, lh)
	connect(t, ref, nh)
	if _, err := infer.NewServer(sh, sk, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := infer.NewVerifierServer(vh, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, nil); err != nil {
		t.Fatal(err)
	}
	// The liar checks with other weights under the published digest.
	if _, err := infer.NewVerifierServer(lh, []infer.Model{{Digest: digest, Config: other, State: ost}}, 1, nil); err != nil {
		t.Fatal(err)
	}
	infer.NewDisputeServer(nh, nil, nil)

	g, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: "d1", Model: digest, Prompt: []byte("hello "), MaxTokens: 20, Seed: 3, Temperature: 65536}
	res, err := inference.Generate(g, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sk.Raw()
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	record := func(out []byte) (inferdispute.Case, []byte) {
		r := *res
		r.Output = out
		rc, err := inference.NewReceipt(req, &r, key)
		if err != nil {
			t.Fatal(err)
		}
		return inferdispute.Case{Request: req, Output: out, Receipt: rc}, inference.NewRecord("m", req, out, rc).Marshal()
	}
	referee := inferdispute.NewReferee()

	// A made-up byte: the solver's own node recomputes the honest pass,
	// which does not end at what it signed.
	bad := append([]byte(nil), res.Output...)
	bad[5] ^= 0x20
	cs, rec := record(bad)
	r, err := referee.Play(ctx, model, cs, &infer.DisputeParty{Host: ref, Peer: sh.ID(), Record: rec}, &infer.DisputeParty{Host: ref, Peer: vh.ID(), Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict.Loser != dispute.LoserSolver {
		t.Fatalf("tampered answer: %v %s", r.Verdict, r.Forfeit)
	}
	// An honest answer accused by the verifier with other weights.
	cs, rec = record(res.Output)
	r, err = referee.Play(ctx, model, cs, &infer.DisputeParty{Host: ref, Peer: sh.ID(), Record: rec}, &infer.DisputeParty{Host: ref, Peer: lh.ID(), Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != (inferdispute.Verdict{Loser: dispute.LoserVerifier, Reason: inferdispute.ReasonInconsistent}) {
		t.Fatalf("lying verifier: %v %s", r.Verdict, r.Forfeit)
	}
	// A node without the model: it refuses, and forfeits.
	r, err = referee.Play(ctx, model, cs, &infer.DisputeParty{Host: ref, Peer: sh.ID(), Record: rec}, &infer.DisputeParty{Host: ref, Peer: nh.ID(), Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != (inferdispute.Verdict{Loser: dispute.LoserVerifier, Reason: inferdispute.ReasonForfeit}) {
		t.Fatalf("a verifier without the model: %v %s", r.Verdict, r.Forfeit)
	}
	// Openings travel too: the honest verifier opens a tensor.
	v := &infer.DisputeParty{Host: ref, Peer: vh.ID(), Record: rec}
	tk, err := v.Open(ctx, "tokens")
	if err != nil || len(tk.Data) != len(req.Prompt)+len(res.Output) {
		t.Fatalf("opening tokens: %v %v", tk.Shape, err)
	}
	if _, err := v.Open(ctx, "no such tensor"); err == nil {
		t.Fatal("an unknown tensor opened")
	}
}

// FuzzDecodeDisputeQuery: a query from outside decodes or fails with
// ErrFrame, never panics; what decodes re-encodes to itself.
func FuzzDecodeDisputeQuery(f *testing.F) {
	f.Add(infer.EncodeDisputeQuery(infer.DisputeClaim, "", []byte(`{"object":"inference.receipt"}`)))
	f.Add(infer.EncodeDisputeQuery(infer.DisputeOpen, "act.logits", []byte(`{}`)))
	f.Add([]byte{'o', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, name, rec, err := infer.DecodeDisputeQuery(b)
		if err != nil {
			if !errors.Is(err, infer.ErrFrame) {
				t.Fatalf("error %v is not ErrFrame", err)
			}
			return
		}
		if got := infer.EncodeDisputeQuery(kind, name, rec); string(got) != string(b) {
			t.Fatalf("round trip: %q != %q", got, b)
		}
	})
}
