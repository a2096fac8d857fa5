package node

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/protocol/net/datanet"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
)

// TestServeData: the node serves a corpus a client uploaded
// (service.PutText) to a registered solver, checked against root and
// size, and refuses a peer that has not said hello, and a corpus of
// another size.
func TestServeData(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	corpus := bytes.Repeat([]byte("to be or not to be. "), 700)
	root, n, err := h.svc.PutText(corpus)
	if err != nil {
		t.Fatal(err)
	}
	q := datanet.Request{Root: root, Bytes: n}
	s := h.solver(1)
	got, err := datanet.Fetch(context.Background(), s.n.Host, h.cn.ID(), q)
	if err != nil || !bytes.Equal(got, corpus) {
		t.Fatalf("registered solver: %d bytes, %v", len(got), err)
	}
	if _, err := datanet.Fetch(context.Background(), s.n.Host, h.cn.ID(), datanet.Request{Root: root, Bytes: n - 1}); !errors.Is(err, datanet.ErrNotServed) {
		t.Fatalf("another size: %v, want ErrNotServed", err)
	}
	stranger, err := p2p.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if _, err := stranger.Connect(context.Background(), h.cn.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := datanet.Fetch(context.Background(), stranger.Host, h.cn.ID(), q); !errors.Is(err, datanet.ErrNotServed) {
		t.Fatalf("unregistered peer: %v, want ErrNotServed", err)
	}
}
