// Package trainer runs a job to completion on the local machine: the
// solver's training loop. It steps the job's model (spec/model: an MLP or
// a GPT), keeps checkpoints every checkpoint_interval steps (and when
// interrupted), resumes from the newest valid checkpoint, and evaluates
// the result.
//
// # Guarantees
//
// A run that is interrupted and resumed reaches the same final state digest
// as one that was not: a checkpoint is the complete state (spec.State), the
// batch of step t depends only on the seed and t, and checkpoints are
// written atomically (temporary file, fsync, rename), so a crash leaves
// either the old or the new file, never a torn one. A checkpoint that fails
// its checksum or belongs to another job is skipped, never used.
package trainer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/model"
)

// ErrInterrupted: the context ended the run early; a resumable checkpoint
// was written.
var ErrInterrupted = errors.New("trainer: interrupted")

// Options control a run. The zero value trains without checkpoints.
type Options struct {
	// OutDir receives spec.json, checkpoints/ and result.json; empty keeps
	// nothing on disk.
	OutDir string
	// Resume continues from the newest valid checkpoint in OutDir.
	Resume bool
	// Model options (kernel, threads).
	Model []model.Option
	// Progress, if set, is called after every step.
	Progress func(Progress)
	// Now is the clock for timings (default time.Now).
	Now func() time.Time
	// Logger receives events such as a skipped corrupt checkpoint
	// (rundir.EventCheckpointSkipped); nil discards them.
	Logger *slog.Logger
	// Commit computes the state digest every digest_interval steps and
	// writes the trace (trace.txt in OutDir) and its root; the solver's
	// commitment to the run. Hashing runs on HashThreads goroutines beside
	// training (default 1).
	Commit      bool
	HashThreads int
	// FaultInjectForTesting, if set, may change the state after each step
	// (st.Step is the number of steps done) before it is committed or
	// checkpointed. It exists only so tests and the devnet can run a
	// cheating solver; a real solver never sets it.
	FaultInjectForTesting func(st *spec.State)
	// Store, if set, keeps the checkpoints instead of OutDir/store (which
	// the run would open, and lock, itself); the caller owns it and can
	// serve its chunks while the run goes on.
	Store store.CheckpointStore
	// Checkpointed, if set, is called after each checkpoint of a commit run
	// is durable, with the state and the trace entries committed so far
	// (the last one is the checkpoint's digest).
	Checkpointed func(st *spec.State, entries []trace.Entry)
}

// Progress reports one finished step.
type Progress struct {
	Step, Steps int64 // steps done, of the job's total
	LossQ16     int64 // mean loss of this step's batch, Q16 nats (Runner.Step)
	// Backend is where the run trains (model.RunnerBackend): under auto a
	// job the device cannot take is on the CPU.
	Backend model.Backend
}

// Result summarises a finished run.
type Result struct {
	JobID       spec.JobID
	Steps       int64
	ResumedFrom int64 // step count of the checkpoint the run started from
	FinalDigest merkle.Digest
	// FinalLossQ16 is the mean training loss (Q16 nats) over the last
	// LossWindow steps run by this process: the mean of the steps' mean
	// losses (model.Runner.Step).
	FinalLossQ16 int64
	// TestCorrect of TestTotal test samples were classified correctly
	// (an MLP; TestTotal is 0 without a test split).
	TestCorrect, TestTotal int
	// ValLossQ16 is a GPT's summed validation loss in Q16 nats over
	// ValPositions positions (0 for an MLP); its bits per byte, SPEC.md
	// §20.7, are ValLossQ16 / (2^16 · ValPositions · ln 2).
	ValLossQ16, ValPositions int64
	Elapsed                  time.Duration // training only, this process
	// Trace is the committed trace (Commit runs only).
	Trace *trace.Trace
}

// LossWindow is how many final steps FinalLossQ16 averages.
const LossWindow = 100

// Run trains s on data (model.LoadData; an MLP's test set may be nil) to
// completion and evaluates the result on the held-out data.
func Run(ctx context.Context, s *spec.Spec, data *model.Data, opts Options) (*Result, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	id, err := s.ID()
	if err != nil {
		return nil, err
	}
	if err := model.CheckData(s, data); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	st, err := model.InitState(s)
	if err != nil {
		return nil, err
	}
	res := &Result{JobID: id}
	var cps *rundir.Checkpoints
	if opts.OutDir != "" {
		if err := prepareDir(opts.OutDir, s, opts.Resume); err != nil {
			return nil, err
		}
		if opts.Store != nil {
			cps = rundir.StoreCheckpoints(opts.Store, s, id)
		} else if cps, err = rundir.OpenCheckpoints(opts.OutDir, s, id); err != nil {
			return nil, err
		}
		defer cps.Close()
		if opts.Resume {
			if cp, err := cps.Latest(ctx, s.Steps, opts.Logger); err != nil {
				return nil, err
			} else if cp != nil {
				st = cp
			}
		}
	}
	res.ResumedFrom = st.Step
	runner, err := model.NewRunner(s, data, st, opts.Model...)
	if err != nil {
		return nil, err
	}
	if c, ok := runner.(io.Closer); ok {
		defer c.Close() // a GPU runner's device memory
	}
	st = runner.State()
	backend := model.RunnerBackend(runner)
	var com *committer
	if opts.Commit {
		com = newCommitter(st, id, max(1, opts.HashThreads))
		defer func() {
			if com != nil {
				com.close()
			}
		}()
		if st.Step > 0 {
			if com.entries, err = rundir.ReadPartialTrace(opts.OutDir, id, st.Step); err != nil {
				return nil, err
			}
		}
		if st.Step%s.DigestInterval == 0 && (len(com.entries) == 0 || com.entries[len(com.entries)-1].Step < st.Step) {
			com.submit(st)
		}
	}
	// checkpoint saves st; in commit runs the trace so far is saved first,
	// so a resumed run finds every entry up to its checkpoint.
	checkpoint := func() error {
		var entries []trace.Entry
		if com != nil {
			entries = com.drain()
			if err := rundir.WriteTrace(filepath.Join(opts.OutDir, rundir.PartialTraceName), id, entries); err != nil {
				return err
			}
		}
		// A checkpoint must land even when ctx was cancelled (Ctrl-C).
		if err := cps.Save(context.WithoutCancel(ctx), st); err != nil {
			return err
		}
		if opts.Checkpointed != nil && com != nil {
			opts.Checkpointed(st, append([]trace.Entry(nil), entries...))
		}
		return nil
	}
	var window []int64
	start := now()
	for st.Step < s.Steps {
		if ctx.Err() != nil {
			res.Elapsed = now().Sub(start)
			if opts.OutDir != "" {
				if err := checkpoint(); err != nil {
					return nil, fmt.Errorf("%w at step %d, and saving its checkpoint failed: %v", ErrInterrupted, st.Step, err)
				}
			}
			return res, fmt.Errorf("%w at step %d of %d", ErrInterrupted, st.Step, s.Steps)
		}
		loss, err := runner.Step()
		if err != nil {
			return nil, err
		}
		if opts.FaultInjectForTesting != nil {
			opts.FaultInjectForTesting(st)
		}
		window = append(window, loss)
		if len(window) > LossWindow {
			window = window[1:]
		}
		if com != nil && (st.Step%s.DigestInterval == 0 || st.Step == s.Steps) {
			com.submit(st)
		}
		if opts.OutDir != "" && st.Step%s.CheckpointInterval == 0 {
			if err := checkpoint(); err != nil {
				return nil, err
			}
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Step: st.Step, Steps: s.Steps, LossQ16: loss, Backend: backend})
		}
	}
	if com != nil {
		entries := com.close()
		com = nil
		res.Trace = &trace.Trace{Job: id, Entries: entries}
		if err := res.Trace.Check(s); err != nil {
			return nil, fmt.Errorf("trainer: internal error: %w", err)
		}
	}
	res.Elapsed = now().Sub(start)
	res.Steps = st.Step
	if res.Trace != nil {
		res.FinalDigest = res.Trace.Entries[len(res.Trace.Entries)-1].Digest
	} else {
		h := commit.Hasher{Threads: runtime.GOMAXPROCS(0)}
		res.FinalDigest = h.StateDigest(id, st)
	}
	if len(window) > 0 {
		var sum int64
		for _, l := range window {
			sum += l
		}
		res.FinalLossQ16 = sum / int64(len(window))
	}
	ev, err := runner.Eval()
	if err != nil {
		return nil, err
	}
	res.TestCorrect, res.TestTotal = ev.TestCorrect, ev.TestTotal
	res.ValLossQ16, res.ValPositions = ev.ValLossQ16, ev.ValPositions
	if opts.OutDir != "" && st.Step%s.CheckpointInterval != 0 {
		// Keep the final state too, so a verifier can open it; in commit
		// runs with the whole trace beside it, so resuming a finished run
		// finds every entry.
		if res.Trace != nil {
			if err := rundir.WriteTrace(filepath.Join(opts.OutDir, rundir.PartialTraceName), id, res.Trace.Entries); err != nil {
				return nil, err
			}
		}
		if err := cps.Save(ctx, st); err != nil {
			return nil, err
		}
	}
	if opts.OutDir != "" && res.Trace != nil {
		if err := rundir.WriteTrace(filepath.Join(opts.OutDir, rundir.TraceName), id, res.Trace.Entries); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// prepareDir creates dir and writes spec.json; with resume it requires an
// existing spec.json to describe the same job.
func prepareDir(dir string, s *spec.Spec, resume bool) error {
	if err := os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o755); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	path := filepath.Join(dir, "spec.json")
	if resume {
		data, err := os.ReadFile(path)
		if err == nil {
			prev, err := spec.Decode(data)
			if err != nil {
				return fmt.Errorf("trainer: %s: %w", path, err)
			}
			a, _ := prev.ID()
			b, _ := s.ID()
			if a != b {
				return fmt.Errorf("trainer: %s holds job %s, not %s: refusing to resume another job", dir, a, b)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("trainer: %w", err)
		}
	}
	data, err := s.JSON()
	if err != nil {
		return err
	}
	return writeAtomic(path, data)
}

// writeAtomic writes data to path so that a crash leaves the old file or
// the new one, never part of either.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("trainer: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("trainer: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("trainer: %w", err)
	}
	return nil
}

// Seed prepares dir so that a Resume run of s continues from st, a state
// fetched from other peers (already checked against its committed
// digest), with the committed trace entries up to st.Step: spec.json, the
// checkpoint in the run's store (cs, or dir/store when nil) and the
// partial trace.
func Seed(dir string, s *spec.Spec, st *spec.State, entries []trace.Entry, cs store.CheckpointStore) error {
	id, err := s.ID()
	if err != nil {
		return err
	}
	if n := len(entries); n == 0 || entries[n-1].Step != st.Step {
		return fmt.Errorf("trainer: seeding step %d needs the trace entries up to it", st.Step)
	}
	if err := prepareDir(dir, s, false); err != nil {
		return err
	}
	if cs == nil {
		db, err := store.Open(filepath.Join(dir, rundir.StoreDir))
		if err != nil {
			return err
		}
		defer db.Close()
		cs = db
	}
	if _, err := cs.PutCheckpoint(context.Background(), id, st); err != nil {
		return err
	}
	return rundir.WriteTrace(filepath.Join(dir, rundir.PartialTraceName), id, entries)
}
