package node

import (
	"context"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/service"
	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// TestBackendRecorded: the job's record keeps, with its solver's
// assignment, the backend the solver's hello says it trains on; when the
// solver's heartbeats say the job trains elsewhere (auto put a job its GPU
// cannot take on the CPU), the record follows the heartbeats.
func TestBackendRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrantNet(t, false)
	n := g.peer()
	party := PartyID(wire.RoleSolver, n.ID())
	if _, err := g.svc.RecordDeposit(ctx, service.Deposit{BankRef: "bond-" + party,
		Account: service.AccountRef{Kind: service.KindSolverBond, Party: party}, AmountMicroUSD: 100_000_000}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *wire.Assign, 4)
	n.Handle(wire.AssignProtocol, func(_ context.Context, _ *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		if a, ok := m.(*wire.Assign); ok {
			got <- a
		}
		return r.Reply(&wire.Ack{OK: true})
	}, wire.TypeAssign, wire.TypeBeacon)
	const gpu = "vulkan (NVIDIA H100 80GB HBM3)"
	if _, err := n.Request(ctx, g.cn.ID(), wire.ControlProtocol, [32]byte{}, &wire.Hello{Role: wire.RoleSolver, Backend: gpu, AskNanoUSDPerCU: 200_000_000}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	assigned(t, got)
	backend := func() string {
		rec, err := g.svc.Job(ctx, g.job)
		if err != nil || len(rec.Solvers) != 1 || rec.Solvers[0].SolverID != party {
			t.Fatalf("record: %v %+v", err, rec)
		}
		return rec.Solvers[0].Backend
	}
	if b := backend(); b != gpu {
		t.Fatalf("the assignment records backend %q, want the hello's %q", b, gpu)
	}

	const cpu = "cpu (avx2)"
	if _, err := n.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, &wire.Heartbeat{State: wire.StateRunning, Step: 3, Backend: cpu}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); backend() != cpu; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the record says %q after a heartbeat saying %q", backend(), cpu)
		}
	}
}
