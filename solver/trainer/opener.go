package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/beluga-compute/beluga/protocol/trace"
	"github.com/beluga-compute/beluga/solver/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
)

// DirSolver serves a finished run's commitments from its output directory:
// the trace, and the state after any step, recomputed from the nearest
// checkpoint at or before it. It is the solver's side of an audit.
type DirSolver struct {
	Dir    string
	Spec   *spec.Spec
	Train  *dataset.Dataset
	Engine []engine.Option
	job    spec.JobID
	cps    *checkpoints
}

// OpenDir returns the solver of the run in dir, whose spec.json must be s.
func OpenDir(dir string, s *spec.Spec, train *dataset.Dataset, opts ...engine.Option) (*DirSolver, error) {
	id, err := s.ID()
	if err != nil {
		return nil, err
	}
	cps, err := openCheckpoints(dir, s, id)
	if err != nil {
		return nil, err
	}
	return &DirSolver{Dir: dir, Spec: s, Train: train, Engine: opts, job: id, cps: cps}, nil
}

// OpenDirStore is OpenDir over a checkpoint store the caller owns and
// keeps open (a daemon serving its chunks while the run goes on); Close
// leaves it open.
func OpenDirStore(dir string, s *spec.Spec, train *dataset.Dataset, cs store.CheckpointStore, opts ...engine.Option) (*DirSolver, error) {
	id, err := s.ID()
	if err != nil {
		return nil, err
	}
	return &DirSolver{Dir: dir, Spec: s, Train: train, Engine: opts, job: id, cps: &checkpoints{db: cs, s: s, job: id}}, nil
}

// Close releases the run's checkpoint store.
func (d *DirSolver) Close() error { return d.cps.close() }

// Trace returns the committed trace.
func (d *DirSolver) Trace(ctx context.Context) (*trace.Trace, error) {
	f, err := os.Open(filepath.Join(d.Dir, traceName))
	if err != nil {
		return nil, fmt.Errorf("trainer: %w (was the run trained with --commit?)", err)
	}
	defer f.Close()
	t, err := trace.Read(f)
	if err != nil {
		return nil, err
	}
	if t.Job != d.job {
		return nil, fmt.Errorf("trainer: trace of job %s, not %s", t.Job, d.job)
	}
	return t, t.Check(d.Spec)
}

// Open returns the state after step steps: the newest checkpoint at or
// before it that decodes, replayed forward. Corrupt checkpoints are skipped.
func (d *DirSolver) Open(ctx context.Context, step int64) (*spec.State, error) {
	if step < 0 || step > d.Spec.Steps {
		return nil, fmt.Errorf("trainer: no step %d in a %d-step job", step, d.Spec.Steps)
	}
	st, err := d.cps.latest(ctx, step, func(string, ...any) {})
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = d.Spec.Init()
	}
	if st.Step == step {
		return st, nil
	}
	eng, err := engine.New(d.Spec, st, d.Engine...)
	if err != nil {
		return nil, err
	}
	if err := Replay(ctx, d.Spec, d.Train, eng, step); err != nil {
		return nil, err
	}
	return eng.State(), nil
}

// Replay runs eng's state forward to step `to` with the spec's batches.
func Replay(ctx context.Context, s *spec.Spec, train *dataset.Dataset, eng *engine.Engine, to int64) error {
	st := eng.State()
	sm := s.NewSampler()
	idx := make([]int, s.BatchSize)
	x := make([][]uint8, s.BatchSize)
	y := make([]uint8, s.BatchSize)
	for st.Step < to {
		if err := ctx.Err(); err != nil {
			return err
		}
		sm.Batch(st.Step, idx)
		for b, i := range idx {
			x[b], y[b] = train.Sample(i)
		}
		if _, err := eng.Step(x, y); err != nil {
			return err
		}
	}
	return nil
}
