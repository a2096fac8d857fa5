package infer_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
)

func config() gpt.Config {
	return gpt.Config{Context: 32, Dim: 16, Layers: 2, Heads: 2, FF: 32, Bits: 12, Batch: 1, Seed: 5,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 0, Shift: 16}, Eps: 1,
		LRShift: 40, LR: []gpt.LRPoint{{Step: 0, Value: 1 << 29}}}
}

func newHost(t testing.TB) (host.Host, crypto.PrivKey) {
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

func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// TestCallAndServe: over libp2p, a request is answered byte by byte with a
// receipt that passes the exact check; an unknown model and a full server
// are refused with their codes; a tampering server's answer passes the
// transport's checks (it signs what it sends) but not the exact check.
func TestCallAndServe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := config()
	st := c.Init()
	digest := merkle.Digest{7}
	sh, sk := newHost(t)
	gw, _ := newHost(t)
	connect(t, gw, sh)
	srv, err := infer.NewServer(sh, sk, []infer.Model{{Digest: digest, Config: c, State: st}}, 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := &inference.Request{ID: "q1", Model: digest, Prompt: []byte("hi "), MaxTokens: 12, Seed: 2, Temperature: 65536}
	var streamed []byte
	ans, err := infer.Call(ctx, gw, sh.ID(), req, func(k int, b byte) error { streamed = append(streamed, b); return nil })
	if err != nil {
		t.Fatal(err)
	}
	g, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(streamed, ans.Output) || len(ans.Output) != 12 {
		t.Fatalf("streamed %q, answered %q", streamed, ans.Output)
	}
	if err := inference.Check(g, digest, req, ans.Output, ans.Receipt); err != nil {
		t.Fatalf("honest answer: %v", err)
	}
	other := *req
	other.Model = merkle.Digest{8}
	var rf *infer.Refusal
	if _, err := infer.Call(ctx, gw, sh.ID(), &other, nil); !errors.As(err, &rf) || rf.Code != infer.RefusedModel {
		t.Fatalf("unknown model: %v", err)
	}
	long := *req
	long.MaxTokens = 40
	if _, err := infer.Call(ctx, gw, sh.ID(), &long, nil); !errors.As(err, &rf) || rf.Code != infer.RefusedRequest {
		t.Fatalf("past the context: %v", err)
	}
	// The one slot held by a request the server is still answering (held
	// in its Tamper hook): a second request is refused as busy.
	hold, release := make(chan struct{}), make(chan struct{})
	srv.SetTamper(func(*inference.Request, *inference.Result) { close(hold); <-release })
	done := make(chan error, 1)
	go func() {
		_, err := infer.Call(ctx, gw, sh.ID(), req, nil)
		done <- err
	}()
	<-hold
	if _, err := infer.Call(ctx, gw, sh.ID(), req, nil); !errors.As(err, &rf) || rf.Code != infer.RefusedBusy {
		t.Fatalf("while busy: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	srv.SetTamper(func(_ *inference.Request, res *inference.Result) { res.Output[3] ^= 1 })
	ans, err = infer.Call(ctx, gw, sh.ID(), req, nil)
	if err != nil {
		t.Fatalf("a tampered answer is still well-formed: %v", err)
	}
	if err := inference.Check(g, digest, req, ans.Output, ans.Receipt); !errors.Is(err, inference.ErrFraud) {
		t.Fatalf("tampered answer: %v, want fraud", err)
	}
}

// TestAnnounce: a server's announcements reach the coordinator's handler
// as frames, and the stream ends when the server stops.
func TestAnnounce(t *testing.T) {
	t.Parallel()
	c := config()
	sh, sk := newHost(t)
	coord, _ := newHost(t)
	connect(t, sh, coord)
	got := make(chan *infer.Announce, 4)
	ended := make(chan struct{})
	coord.SetStreamHandler(infer.AnnounceProtocol, func(s network.Stream) {
		r := bufio.NewReader(s)
		for {
			_, p, err := infer.ReadFrame(r, infer.FrameAnnounce)
			if err != nil {
				close(ended)
				return
			}
			a, err := infer.DecodeAnnounce(p)
			if err != nil {
				t.Error(err)
			}
			got <- a
		}
	})
	srv, err := infer.NewServer(sh, sk, []infer.Model{{Digest: merkle.Digest{7}, Config: c, State: c.Init()}}, 2, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Announce(ctx, coord.ID())
	select {
	case a := <-got:
		if len(a.Models) != 1 || a.Slots != 2 || a.Models[0].Context != 32 {
			t.Fatalf("announce %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement")
	}
	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the announce stream did not end")
	}
}

// TestVerifier: a verifier holding the model answers pass for an honest
// receipt and fraud for a tampered one over libp2p, and unchecked for a
// model it does not hold.
func TestVerifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := config()
	digest := merkle.Digest{7}
	sh, sk := newHost(t)
	vh, _ := newHost(t)
	gw, _ := newHost(t)
	connect(t, gw, sh)
	connect(t, gw, vh)
	srv, err := infer.NewServer(sh, sk, []infer.Model{{Digest: digest, Config: c, State: c.Init()}}, 1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := infer.NewVerifierServer(vh, []infer.Model{{Digest: digest, Config: c, State: c.Init()}}, 1, nil); err != nil {
		t.Fatal(err)
	}
	verdict := func(req *inference.Request) string {
		ans, err := infer.Call(ctx, gw, sh.ID(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		vd, err := infer.RequestVerdict(ctx, gw, vh.ID(), inference.NewRecord("m", req, ans.Output, ans.Receipt).Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if vd.Receipt != ans.Receipt.ID() {
			t.Fatalf("verdict for receipt %s, asked %s", vd.Receipt, ans.Receipt.ID())
		}
		return vd.Verdict
	}
	req := &inference.Request{ID: "v1", Model: digest, Prompt: []byte("abc"), MaxTokens: 10, Seed: 4, Temperature: 30000}
	if v := verdict(req); v != infer.VerdictPass {
		t.Fatalf("honest: %s", v)
	}
	srv.SetTamper(func(_ *inference.Request, res *inference.Result) { res.Output[0]++ })
	if v := verdict(req); v != infer.VerdictFraud {
		t.Fatalf("tampered: %s", v)
	}
	srv.SetTamper(nil)
	other := merkle.Digest{9}
	if _, err := infer.NewServer(sh, sk, []infer.Model{{Digest: other, Config: c, State: c.Init()}}, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	req2 := *req
	req2.Model = other
	if v := verdict(&req2); v != infer.VerdictUnchecked {
		t.Fatalf("a model the verifier lacks: %s", v)
	}
}
