package trainer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/beluga-compute/beluga/solver/store"
	"github.com/beluga-compute/beluga/spec"
)

// storeDir is where a run keeps its checkpoints: the content-addressed
// chunk store, shared by every checkpoint of the run (unchanged chunks are
// stored once).
const storeDir = "store"

// checkpoints are a run's checkpoints in its chunk store.
type checkpoints struct {
	db    store.CheckpointStore
	s     *spec.Spec
	job   spec.JobID
	owned bool // opened here: close it
}

func openCheckpoints(dir string, s *spec.Spec, job spec.JobID) (*checkpoints, error) {
	db, err := store.Open(filepath.Join(dir, storeDir))
	if err != nil {
		return nil, fmt.Errorf("trainer: open checkpoint store: %w", err)
	}
	return &checkpoints{db: db, s: s, job: job, owned: true}, nil
}

func (c *checkpoints) close() error {
	if !c.owned {
		return nil
	}
	return c.db.Close()
}

// save stores st durably. Saving the same state twice (a resumed run
// passing a checkpoint it already has) is a no-op.
func (c *checkpoints) save(ctx context.Context, st *spec.State) error {
	if _, err := c.db.PutCheckpoint(ctx, c.job, st); err != nil {
		return fmt.Errorf("trainer: checkpoint at step %d: %w", st.Step, err)
	}
	return nil
}

// latest returns the newest checkpoint at or before upTo that reads back
// verified (every chunk against its hash, the state against its digest),
// or nil if there is none. Bad ones are reported to logf and skipped.
func (c *checkpoints) latest(ctx context.Context, upTo int64, logf func(string, ...any)) (*spec.State, error) {
	steps, err := c.db.ListCheckpoints(ctx, c.job)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	slices.Reverse(steps)
	for _, step := range steps {
		if step > upTo {
			continue
		}
		st, err := c.db.GetCheckpoint(ctx, c.s, c.job, step)
		if err == nil {
			return st, nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		logf("skipping checkpoint at step %d: %v", step, err)
	}
	return nil, nil
}
