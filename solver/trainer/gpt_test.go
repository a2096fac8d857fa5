package trainer

import (
	"context"
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

func tinyGPT(t *testing.T, steps int64) (*spec.Spec, *model.Data) {
	t.Helper()
	corpus := modeltest.Corpus(3, 5000)
	s := modeltest.TinyGPT(corpus, steps)
	d, err := model.NewTextData(s, corpus)
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

// TestGPTInterruptAndResume: a GPT run interrupted between checkpoints
// and resumed from its checkpoint (restored through GetState with the
// GPT's template, int64 second moments included) ends with the digest,
// trace root, training loss and validation loss of an uninterrupted run.
func TestGPTInterruptAndResume(t *testing.T) {
	t.Parallel()
	s, d := tinyGPT(t, 12)
	ctx := context.Background()
	full, err := Run(ctx, s, d, Options{OutDir: t.TempDir(), Commit: true})
	if err != nil {
		t.Fatal(err)
	}
	if full.Steps != s.Steps || full.ValPositions != int64(8*16) || full.ValLossQ16 <= 0 || full.TestTotal != 0 {
		t.Fatalf("uninterrupted run: %+v", full)
	}
	dir := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	const stopAt = 7 // between checkpoints (every 5 steps)
	_, err = Run(cctx, s, d, Options{OutDir: dir, Commit: true, Progress: func(p Progress) {
		if p.Step == stopAt {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed, err := Run(ctx, s, d, Options{OutDir: dir, Commit: true, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.ResumedFrom != stopAt {
		t.Fatalf("resumed from %d, want %d", resumed.ResumedFrom, stopAt)
	}
	if resumed.FinalDigest != full.FinalDigest || resumed.Trace.Root() != full.Trace.Root() ||
		resumed.ValLossQ16 != full.ValLossQ16 || resumed.ValPositions != full.ValPositions {
		t.Fatalf("resumed run ends at %x (val loss %d), uninterrupted at %x (%d)",
			resumed.FinalDigest[:8], resumed.ValLossQ16, full.FinalDigest[:8], full.ValLossQ16)
	}
	// The last checkpoint opens as a GPT state with the final digest.
	cps, err := rundir.OpenCheckpoints(dir, s, full.JobID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cps.Latest(ctx, s.Steps, nil)
	cps.Close()
	if err != nil || st == nil || st.Step != s.Steps {
		t.Fatalf("latest checkpoint: %v", err)
	}
	c, _ := s.GPT()
	if _, err := spec.GPTFromState(c, st); err != nil {
		t.Fatal(err)
	}
	var h commit.Hasher
	if h.StateDigest(full.JobID, st) != full.FinalDigest {
		t.Fatal("final checkpoint is not the final state")
	}
	// Resuming the finished run does no step and evaluates the same.
	again, err := Run(ctx, s, d, Options{OutDir: dir, Resume: true})
	if err != nil || again.ResumedFrom != s.Steps || again.ValLossQ16 != full.ValLossQ16 || again.FinalDigest != full.FinalDigest {
		t.Fatalf("re-resuming a finished run: %+v, %v", again, err)
	}
}

// TestGPTFaultInjection: FaultInjectForTesting changes a GPT's
// spec.State, int64 tensors included, and the run commits and continues
// from the changed state.
func TestGPTFaultInjection(t *testing.T) {
	t.Parallel()
	s, d := tinyGPT(t, 6)
	ctx := context.Background()
	honest, err := Run(ctx, s, d, Options{OutDir: t.TempDir(), Commit: true})
	if err != nil {
		t.Fatal(err)
	}
	const at = 3
	cheat, err := Run(ctx, s, d, Options{OutDir: t.TempDir(), Commit: true, FaultInjectForTesting: func(st *spec.State) {
		if st.Step == at {
			v := &st.Tensors[len(st.Tensors)-1] // the head's second moment
			v.SetInt64(0, v.Int64At(0)+1<<40)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range honest.Trace.Entries {
		same := cheat.Trace.Entries[i].Digest == e.Digest
		if same != (e.Step < at) {
			t.Fatalf("digest at step %d: same as the honest run %v", e.Step, same)
		}
	}
	if cheat.ValLossQ16 == honest.ValLossQ16 {
		t.Fatal("the fault did not reach the evaluated model")
	}
}

// TestRunRefusesWrongData: data of the other kind is refused before
// anything is written.
func TestRunRefusesWrongData(t *testing.T) {
	t.Parallel()
	s, _ := tinyGPT(t, 3)
	if _, err := Run(context.Background(), s, &model.Data{}, Options{}); !errors.Is(err, model.ErrDataMismatch) {
		t.Fatalf("GPT without its corpus: %v", err)
	}
}
