package infer_test

import (
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

func p2pNode(t testing.TB) *p2p.Node {
	t.Helper()
	n, err := p2p.New(context.Background(), p2p.WithListen("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestFetchWeights: over real libp2p nodes, a peer without a model asks
// the coordinator where it is and fetches it from two holders, one of
// which serves other weights under the same job and step: the state
// arrives exactly, checked against the digest. An unknown model is
// refused by code; an offer whose spec is not the job's, a forged grant,
// or only lying holders fail with errors that say so.
func TestFetchWeights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	corpus := modeltest.Corpus(3, 2000)
	s := modeltest.TinyGPT(corpus, 4)
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	st, err := model.InitState(s)
	if err != nil {
		t.Fatal(err)
	}
	h := commit.Hasher{Threads: 1}
	digest := h.StateDigest(job, st)
	// The liar: the same job and step, one weight changed.
	other := st.Clone()
	other.Tensors[0].Data[0]++
	canon, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}

	coord, honest, liar, fetcher := p2pNode(t), p2pNode(t), p2pNode(t), p2pNode(t)
	if ds, err := infer.ServeWeights(ctx, honest, coord.ID(), []infer.HeldModel{{Spec: s, Job: job, State: st}}, nil); err != nil || ds[0] != digest {
		t.Fatalf("serve: %v %x", err, ds)
	}
	if _, err := infer.ServeWeights(ctx, liar, coord.ID(), []infer.HeldModel{{Spec: s, Job: job, State: other}}, nil); err != nil {
		t.Fatal(err)
	}
	holder := func(n *p2p.Node) infer.WeightsHolder {
		return infer.WeightsHolder{Peer: n.ID().String(), Addrs: n.Addrs()}
	}
	mlp := modeltest.TinyGPT(corpus, 5) // another job
	otherCanon, _ := mlp.Canonical()
	infer.ServeWeightsIndex(coord.Host, func(_ context.Context, asker peer.ID, m string) (*infer.WeightsOffer, error) {
		o := &infer.WeightsOffer{ID: m, Digest: hex.EncodeToString(digest[:]), Job: job.String(), Step: st.Step, Spec: string(canon),
			Holders: []infer.WeightsHolder{holder(liar), holder(honest)}}
		grantor := coord
		switch m {
		case "unknown":
			return nil, &infer.Refusal{Code: infer.RefusedModel, Message: "no such model"}
		case "wrong-spec":
			o.Spec = string(otherCanon)
		case "forged":
			grantor = liar
		case "liars-only":
			o.Holders = o.Holders[:1]
		}
		g, err := exchange.IssueGrant(grantor, job, asker, exchange.GrantTTL)
		o.SetGrant(g)
		return o, err
	}, nil)
	if _, err := fetcher.Connect(ctx, coord.Addrs()[0]); err != nil {
		t.Fatal(err)
	}

	f, err := infer.FetchWeights(ctx, fetcher, coord.ID(), "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Model.Digest != digest || !reflect.DeepEqual(f.Held.State, st) || f.Held.Job != job || f.Bytes == 0 {
		t.Fatalf("fetched %x (want %x), same state %v", f.Model.Digest[:8], digest[:8], reflect.DeepEqual(f.Held.State, st))
	}
	cfg, _ := s.GPT()
	if want, _ := spec.GPTFromState(cfg, st); !reflect.DeepEqual(f.Model.State, want) || !reflect.DeepEqual(f.Model.Config, cfg) {
		t.Fatal("the fetched model is not the held one")
	}

	var r *infer.Refusal
	if _, err := infer.FetchWeights(ctx, fetcher, coord.ID(), "unknown", nil); !errors.As(err, &r) || r.Code != infer.RefusedModel {
		t.Fatalf("unknown model: %v", err)
	}
	if _, err := infer.FetchWeights(ctx, fetcher, coord.ID(), "wrong-spec", nil); err == nil {
		t.Fatal("a spec of another job was taken")
	}
	for _, m := range []string{"forged", "liars-only"} {
		if _, err := infer.FetchWeights(ctx, fetcher, coord.ID(), m, nil); !errors.Is(err, exchange.ErrNoHolder) {
			t.Fatalf("%s: %v", m, err)
		}
	}
}
