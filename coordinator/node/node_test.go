package node

import (
	"context"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// net is a coordinator with one posted job and a peer that has joined it.
type net struct {
	coord *Node
	job   spec.JobID
	peer  *p2p.Node
}

func newNet(t *testing.T, confidential bool) (*net, error) {
	t.Helper()
	ctx := context.Background()
	svc, err := service.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	cn, err := p2p.New(ctx, p2p.WithPubSub())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cn.Close() })
	c, err := New(cn, Config{Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.CheckpointInterval, s.DigestInterval = 40, 10, 1
	s.Audit.Confidential = confidential
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RecordDeposit(ctx, service.Deposit{BankRef: "d1", Account: service.AccountRef{Kind: service.KindClientFunds, Party: "acme"}, AmountMicroUSD: 1_000_000_000}); err != nil {
		t.Fatal(err)
	}
	posted, err := svc.PostJob(ctx, service.PostJobRequest{ClientID: "acme", Spec: js})
	if err != nil {
		t.Fatal(err)
	}
	// The job offered is the posting's (the spec with its posting tag).
	js = posted.Spec
	id, err := spec.ParseJobID(posted.ID)
	if err != nil {
		t.Fatal(err)
	}
	pn, err := p2p.New(ctx, p2p.WithAllow(cn.ID()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pn.Close() })
	if _, err := pn.Connect(ctx, cn.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := pn.Request(ctx, cn.ID(), wire.ControlProtocol, [32]byte{}, &wire.Hello{Role: wire.RoleVerifier}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	return &net{coord: c, job: id, peer: pn}, c.Offer(ctx, js)
}

// TestOnlyTheAskedReplicaConfirmsACheckpoint: a peer that is not the
// job's solver cannot name a checkpoint's digest or make itself a holder,
// whether the solver announced the checkpoint or not.
func TestOnlyTheAskedReplicaConfirmsACheckpoint(t *testing.T) {
	n, err := newNet(t, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var d [32]byte
	d[0] = 1
	for _, ann := range []*wire.CheckpointAnnounce{
		{Step: 10, Digest: d},
		{Step: 10, Digest: d, Entries: []wire.TraceEntry{{Step: 0, Digest: d}}},
	} {
		_, err := n.peer.Request(ctx, n.coord.P2P.ID(), wire.ControlProtocol, n.job, ann, wire.TypeAck)
		if err == nil || !strings.Contains(err.Error(), "unsolicited") {
			t.Fatalf("announce from a peer not running the job: %v", err)
		}
	}
	n.coord.mu.Lock()
	defer n.coord.mu.Unlock()
	if cp, ok := n.coord.jobs[n.job].checkpoints[10]; ok {
		t.Fatalf("checkpoint recorded from an unsolicited announce: %+v", cp)
	}
}

// TestConfidentialJobNeedsKeys: a coordinator without verifying keys
// refuses a confidential job instead of accepting one it cannot referee.
func TestConfidentialJobNeedsKeys(t *testing.T) {
	_, err := newNet(t, true)
	if err == nil || !strings.Contains(err.Error(), "confidential") {
		t.Fatalf("confidential job offered to a coordinator without keys: %v", err)
	}
}
