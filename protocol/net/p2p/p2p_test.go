package p2p

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/beluga-compute/beluga/protocol/net/wire"
)

func pair(t *testing.T, opts ...Option) (*Node, *Node) {
	t.Helper()
	a, err := New(context.Background(), append([]Option{WithPubSub()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), WithPubSub())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	if _, err := b.Connect(context.Background(), a.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestGossipAcceptsSignedAndRejectsForged: a signed offer arrives; raw
// bytes published under the topic by a peer are rejected by the
// validator, the peer is struck (an EventRejected naming the peer and the
// topic), and nothing reaches the subscriber.
func TestGossipAcceptsSignedAndRejectsForged(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	a, b := pair(t, WithLogger(rec.logger()))
	if _, err := a.Join(wire.JobsTopic, wire.TypeJobOffer); err != nil {
		t.Fatal(err)
	}
	// b plays a forger: it joins the topic without the validator.
	topic, err := b.PubSub.Join(wire.JobsTopic)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	got := make(chan *wire.JobOffer, 4)
	if err := a.Subscribe(context.Background(), wire.JobsTopic, func(_ *wire.Envelope, m wire.Message) { got <- m.(*wire.JobOffer) }, wire.TypeJobOffer); err != nil {
		t.Fatal(err)
	}
	// Wait for the mesh.
	for deadline := time.Now().Add(5 * time.Second); len(b.PubSub.ListPeers(wire.JobsTopic)) == 0 || len(a.PubSub.ListPeers(wire.JobsTopic)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no gossip peer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // a gossipsub heartbeat: the mesh forms
	// Forged: not an envelope at all, then a wrong type.
	if err := topic.Publish(context.Background(), []byte("not an envelope")); err != nil {
		t.Fatal(err)
	}
	ack, _ := b.Seal([32]byte{}, &wire.Ack{OK: true})
	data, _ := marshalEnvelope(ack)
	topic.Publish(context.Background(), data)
	// Honest.
	offer, _ := b.Seal([32]byte{1}, &wire.JobOffer{SpecJSON: []byte(`{}`), MaxPriceMicroUSD: 5})
	data, _ = marshalEnvelope(offer)
	if err := topic.Publish(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.MaxPriceMicroUSD != 5 {
			t.Fatalf("got %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the signed offer did not arrive (rejections %v)", rec.of(EventRejected))
	}
	select {
	case m := <-got:
		t.Fatalf("a forged message was delivered: %+v", m)
	case <-time.After(200 * time.Millisecond):
	}
	rejected := rec.of(EventRejected)
	if len(rejected) < 2 {
		t.Fatalf("%d rejections logged for two forged messages", len(rejected))
	}
	for _, e := range rejected {
		if e.attrs["peer"] != b.ID().String() || e.attrs["topic"] != wire.JobsTopic || e.attrs["reason"] == "" {
			t.Errorf("rejection event %+v: want peer %s, topic %s and a reason", e.attrs, b.ID(), wire.JobsTopic)
		}
	}
}

// TestRequestOverStreams: a request/response round trip, and a handler
// that answers another job's reply is refused by the client.
func TestRequestOverStreams(t *testing.T) {
	t.Parallel()
	a, b := pair(t)
	a.Handle(wire.ControlProtocol, func(_ context.Context, e *wire.Envelope, m wire.Message, r *Responder) error {
		if hb := m.(*wire.Heartbeat); hb.Step == 13 {
			return r.Reply(&wire.Ack{Error: "unlucky"})
		}
		return r.Reply(&wire.Ack{OK: true})
	}, wire.TypeHeartbeat)
	m, err := b.Request(context.Background(), a.ID(), wire.ControlProtocol, [32]byte{2}, &wire.Heartbeat{State: wire.StateRunning, Step: 3}, wire.TypeAck)
	if err != nil || !m.(*wire.Ack).OK {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := b.Request(context.Background(), a.ID(), wire.ControlProtocol, [32]byte{2}, &wire.Heartbeat{State: wire.StateRunning, Step: 13}, wire.TypeAck); !errors.Is(err, ErrRemote) {
		t.Fatalf("remote error: %v", err)
	}
}

// TestLimiterBansAfterStrikes: MaxStrikes rejections limit a peer (one
// EventLimited), and a limited peer cannot stay connected.
func TestLimiterBansAfterStrikes(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	a, b := pair(t, WithLogger(rec.logger()))
	for range MaxStrikes {
		a.Reject(b.ID(), errors.New("test"))
	}
	if !a.Limited(b.ID()) {
		t.Fatal("not limited after MaxStrikes")
	}
	if r, l := rec.of(EventRejected), rec.of(EventLimited); len(r) != MaxStrikes || len(l) != 1 ||
		r[0].attrs["reason"] != "test" || l[0].attrs["peer"] != b.ID().String() {
		t.Fatalf("events: %d rejected %v, %d limited %v", len(r), r, len(l), l)
	}
	// Whatever b's dial reports, a refuses the connection (its gater
	// rejects the secured connection), so none stays up.
	b.Connect(context.Background(), a.Addrs()[0])
	deadline := time.Now().Add(2 * time.Second)
	for a.Host.Network().Connectedness(b.ID()) == network.Connected {
		if time.Now().After(deadline) {
			t.Fatal("a limited peer stays connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Request(context.Background(), b.ID(), wire.ControlProtocol, [32]byte{}, &wire.Ack{OK: true}, wire.TypeAck); err == nil {
		t.Fatal("a node reached a peer it limits")
	}
}
