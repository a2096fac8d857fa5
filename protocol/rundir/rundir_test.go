package rundir_test

import (
	"context"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/protocol/rundir/rundirtest"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

// TestOpenGPTRun: a GPT run's directory opens every committed step — from
// a checkpoint (int64 second moments read back through the spec's state
// template) or replayed forward from the one before — to the committed
// digest; Replay refuses to go backwards, and a runner on data that is
// not the spec's is refused.
func TestOpenGPTRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	corpus := modeltest.Corpus(3, 2000)
	s := modeltest.TinyGPT(corpus, 12) // a checkpoint every 5 steps
	d, err := model.NewTextData(s, corpus)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	job, tr, err := rundirtest.TrainData(ctx, dir, s, d)
	if err != nil {
		t.Fatal(err)
	}
	run, err := rundir.Open(dir, s, d, model.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	got, err := run.Trace(ctx)
	if err != nil || got.Root() != tr.Root() {
		t.Fatalf("trace: %v", err)
	}
	h := commit.Hasher{Threads: 1}
	for _, e := range tr.Entries {
		st, err := run.Open(ctx, e.Step)
		if err != nil {
			t.Fatal(err)
		}
		if st.Step != e.Step || h.StateDigest(job, st) != e.Digest {
			t.Fatalf("step %d opens to another state", e.Step)
		}
	}
	st, _ := run.Open(ctx, 7)
	if _, err := rundir.Replay(ctx, s, d, st, 6); err == nil {
		t.Fatal("replayed backwards")
	}
	if _, err := rundir.Replay(ctx, s, &model.Data{}, st, 8); err == nil {
		t.Fatal("replayed without the corpus")
	}
	if _, err := run.Open(ctx, s.Steps+1); err == nil {
		t.Fatal("opened a step past the job")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := rundir.Replay(cctx, s, d, st, 9); err == nil {
		t.Fatal("replayed under a cancelled context")
	}
}
