// Package rundir is the layout of a run directory — spec.json, the trace
// (trace.txt when finished, trace.partial while running) and the
// checkpoint chunk store (store/) — shared by the solver that writes it and
// by the parties that read it: `beluga audit`, the prover, a resuming
// solver.
package rundir

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

// Run serves a finished run's commitments from its output directory:
// the trace, and the state after any step, recomputed from the nearest
// checkpoint at or before it. It is the solver's side of an audit, for
// either kind of job (an MLP or a GPT: spec/model).
type Run struct {
	Dir  string
	Spec *spec.Spec
	// Data is the job's data (model.LoadData), replayed from a checkpoint.
	Data *model.Data
	// Model configures the replays (kernel, threads).
	Model []model.Option
	job   spec.JobID
	cps   *Checkpoints
}

// Open returns the solver of the run in dir, whose spec.json must be s.
func Open(dir string, s *spec.Spec, data *model.Data, opts ...model.Option) (*Run, error) {
	id, err := s.ID()
	if err != nil {
		return nil, err
	}
	cps, err := OpenCheckpoints(dir, s, id)
	if err != nil {
		return nil, err
	}
	return &Run{Dir: dir, Spec: s, Data: data, Model: opts, job: id, cps: cps}, nil
}

// OpenStore is Open over a checkpoint store the caller owns and
// keeps open (a daemon serving its chunks while the run goes on); Close
// leaves it open.
func OpenStore(dir string, s *spec.Spec, data *model.Data, cs store.CheckpointStore, opts ...model.Option) (*Run, error) {
	id, err := s.ID()
	if err != nil {
		return nil, err
	}
	return &Run{Dir: dir, Spec: s, Data: data, Model: opts, job: id, cps: StoreCheckpoints(cs, s, id)}, nil
}

// Close releases the run's checkpoint store.
func (d *Run) Close() error { return d.cps.Close() }

// Trace returns the committed trace.
func (d *Run) Trace(ctx context.Context) (*trace.Trace, error) {
	f, err := os.Open(filepath.Join(d.Dir, TraceName))
	if err != nil {
		return nil, fmt.Errorf("rundir: %w (was the run trained with --commit?)", err)
	}
	defer f.Close()
	// ReadSpec checks each entry against the spec as it reads, so a
	// trace file never costs more than the spec's digest count.
	t, err := trace.ReadSpec(f, d.Spec)
	if err != nil {
		return nil, fmt.Errorf("rundir: %s: %w", TraceName, err)
	}
	return t, nil
}

// Open returns the state after step steps: the newest checkpoint at or
// before it that decodes, replayed forward. Corrupt checkpoints are skipped.
func (d *Run) Open(ctx context.Context, step int64) (*spec.State, error) {
	if step < 0 || step > d.Spec.Steps {
		return nil, fmt.Errorf("rundir: no step %d in a %d-step job", step, d.Spec.Steps)
	}
	st, err := d.cps.Latest(ctx, step, nil)
	if err != nil {
		return nil, err
	}
	if st == nil {
		if st, err = model.InitState(d.Spec); err != nil {
			return nil, err
		}
	}
	return Replay(ctx, d.Spec, d.Data, st, step, d.Model...)
}

// Replay trains st, a state of s, on data up to step to with the spec's
// semantics (spec/model: an MLP or a GPT) and returns the state reached.
// st is the replay's from then on (the returned state may be st itself);
// a state already at step to is returned as it is. It checks ctx between
// steps.
func Replay(ctx context.Context, s *spec.Spec, data *model.Data, st *spec.State, to int64, opts ...model.Option) (*spec.State, error) {
	if st.Step > to {
		return nil, fmt.Errorf("rundir: cannot replay step %d back to step %d", st.Step, to)
	}
	if st.Step == to {
		return st, nil
	}
	r, err := model.NewRunner(s, data, st, opts...)
	if err != nil {
		return nil, err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close() // a Vulkan runner's device buffers (its State is the host's copy)
	}
	for r.State().Step < to {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := r.Step(); err != nil {
			return nil, err
		}
	}
	return r.State(), nil
}
