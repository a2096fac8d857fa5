package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

// TestDecodeJobRefusesServedModel: a training job whose model is GPT-2
// blocks (SPEC.md §22: imported, served, never trained) is refused with an
// error that says so.
func TestDecodeJobRefusesServedModel(t *testing.T) {
	t.Parallel()
	canon, err := spec.ServedGPT2("imported", 64, 32, 2, 2, 128, 12).Canonical()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = DecodeJob([]byte(`{"spec":` + string(canon) + `}`))
	if !errors.Is(err, errInvalidSpec) || !errors.Is(err, spec.ErrUnsupported) || !strings.Contains(err.Error(), "served, not trained") {
		t.Fatalf("DecodeJob of a served model: %v", err)
	}
	plain, _ := spec.ExampleGPT().Canonical()
	if _, _, err := DecodeJob([]byte(`{"spec":` + string(plain) + `}`)); err != nil {
		t.Fatalf("§20 GPT job refused: %v", err)
	}
}
