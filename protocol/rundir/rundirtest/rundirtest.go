// Package rundirtest writes honest committed run directories for the tests
// of parties that read them (the audit, the prover) without importing the
// solver: the steps come from spec/model (an MLP's engine or a GPT) and
// the files from protocol/rundir, the same code the solver's trainer uses,
// so a run written here is byte for byte the run a solver writes.
package rundirtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/model"
)

// Train runs s over train into dir as `beluga train --commit` does: a
// state digest every digest_interval steps and after the last, a
// checkpoint every checkpoint_interval steps and of the final state, the
// trace in rundir.TraceName. It returns the job ID and the trace.
func Train(ctx context.Context, dir string, s *spec.Spec, train *dataset.Dataset) (spec.JobID, *trace.Trace, error) {
	return TrainData(ctx, dir, s, &model.Data{Train: train})
}

// TrainData is Train for either kind of job: data is an MLP's training
// set or a GPT's corpus (model.LoadData, model.NewTextData).
func TrainData(ctx context.Context, dir string, s *spec.Spec, data *model.Data) (spec.JobID, *trace.Trace, error) {
	id, err := s.ID()
	if err != nil {
		return id, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return id, nil, err
	}
	js, err := s.Canonical()
	if err != nil {
		return id, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "spec.json"), js, 0o644); err != nil {
		return id, nil, err
	}
	cps, err := rundir.OpenCheckpoints(dir, s, id)
	if err != nil {
		return id, nil, err
	}
	defer cps.Close()
	init, err := model.InitState(s)
	if err != nil {
		return id, nil, err
	}
	r, err := model.NewRunner(s, data, init, model.WithThreads(1))
	if err != nil {
		return id, nil, err
	}
	st := r.State()
	var h commit.Hasher
	tr := &trace.Trace{Job: id}
	tr.Entries = append(tr.Entries, trace.Entry{Step: 0, Digest: h.StateDigest(id, st)})
	for st.Step < s.Steps {
		if err := ctx.Err(); err != nil {
			return id, nil, err
		}
		if _, err := r.Step(); err != nil {
			return id, nil, err
		}
		if st.Step%s.DigestInterval == 0 || st.Step == s.Steps {
			tr.Entries = append(tr.Entries, trace.Entry{Step: st.Step, Digest: h.StateDigest(id, st)})
		}
		if st.Step%s.CheckpointInterval == 0 || st.Step == s.Steps {
			if err := cps.Save(ctx, st); err != nil {
				return id, nil, err
			}
		}
	}
	if err := tr.Check(s); err != nil {
		return id, nil, fmt.Errorf("rundirtest: the trace written does not check: %w", err)
	}
	return id, tr, rundir.WriteTrace(filepath.Join(dir, rundir.TraceName), id, tr.Entries)
}
