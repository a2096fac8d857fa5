package engine_test

import (
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/engine"
)

// TestNewRefusesGPT: the MLP engine handed a GPT spec says so instead of
// indexing an empty layer plan (it panicked before).
func TestNewRefusesGPT(t *testing.T) {
	t.Parallel()
	s := spec.ExampleGPT()
	if _, err := engine.New(s, s.Init()); !errors.Is(err, spec.ErrUnsupported) {
		t.Fatalf("engine.New on a GPT: %v", err)
	}
}
