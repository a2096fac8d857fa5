package model_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/model"
)

// TestRunnerRefusesServedModel: no trainer starts on GPT-2 blocks (SPEC.md
// §22): a solver or verifier given such a job refuses it, saying why.
func TestRunnerRefusesServedModel(t *testing.T) {
	t.Parallel()
	s := spec.ServedGPT2("imported", 64, 32, 2, 2, 128, 12)
	st, err := model.InitState(s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = model.NewRunner(s, &model.Data{}, st)
	if !errors.Is(err, spec.ErrUnsupported) || !strings.Contains(err.Error(), "served, not trained") {
		t.Fatalf("NewRunner on GPT-2 blocks: %v", err)
	}
}
