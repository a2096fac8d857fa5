package rundir

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

// StoreDir is where a run keeps its checkpoints: the content-addressed
// chunk store, shared by every checkpoint of the run (unchanged chunks are
// stored once).
const StoreDir = "store"

// Checkpoints are a run's checkpoints in its chunk store.
type Checkpoints struct {
	db    store.CheckpointStore
	s     *spec.Spec
	job   spec.JobID
	owned bool // opened here: close it
}

// OpenCheckpoints opens the checkpoints of job (the spec s) in dir's
// chunk store (StoreDir), creating the store if it is absent.
func OpenCheckpoints(dir string, s *spec.Spec, job spec.JobID) (*Checkpoints, error) {
	db, err := store.Open(filepath.Join(dir, StoreDir))
	if err != nil {
		return nil, fmt.Errorf("rundir: open checkpoint store: %w", err)
	}
	return &Checkpoints{db: db, s: s, job: job, owned: true}, nil
}

// StoreCheckpoints returns the checkpoints of job in a store the caller
// owns and keeps open; Close leaves it open.
func StoreCheckpoints(cs store.CheckpointStore, s *spec.Spec, job spec.JobID) *Checkpoints {
	return &Checkpoints{db: cs, s: s, job: job}
}

// Close closes the store if OpenCheckpoints opened it.
func (c *Checkpoints) Close() error {
	if !c.owned {
		return nil
	}
	return c.db.Close()
}

// Save stores st durably. Saving the same state twice (a resumed run
// passing a checkpoint it already has) is a no-op.
func (c *Checkpoints) Save(ctx context.Context, st *spec.State) error {
	if _, err := c.db.PutCheckpoint(ctx, c.job, st); err != nil {
		return fmt.Errorf("rundir: checkpoint at step %d: %w", st.Step, err)
	}
	return nil
}

// EventCheckpointSkipped is the log event of a checkpoint that does not
// read back (a corrupt chunk, a digest mismatch) and is passed over.
const EventCheckpointSkipped = "rundir: checkpoint skipped"

// Latest returns the newest checkpoint at or before upTo that reads back
// verified (every chunk against its hash, the state against its digest),
// or nil if there is none. Bad ones are skipped, each logged to log
// (EventCheckpointSkipped at Warn, with "step" and "err"; nil log: not
// logged). A checkpoint must have exactly the tensors of a state of the
// spec (model.StateTemplate: an MLP's or a GPT's).
func (c *Checkpoints) Latest(ctx context.Context, upTo int64, log *slog.Logger) (*spec.State, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	template, err := model.StateTemplate(c.s)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	steps, err := c.db.ListCheckpoints(ctx, c.job)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	slices.Reverse(steps)
	for _, step := range steps {
		if step > upTo || step > c.s.Steps {
			continue
		}
		st, err := c.db.GetState(ctx, c.job, step, template)
		if err == nil {
			return st, nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		log.Warn(EventCheckpointSkipped, "step", step, "err", err.Error())
	}
	return nil, nil
}
