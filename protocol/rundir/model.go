package rundir

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// ErrNoModel: a directory holds no GPT checkpoint to serve or check
// inference with.
var ErrNoModel = errors.New("no GPT model")

// Model is a GPT run's newest verified checkpoint, loaded for inference
// (SPEC.md §21): the model is named by the checkpoint's state digest.
type Model struct {
	Spec   *spec.Spec
	Job    spec.JobID
	Step   int64 // the checkpoint's step (Spec.Steps for a finished run)
	Config gpt.Config
	State  *gpt.State
	Digest merkle.Digest
}

// OpenModel reads the run directory dir (spec.json and the checkpoint
// store a `beluga train --out dir` wrote) and returns its newest
// checkpoint that reads back verified. It changes nothing in dir: a
// directory without a store is refused, not given an empty one.
func OpenModel(ctx context.Context, dir string, log *slog.Logger) (*Model, error) {
	f, err := os.Open(filepath.Join(dir, "spec.json"))
	if err != nil {
		return nil, fmt.Errorf("%w in %s: %v (train with --out %s first)", ErrNoModel, dir, err, dir)
	}
	s, err := spec.Read(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "spec.json"), err)
	}
	if _, err := s.GPT(); errors.Is(err, spec.ErrUnsupported) {
		return nil, fmt.Errorf("%w in %s: the run is an MLP (%s)", ErrNoModel, dir, s.Name)
	} else if err != nil {
		return nil, err
	}
	job, err := s.ID()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, StoreDir)); err != nil {
		return nil, fmt.Errorf("%w in %s: no checkpoint store (%v)", ErrNoModel, dir, err)
	}
	cps, err := OpenCheckpoints(dir, s, job)
	if err != nil {
		return nil, err
	}
	defer cps.Close()
	st, err := cps.Latest(ctx, s.Steps, log)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%w in %s: no checkpoint of job %s reads back", ErrNoModel, dir, job)
	}
	return ModelFromState(s, job, st)
}

// ModelFromState returns the model of a GPT job's state st (a checkpoint
// read from anywhere: a run directory, the network).
func ModelFromState(s *spec.Spec, job spec.JobID, st *spec.State) (*Model, error) {
	cfg, err := s.GPT()
	if err != nil {
		return nil, err
	}
	gs, err := spec.GPTFromState(cfg, st)
	if err != nil {
		return nil, err
	}
	h := commit.Hasher{Threads: 2}
	return &Model{Spec: s, Job: job, Step: st.Step, Config: cfg, State: gs, Digest: h.StateDigest(job, st)}, nil
}
