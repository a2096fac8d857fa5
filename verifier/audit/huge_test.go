package audit

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/trace"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

// TestHugeSpecRefusedCheaply: a spec that bypassed spec.Validate (2^40
// steps, a digest after every one) is refused when its trace is checked,
// without allocating in proportion to its step count, whatever trace the
// solver sends. Not parallel: it measures the process's allocations.
func TestHugeSpecRefusedCheaply(t *testing.T) {
	s, ds := jobSpec(t, 100)
	s.Steps, s.DigestInterval, s.CheckpointInterval = spec.MaxSteps, 1, 1
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	sol := &scripted{tr: &trace.Trace{Job: job, Entries: []trace.Entry{{Step: 0}, {Step: 1}}}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Run(context.Background(), Config{Spec: s, Data: &model.Data{Train: ds}, Beacon: beacon(1)}, sol)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, trace.ErrMalformed) {
		t.Fatalf("Run = %v, want trace.ErrMalformed", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("refusing the spec allocated %d bytes", n)
	}
}
