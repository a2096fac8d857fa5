package trainer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/beluga-compute/beluga/spec/catalog"
)

func TestInterruptAndResumeReachSameDigest(t *testing.T) {
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := catalog.LoadData(s, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	full, err := Run(ctx, s, train, test, Options{})
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
	_, err = Run(cctx, s, train, test, Options{OutDir: dir, Progress: func(p Progress) {
		if p.Step == stopAt {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed, err := Run(ctx, s, train, test, Options{OutDir: dir, Resume: true})
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
	// to the one before and still reaches the same digest.
	newest := filepath.Join(dir, "checkpoints", checkpointName(s.Steps))
	data, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(newest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var skipped []string
	again, err := Run(ctx, s, train, test, Options{OutDir: dir, Resume: true, Logf: func(f string, a ...any) { skipped = append(skipped, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || again.ResumedFrom != 400 || again.FinalDigest != full.FinalDigest {
		t.Fatalf("after corrupting the newest checkpoint: resumed from %d, %d notices, digest match %v",
			again.ResumedFrom, len(skipped), again.FinalDigest == full.FinalDigest)
	}

	// Resuming a directory that holds another job is refused.
	other := *s
	other.Seed++
	if _, err := Run(ctx, &other, train, test, Options{OutDir: dir, Resume: true}); err == nil {
		t.Fatal("resumed another job's directory")
	}
}
