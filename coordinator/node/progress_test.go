package node

import (
	"context"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/net/exchange"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/protocol/store"
)

// TestFinalStateFetchedFromTheSolver: the node times the solver's
// checkpoint announcements (the client's ETA), keeps the step and loss of
// its heartbeats, stores the committed final
// digest, and fetches the final checkpoint from the solver over the
// exchange with a grant of its own; the state it returns has the
// committed digest.
func TestFinalStateFetchedFromTheSolver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrantNet(t, false)
	s1, a1 := g.solver()
	assigned(t, a1)
	for _, step := range []int64{10, 20} {
		es := g.entries(step)
		if _, err := s1.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, &wire.CheckpointAnnounce{Step: step, Digest: es[len(es)-1].Digest, Entries: es}, wire.TypeAck); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s1.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, &wire.Heartbeat{State: wire.StateRunning, Step: 23, LossQ16: 70_000}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	if p := g.coord.Progress(g.job); len(p.Checkpoints) != 2 || p.Checkpoints[1].Step != 20 || p.Checkpoints[1].At.Before(p.Checkpoints[0].At) || p.Final != nil || p.ReportedStep != 23 || p.LossQ16 != 70_000 {
		t.Fatalf("progress while running: %+v", p)
	}
	if _, _, err := g.coord.FinalState(ctx, g.job); !errors.Is(err, ErrNoFinal) {
		t.Fatalf("final state of a running job: %v", err)
	}

	st := g.spec.NewState()
	st.Step = g.spec.Steps
	for ti := range st.Tensors {
		for i := range st.Tensors[ti].Data {
			st.Tensors[ti].Data[i] = int32(ti<<16 + i)
		}
	}
	cs := store.NewMemory()
	if _, err := cs.PutCheckpoint(ctx, g.job, st); err != nil {
		t.Fatal(err)
	}
	exchange.Serve(s1, exchange.FromStore(cs), exchange.ServeConfig{Coordinator: g.cn.ID()})
	var h commit.Hasher
	d := h.StateDigest(g.job, st)
	es := g.entries(g.spec.Steps)
	es[len(es)-1].Digest = d
	tc := &wire.TraceCommit{Steps: g.spec.Steps, TraceRoot: wire.Trace(g.job, es).Root(), FinalDigest: d, Entries: es}
	if _, err := s1.Request(ctx, g.cn.ID(), wire.ControlProtocol, g.job, tc, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	p := g.coord.Progress(g.job)
	if p.Final == nil || p.Final.FinalDigest != d || p.Final.TraceRoot != tc.TraceRoot || p.Final.Solver != s1.ID() {
		t.Fatalf("progress after the commit: %+v", p)
	}
	got, gd, err := g.coord.FinalState(ctx, g.job)
	if err != nil {
		t.Fatal(err)
	}
	if gd != d || h.StateDigest(g.job, got) != d {
		t.Fatal("the fetched state is not the committed one")
	}
}

// TestFinalStateConfidentialRefused: a confidential job's state is never
// asked for.
func TestFinalStateConfidentialRefused(t *testing.T) {
	t.Parallel()
	g := newGrantNet(t, true)
	if _, _, err := g.coord.FinalState(context.Background(), g.job); !errors.Is(err, ErrConfidential) {
		t.Fatalf("confidential: %v", err)
	}
}

// TestJobEndedRecordsTheEnd: a job the service cancelled (through the API)
// ends in the node at once when it is told, not at its deadline.
func TestJobEndedRecordsTheEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrantNet(t, false)
	if _, err := g.svc.Cancel(ctx, g.job.String()); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.coord.Outcome(g.job); ok {
		t.Fatal("the node knew of the cancellation before it was told")
	}
	g.coord.JobEnded(ctx, g.job)
	out, ok := g.coord.Outcome(g.job)
	if !ok || out.State != lifecycle.Cancelled {
		t.Fatalf("outcome after JobEnded: %+v %v", out, ok)
	}
}
