package trainer

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/model"
)

func TestInterruptAndResumeReachSameDigest(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	full, err := Run(ctx, s, &model.Data{Train: train, Test: test}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if full.Steps != s.Steps || full.TestTotal != test.Len() {
		t.Fatalf("uninterrupted run: %+v", full)
	}
	if acc := full.TestCorrect * 100 / full.TestTotal; acc < 80 {
		t.Fatalf("synthetic example reached only %d%% test accuracy", acc)
	}

	dir := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	const stopAt = 250 // not a multiple of the checkpoint interval
	_, err = Run(cctx, s, &model.Data{Train: train, Test: test}, Options{OutDir: dir, Progress: func(p Progress) {
		if p.Step == stopAt {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed, err := Run(ctx, s, &model.Data{Train: train, Test: test}, Options{OutDir: dir, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.ResumedFrom != stopAt {
		t.Fatalf("resumed from %d, want %d", resumed.ResumedFrom, stopAt)
	}
	if resumed.FinalDigest != full.FinalDigest || resumed.TestCorrect != full.TestCorrect {
		t.Fatalf("resumed run ends at %x, uninterrupted at %x", resumed.FinalDigest[:8], full.FinalDigest[:8])
	}

	// A corrupt newest checkpoint is skipped, not used: resuming falls back
	// to the one before and still reaches the same digest. Corrupt one
	// chunk of the final checkpoint's first weight tensor in the raw store.
	db, err := store.Open(filepath.Join(dir, rundir.StoreDir))
	if err != nil {
		t.Fatal(err)
	}
	m, err := db.Manifest(ctx, full.JobID, s.Steps)
	if err != nil {
		t.Fatal(err)
	}
	chunk := m.Tensors[0].Chunks[0]
	if err := db.DB().Update(func(txn *badger.Txn) error {
		return txn.Set(append([]byte{'c'}, chunk[:]...), []byte("rotten"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rec := newRecorder()
	again, err := Run(ctx, s, &model.Data{Train: train, Test: test}, Options{OutDir: dir, Resume: true, Logger: rec.logger()})
	if err != nil {
		t.Fatal(err)
	}
	skipped := rec.of(rundir.EventCheckpointSkipped)
	if len(skipped) != 1 || again.ResumedFrom != 400 || again.FinalDigest != full.FinalDigest {
		t.Fatalf("after corrupting the newest checkpoint: resumed from %d, %d skip events, digest match %v",
			again.ResumedFrom, len(skipped), again.FinalDigest == full.FinalDigest)
	}
	if want := strconv.FormatInt(s.Steps, 10); skipped[0].attrs["step"] != want || skipped[0].attrs["err"] == "" {
		t.Fatalf("skip event %+v: want step %s and an error", skipped[0].attrs, want)
	}

	// Resuming a directory that holds another job is refused.
	other := *s
	other.Seed++
	if _, err := Run(ctx, &other, &model.Data{Train: train, Test: test}, Options{OutDir: dir, Resume: true}); err == nil {
		t.Fatal("resumed another job's directory")
	}
}

func TestCommitTraceSurvivesResume(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.DigestInterval, s.CheckpointInterval = 130, 5, 50
	train, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dirA := t.TempDir()
	full, err := Run(ctx, s, &model.Data{Train: train}, Options{OutDir: dirA, Commit: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Trace.Check(s); err != nil {
		t.Fatal(err)
	}
	// Every entry is the digest of the state the solver can open.
	sol, err := rundir.Open(dirA, s, &model.Data{Train: train})
	if err != nil {
		t.Fatal(err)
	}
	defer sol.Close()
	var h commit.Hasher
	for _, e := range full.Trace.Entries {
		st, err := sol.Open(ctx, e.Step)
		if err != nil {
			t.Fatal(err)
		}
		if h.StateDigest(full.JobID, st) != e.Digest {
			t.Fatalf("entry at step %d is not the digest of the opened state", e.Step)
		}
	}
	// Interrupted between checkpoints and resumed: the same trace.
	dirB := t.TempDir()
	cctx, cancel := context.WithCancel(ctx)
	_, err = Run(cctx, s, &model.Data{Train: train}, Options{OutDir: dirB, Commit: true, Progress: func(p Progress) {
		if p.Step == 77 {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	res, err := Run(ctx, s, &model.Data{Train: train}, Options{OutDir: dirB, Commit: true, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Trace.Root() != full.Trace.Root() {
		t.Fatal("resumed committed run has another trace root")
	}
	// Resuming the finished run (its last checkpoint is off the checkpoint
	// interval) finds the whole trace again.
	again, err := Run(ctx, s, &model.Data{Train: train}, Options{OutDir: dirB, Commit: true, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResumedFrom != s.Steps || again.Trace.Root() != full.Trace.Root() {
		t.Fatalf("re-resuming a finished run: from %d, same root %v", again.ResumedFrom, again.Trace.Root() == full.Trace.Root())
	}
	solB, err := rundir.Open(dirB, s, &model.Data{Train: train})
	if err != nil {
		t.Fatal(err)
	}
	defer solB.Close()
	tr, err := solB.Trace(ctx)
	if err != nil || tr.Root() != full.Trace.Root() {
		t.Fatalf("trace.txt: %v", err)
	}
}

// TestSeedResumesElsewhere: a second solver, given only a checkpointed
// state and the trace entries announced with it (as a peer would fetch
// them), seeds a fresh directory and finishes with the trace root of an
// uninterrupted run.
func TestSeedResumesElsewhere(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.DigestInterval, s.CheckpointInterval = 120, 4, 40
	train, _, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type announced struct {
		st      *spec.State
		entries []trace.Entry
	}
	var got []announced
	full, err := Run(ctx, s, &model.Data{Train: train}, Options{OutDir: t.TempDir(), Commit: true,
		Checkpointed: func(st *spec.State, entries []trace.Entry) {
			got = append(got, announced{st.Clone(), entries})
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 {
		t.Fatalf("%d checkpoints announced, want at least 2", len(got))
	}
	var h commit.Hasher
	for _, a := range got {
		n := len(a.entries)
		if n == 0 || a.entries[n-1].Step != a.st.Step || a.entries[n-1].Digest != h.StateDigest(full.JobID, a.st) {
			t.Fatalf("checkpoint at step %d announced with a trace that does not end at its digest", a.st.Step)
		}
	}
	mid := got[1]
	if err := Seed(t.TempDir(), s, mid.st, nil, nil); err == nil {
		t.Fatal("seeding without trace entries succeeded")
	}
	dir := t.TempDir()
	if err := Seed(dir, s, mid.st, mid.entries, nil); err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, s, &model.Data{Train: train}, Options{OutDir: dir, Commit: true, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != mid.st.Step || res.Trace.Root() != full.Trace.Root() || res.FinalDigest != full.FinalDigest {
		t.Fatalf("seeded run resumed from %d (want %d), same root %v", res.ResumedFrom, mid.st.Step, res.Trace.Root() == full.Trace.Root())
	}
}
