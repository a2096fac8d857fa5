package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// Environment of the child process that TestCrash starts and kills.
const (
	crashDirEnv   = "BELUGA_STORE_CRASH_DIR"
	crashPhaseEnv = "BELUGA_STORE_CRASH_PHASE"
	crashExit     = 86
)

type crashFixture struct {
	s      *spec.Spec
	job    spec.JobID
	a, b   *spec.State // a is deleted before the crash, b stays
	c      *spec.State // written by a child that dies before its manifest
	nLoose int
}

func newCrashFixture(t testing.TB) crashFixture {
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	a := s.Init()
	b := a.Clone()
	b.Step = 1
	b.Tensors[0].Data[0]++
	b.Tensors[0].Data[3*commit.ChunkBytes/4]++
	c := b.Clone()
	c.Step = 2
	for i := range c.Tensors[2].Data { // layers.0.weight.momentum: 13 new chunks
		c.Tensors[2].Data[i] = int32(i)
	}
	return crashFixture{s: s, job: job, a: a, b: b, c: c, nLoose: 10}
}

// TestCrashChild is the process that TestCrash kills; it does nothing
// unless TestCrash started it.
func TestCrashChild(t *testing.T) {
	t.Parallel()
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestCrash")
	}
	ctx := context.Background()
	fx := newCrashFixture(t)
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	phase := os.Getenv(crashPhaseEnv)
	switch {
	case phase == "put":
		// Die after the chunks are written, before the manifest.
		st.gcMu.RLock()
		if _, err := st.writeChunks(ctx, fx.job, fx.c); err != nil {
			t.Fatal(err)
		}
	default:
		// Die after GC's mark and part of its sweep.
		limit, err := strconv.Atoi(phase)
		if err != nil {
			t.Fatal(err)
		}
		st.gcMu.Lock()
		live, err := st.mark(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.sweep(ctx, live, limit); err != nil {
			t.Fatal(err)
		}
	}
	os.Exit(crashExit) // no Close, no flush: as if killed
}

// TestCrash kills a process between the steps of GC and of PutCheckpoint
// and checks, on reopening, that every committed checkpoint reads back,
// that the interrupted put left no manifest, and that the next GC removes
// exactly the garbage.
func TestCrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	fx := newCrashFixture(t)
	ctx := context.Background()
	for _, phase := range []string{"put", "0", "5", "-1"} {
		t.Run("phase="+phase, func(t *testing.T) {
			dir := t.TempDir()
			st, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []*spec.State{fx.a, fx.b} {
				if _, err := st.PutCheckpoint(ctx, fx.job, s); err != nil {
					t.Fatal(err)
				}
			}
			live, err := st.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			mb, _ := st.Manifest(ctx, fx.job, 1)
			for i := range fx.nLoose {
				if _, err := st.Put(ctx, []byte(fmt.Sprintf("loose chunk %d", i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.DeleteCheckpoint(ctx, fx.job, 0); err != nil {
				t.Fatal(err)
			}
			before, _ := st.Stats(ctx)
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashPhaseEnv+"="+phase)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != crashExit {
				t.Fatalf("child: %v\n%s", err, out)
			}

			st, err = Open(dir)
			if err != nil {
				t.Fatalf("reopen after crash: %v", err)
			}
			defer st.Close()
			got, err := st.GetCheckpoint(ctx, fx.s, fx.job, 1)
			if err != nil || !slices.EqualFunc(got.Tensors, fx.b.Tensors, func(x, y spec.Tensor) bool { return slices.Equal(x.Data, y.Data) }) {
				t.Fatalf("committed checkpoint after crash: %v", err)
			}
			for _, id := range mb.ChunkIDs() {
				if _, err := st.Get(ctx, id); err != nil {
					t.Fatalf("chunk of a committed manifest: %v", err)
				}
			}
			if steps, _ := st.ListCheckpoints(ctx, fx.job); !slices.Equal(steps, []int64{1}) {
				t.Fatalf("checkpoints after crash: %v", steps)
			}
			after, _ := st.Stats(ctx)
			garbage := before.Chunks - live.Chunks + 2 // loose ones and the two only step 0 had
			switch phase {
			case "put":
				if after.Chunks != before.Chunks+13 {
					t.Fatalf("interrupted put left %d chunks, want %d", after.Chunks, before.Chunks+13)
				}
				garbage += 13
			case "-1":
				if after.Chunks != before.Chunks-garbage {
					t.Fatalf("after a full sweep: %d chunks, want %d", after.Chunks, before.Chunks-garbage)
				}
				garbage = 0
			default:
				limit, _ := strconv.Atoi(phase)
				if after.Chunks != before.Chunks-limit {
					t.Fatalf("after a sweep of %d: %d chunks, want %d", limit, after.Chunks, before.Chunks-limit)
				}
				garbage -= limit
			}
			n, _, err := st.GC(ctx)
			if err != nil || n != garbage {
				t.Fatalf("GC after crash removed %d chunks (%v), want %d", n, err, garbage)
			}
			if _, err := st.GetCheckpoint(ctx, fx.s, fx.job, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}
