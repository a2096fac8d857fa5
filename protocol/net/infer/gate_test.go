package infer_test

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// TestRestrictRefusesStrangers: a server and a verifier restricted to the
// coordinator answer it, and reset a stranger's requests, verification
// tasks and dispute queries unread.
func TestRestrictRefusesStrangers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := config()
	digest := merkle.Digest{7}
	models := []infer.Model{{Digest: digest, Config: c, State: c.Init()}}
	sh, sk := newHost(t)
	vh, _ := newHost(t)
	coord, _ := newHost(t)
	stranger, _ := newHost(t)
	connect(t, coord, sh)
	connect(t, coord, vh)
	connect(t, stranger, sh)
	connect(t, stranger, vh)
	srv, err := infer.NewServer(sh, sk, models, 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := infer.NewVerifierServer(vh, models, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Restrict(coord.ID())
	ver.Restrict(coord.ID())

	req := &inference.Request{ID: "g1", Model: digest, Prompt: []byte("hi "), MaxTokens: 8, Seed: 1, Temperature: 65536}
	ans, err := infer.Call(ctx, coord, sh.ID(), req, nil)
	if err != nil {
		t.Fatalf("the coordinator's request: %v", err)
	}
	record := inference.NewRecord("m", req, ans.Output, ans.Receipt).Marshal()
	if vd, err := infer.RequestVerdict(ctx, coord, vh.ID(), record); err != nil || vd.Verdict != infer.VerdictPass {
		t.Fatalf("the coordinator's verification task: %+v %v", vd, err)
	}
	if _, err := infer.Call(ctx, stranger, sh.ID(), req, nil); err == nil {
		t.Fatal("a stranger's request was answered")
	}
	if _, err := infer.RequestVerdict(ctx, stranger, vh.ID(), record); err == nil {
		t.Fatal("a stranger's verification task was answered")
	}
	for name, party := range map[string]peer.ID{"solver": sh.ID(), "verifier": vh.ID()} {
		if _, err := (&infer.DisputeParty{Host: stranger, Peer: party, Record: record}).Claim(ctx); err == nil {
			t.Fatalf("the %s answered a stranger's dispute query", name)
		}
		if _, err := (&infer.DisputeParty{Host: coord, Peer: party, Record: record}).Claim(ctx); err != nil {
			t.Fatalf("the %s refused the coordinator's dispute query: %v", name, err)
		}
	}
}
