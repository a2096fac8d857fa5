package node

import (
	"context"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/protocol/net/wire"
)

// TestResumeIsNotBoundByTheVanishedSolver: a solver announces a
// checkpoint no replica ever confirmed (here with a digest that is not the
// run's, as a cheater's would be) and vanishes; the solver that resumes
// the job from the committed step computes that step honestly and its
// announcement is accepted — what the vanished solver said beyond the
// committed step binds nobody. (It was refused as "announced with another
// digest", and the honest solver failed the job.)
func TestResumeIsNotBoundByTheVanishedSolver(t *testing.T) {
	t.Parallel()
	h := newHarness(t, boundedConfig())
	first := h.solver(100_000)
	id, s := h.post()
	first.assigned(5 * time.Second)
	ctx := context.Background()
	const step = 4
	lie := &wire.CheckpointAnnounce{Step: step, Digest: [32]byte{0xba, 0xd}}
	if _, err := first.n.Request(ctx, h.cn.ID(), wire.ControlProtocol, id, lie, wire.TypeAck); err != nil {
		t.Fatalf("the running solver's announcement: %v", err)
	}
	// first never heartbeats: it vanishes and the job goes to second.
	second := h.solver(100_000)
	if a := second.assigned(5 * time.Second); a.job != id {
		t.Fatalf("second was assigned %s, want the resumed job", short(a.job))
	}
	honest := second.entries(s, s.Steps)[step] // a digest every step
	if honest.Step != step {
		t.Fatalf("entry %d is step %d", step, honest.Step)
	}
	ann := &wire.CheckpointAnnounce{Step: step, Digest: honest.Digest, Entries: second.entries(s, s.Steps)[:step+1]}
	if _, err := second.n.Request(ctx, h.cn.ID(), wire.ControlProtocol, id, ann, wire.TypeAck); err != nil {
		t.Fatalf("the resuming solver's honest announcement was refused: %v", err)
	}
}

// TestRestartKeepsTheRunningSolver: the coordinator restarts while a job
// runs; its solver says hello again and goes on, and its trace is taken
// as the job's. (The job went back to the market at once, the returning
// solver's announcements and trace were refused as not its job, and its
// peer was cut off for them.)
func TestRestartKeepsTheRunningSolver(t *testing.T) {
	t.Parallel()
	h := newHarness(t, boundedConfig())
	sv := h.solver(100_000)
	id, s := h.post()
	sv.assigned(5 * time.Second)
	h.waitState(id, lifecycle.Running, 2*time.Second)
	h.restart()
	sv.join()
	if err := sv.commit(id, s, s.Steps); err != nil {
		t.Fatalf("the returning solver's trace: %v", err)
	}
	h.waitState(id, lifecycle.AuditWindow, 2*time.Second)
}
