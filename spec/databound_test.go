package spec_test

import (
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// syntheticSpec is the built-in synthetic example with n training samples
// of f features (and no test split); its root is a placeholder.
func syntheticSpec(t testing.TB, n, f int) *spec.Spec {
	t.Helper()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Data.Synthetic.Train, s.Data.Synthetic.Test, s.Data.Test = n, 0, nil
	s.Data.Train.Count, s.Data.Train.Features = n, f
	return s
}

// TestDatasetBound: a dataset larger than spec.MaxDatasetBytes is refused
// at validation, before any party generates or reads it. The synthetic
// spec of 2^24 samples × 64 features once took ~3 GB and half a minute to
// load before its commitment was checked.
func TestDatasetBound(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		n, f int
		ok   bool
	}{
		{"2^24 × 64", 1 << 24, 64, false},
		{"at the limit", 1 << 18, 1<<10 - 5, true},
		{"one sample over", 1<<18 + 1, 1<<10 - 5, false},
		{"one feature over", 1 << 18, 1<<10 - 4, false},
		{"synthetic count over 2^24", 1<<24 + 1, 1, false},
		{"synthetic count at 2^24", 1 << 24, 11, true},
	} {
		s := syntheticSpec(t, c.n, c.f)
		err := s.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%s: Validate = %v (%d dataset bytes)", c.name, err, s.Data.Bytes())
		}
		if err != nil && !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("%s: %v is not spec.ErrInvalid", c.name, err)
		}
	}
	// The test split counts too: train and test are both held.
	s := syntheticSpec(t, 1<<17, 1<<10-5)
	test := s.Data.Train
	s.Data.Test, s.Data.Synthetic.Test = &test, test.Count
	if err := s.Validate(); err != nil {
		t.Fatalf("two halves of the limit: %v", err)
	}
	s.Data.Test.Count++
	s.Data.Synthetic.Test++
	if err := s.Validate(); !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("train and test over the limit together: %v", err)
	}
	// Any source: an IDX dataset is bounded the same way.
	s = syntheticSpec(t, 1<<18, 1<<10-4)
	s.Data.Source, s.Data.Synthetic = spec.SourceIDX, nil
	if err := s.Validate(); !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("IDX dataset over the limit: %v", err)
	}
}
