package prover

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/beluga-compute/beluga/circuits/tile"
	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/core/zkchallenge"
	"github.com/beluga-compute/beluga/protocol/core/zkcommit"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/ref"
)

// ZKTraceFile is where a confidential run keeps its zk trace, beside
// trace.txt.
const ZKTraceFile = "zktrace.txt"

// stepper runs a job's steps with the reference semantics, yielding each
// step's values for the zk commitment.
type stepper struct {
	s       *spec.Spec
	batches *engine.Batcher
}

func newStepper(s *spec.Spec, train *dataset.Dataset) *stepper {
	return &stepper{s: s, batches: engine.NewBatcher(s, train)}
}

// step runs step st.Step and returns its values and the next state.
func (p *stepper) step(st *spec.State) ([]zkcommit.LayerValues, *spec.State, error) {
	x, y := p.batches.Batch(st.Step)
	tr, next, err := ref.StepOps(p.s, st, st.Step, x, y)
	if err != nil {
		return nil, nil, err
	}
	vals, err := zkcommit.StepValues(tr)
	return vals, next, err
}

// CommitRun computes the zk trace of a finished run in dir (written by
// `beluga train --commit`): one zk root per step 0 … Steps, replaying the
// job from its initial state with the reference semantics. The final state
// must have the digest the run's trace commits, so the zk trace is of the
// same run. It writes dir/zktrace.txt and returns the trace.
func CommitRun(ctx context.Context, s *spec.Spec, train *dataset.Dataset, dir string, progress func(step int64)) (*trace.ZKTrace, error) {
	return CommitRunStore(ctx, s, train, dir, nil, progress)
}

// CommitRunStore is CommitRun with the run's checkpoint store open by the
// caller (nil: dir's own).
func CommitRunStore(ctx context.Context, s *spec.Spec, train *dataset.Dataset, dir string, cs store.CheckpointStore, progress func(step int64)) (*trace.ZKTrace, error) {
	ds, err := openRun(dir, s, train, cs)
	if err != nil {
		return nil, err
	}
	tr, err := ds.Trace(ctx)
	ds.Close()
	if err != nil {
		return nil, err
	}
	l, err := zkcommit.NewLayout(s)
	if err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	z := &trace.ZKTrace{Job: job}
	st := s.Init()
	p := newStepper(s, train)
	for st.Step <= s.Steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var vals []zkcommit.LayerValues
		var next *spec.State
		if st.Step < s.Steps {
			if vals, next, err = p.step(st); err != nil {
				return nil, err
			}
		}
		t, err := l.Commit(st, vals)
		if err != nil {
			return nil, err
		}
		z.Entries = append(z.Entries, trace.ZKEntry{Step: st.Step, Root: t.RootBytes()})
		if progress != nil {
			progress(st.Step)
		}
		if next == nil {
			break
		}
		st = next
	}
	final := tr.Entries[len(tr.Entries)-1]
	if d := (&commit.Hasher{Threads: 1}).StateDigest(job, st); final.Step != st.Step || d != final.Digest {
		return nil, fmt.Errorf("zk trace: the replayed final state does not have the run's final digest")
	}
	f, err := os.Create(filepath.Join(dir, ZKTraceFile))
	if err != nil {
		return nil, err
	}
	if err := z.Write(f); err != nil {
		f.Close()
		return nil, err
	}
	return z, f.Close()
}

// ReadZKTrace reads dir/zktrace.txt and checks it against s.
func ReadZKTrace(s *spec.Spec, path string) (*trace.ZKTrace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := trace.ReadZK(f)
	if err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	if z.Job != job {
		return nil, fmt.Errorf("%w: zk trace of job %x, not %x", trace.ErrMalformed, z.Job[:8], job[:8])
	}
	return zkchallenge.ZKTraceOf(s, z.Entries)
}

func openRun(dir string, s *spec.Spec, train *dataset.Dataset, cs store.CheckpointStore) (*rundir.Run, error) {
	if cs != nil {
		return rundir.OpenStore(dir, s, &model.Data{Train: train}, cs)
	}
	return rundir.Open(dir, s, &model.Data{Train: train})
}

// TileWitness builds the witness of challenge c from the solver's run in
// dir: the state before the step (from its checkpoints, replayed), the
// step's and the next step's values, and both commitments.
func TileWitness(ctx context.Context, s *spec.Spec, train *dataset.Dataset, dir string, c zkchallenge.Challenge) (*tile.Witness, error) {
	return TileWitnessStore(ctx, s, train, dir, nil, c)
}

// TileWitnessStore is TileWitness with the run's checkpoint store open by
// the caller (nil: dir's own).
func TileWitnessStore(ctx context.Context, s *spec.Spec, train *dataset.Dataset, dir string, cs store.CheckpointStore, c zkchallenge.Challenge) (*tile.Witness, error) {
	if c.Step < 0 || c.Step >= s.Steps {
		return nil, fmt.Errorf("%w: step %d of %d", tile.ErrParams, c.Step, s.Steps)
	}
	l, err := zkcommit.NewLayout(s)
	if err != nil {
		return nil, err
	}
	if _, err := l.StateLeaf(c.Layer, c.Row, c.Col); err != nil {
		return nil, err
	}
	ds, err := openRun(dir, s, train, cs)
	if err != nil {
		return nil, err
	}
	st, err := ds.Open(ctx, c.Step)
	ds.Close()
	if err != nil {
		return nil, err
	}
	p := newStepper(s, train)
	vals, next, err := p.step(st)
	if err != nil {
		return nil, err
	}
	var nextVals []zkcommit.LayerValues
	if next.Step < s.Steps {
		if nextVals, _, err = p.step(next); err != nil {
			return nil, err
		}
	}
	in, err := l.Commit(st, vals)
	if err != nil {
		return nil, err
	}
	out, err := l.Commit(next, nextVals)
	if err != nil {
		return nil, err
	}
	return tile.Build(s, l, c.Layer, c.Row, c.Col, st, vals, in, out)
}

// TilePublic computes the public inputs of challenge c from the job and
// the solver's zk trace alone: what a verifier who sees no value uses.
func TilePublic(s *spec.Spec, z *trace.ZKTrace, c zkchallenge.Challenge) (tile.Public, error) {
	l, err := zkcommit.NewLayout(s)
	if err != nil {
		return tile.Public{}, err
	}
	if c.Step < 0 || c.Step+1 >= int64(len(z.Entries)) {
		return tile.Public{}, fmt.Errorf("%w: step %d outside the zk trace", tile.ErrParams, c.Step)
	}
	var in, out fr.Element
	if err := in.SetBytesCanonical(z.Entries[c.Step].Root[:]); err != nil {
		return tile.Public{}, fmt.Errorf("%w: zk root of step %d: %v", trace.ErrMalformed, c.Step, err)
	}
	if err := out.SetBytesCanonical(z.Entries[c.Step+1].Root[:]); err != nil {
		return tile.Public{}, fmt.Errorf("%w: zk root of step %d: %v", trace.ErrMalformed, c.Step+1, err)
	}
	return tile.PublicFor(s, l, c.Layer, c.Row, c.Col, c.Step, in, out)
}
