package infer_test

import (
	"context"
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestFetchAndServeImportedModel: a model of GPT-2 blocks (SPEC.md §22, an
// imported model: its step-0 checkpoint) travels like a trained one — a
// peer fetches it from a holder, checked against its digest — and the
// fetched copy serves a request over libp2p whose receipt passes the
// exact check.
func TestFetchAndServeImportedModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := spec.ServedGPT2("imported", 32, 16, 2, 2, 32, 12)
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	gs := c.Init() // random matrices and embeddings; gains 1, biases 0
	for i, p := range c.Params() {
		if p.Vector {
			for j := range gs.W[i] {
				gs.W[i][j] += int32(j%7-3) << 12 // not all alike
			}
		}
	}
	st := spec.GPTTensors(c, gs)
	h := commit.Hasher{Threads: 1}
	digest := h.StateDigest(job, st)
	canon, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	coord, holder, fetcher := p2pNode(t), p2pNode(t), p2pNode(t)
	if ds, err := infer.ServeWeights(ctx, holder, coord.ID(), []infer.HeldModel{{Spec: s, Job: job, State: st}}, nil); err != nil || ds[0] != digest {
		t.Fatalf("serve: %v", err)
	}
	infer.ServeWeightsIndex(coord.Host, func(_ context.Context, asker peer.ID, m string) (*infer.WeightsOffer, error) {
		o := &infer.WeightsOffer{ID: m, Digest: hex.EncodeToString(digest[:]), Job: job.String(), Step: 0, Spec: string(canon),
			Holders: []infer.WeightsHolder{{Peer: holder.ID().String(), Addrs: holder.Addrs()}}}
		g, err := exchange.IssueGrant(coord, job, asker, exchange.GrantTTL)
		o.SetGrant(g)
		return o, err
	}, nil)
	if _, err := fetcher.Connect(ctx, coord.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	f, err := infer.FetchWeights(ctx, fetcher, coord.ID(), "imported", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Model.Digest != digest || !f.Model.Config.GPT2 || !reflect.DeepEqual(f.Model.State.W, gs.W) {
		t.Fatal("the fetched model is not the imported one")
	}
	sh, sk := newHost(t)
	gw, _ := newHost(t)
	connect(t, gw, sh)
	if _, err := infer.NewServer(sh, sk, []infer.Model{f.Model}, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: "q", Model: digest, Prompt: []byte("GPT-2 "), MaxTokens: 10, Seed: 4, Temperature: 50000}
	ans, err := infer.Call(ctx, gw, sh.ID(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gpt.NewGenerator(c, gs, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := inference.Check(g, digest, req, ans.Output, ans.Receipt); err != nil {
		t.Fatalf("the imported model's receipt: %v", err)
	}
}
