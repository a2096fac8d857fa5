package p2p

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// TestReachableBehindNATThroughTheRelay: a node behind NAT keeps a
// reservation on the relay; a peer that knows only its circuit address
// (from the relay) reaches it and gets a 1 MiB answer (over the relayed
// connection, or a direct one once hole punching found a path: on
// loopback either can carry it).
func TestReachableBehindNATThroughTheRelay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	relay, err := New(ctx, WithRelayService())
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	hidden, err := New(ctx, WithRelays(relay.Addrs()[0]), WithBehindNAT())
	if err != nil {
		t.Fatal(err)
	}
	defer hidden.Close()
	big := bytes.Repeat([]byte{7}, 1<<20)
	hidden.Handle(wire.DisputeProtocol, func(_ context.Context, _ *wire.Envelope, _ wire.Message, r *Responder) error {
		return r.Reply(&wire.DisputeAnswer{Payload: big})
	}, wire.TypeDisputeQuery)
	other, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	circuit := relay.CircuitAddrs(hidden.ID())
	if len(circuit) == 0 {
		t.Fatal("the relay names no circuit address")
	}
	other.Learn(circuit)
	// The reservation is taken in the background: ask until it is there.
	var m wire.Message
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m, err = other.Request(ctx, hidden.ID(), wire.DisputeProtocol, [32]byte{1}, &wire.DisputeQuery{Kind: wire.DisputeDigestAt, Step: 1}, wire.TypeDisputeAnswer)
		if err == nil || time.Now().After(deadline) {
			break
		}
		other.Host.Network().ClosePeer(hidden.ID())
	}
	if err != nil {
		t.Fatalf("request through the relay: %v", err)
	}
	if a := m.(*wire.DisputeAnswer); !bytes.Equal(a.Payload, big) {
		t.Fatalf("answer of %d bytes, want %d", len(a.Payload), len(big))
	}
	for _, c := range other.Host.Network().ConnsToPeer(hidden.ID()) {
		t.Logf("connection to the hidden node: %s (limited %v)", c.RemoteMultiaddr(), c.Stat().Limited)
	}
}
