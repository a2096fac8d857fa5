package catalog

import (
	"errors"
	"runtime"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// allocated returns the bytes allocated on the heap while fn runs (an
// upper bound on how far fn raised the peak). The count is process-wide:
// tests that call it do not run in parallel.
func allocated(fn func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLoadDataMemoryBound: loading the synthetic data of a spec at
// spec.MaxDatasetBytes allocates the samples once and little else: the
// commitment is computed as the samples are generated, not over a second
// copy of them (leaf hashes of 32 bytes a sample once cost 4× the data of
// a 11-feature set). A wrong commitment is detected with the same bound.
func TestLoadDataMemoryBound(t *testing.T) {
	// 2^24 × (11 + 5) = spec.MaxDatasetBytes with BELUGA_SLOW=1 (30 s);
	// 2^20 samples by default: the bound is proportional either way.
	n, f := 1<<20, 11
	if spectest.IsSlow() {
		n = 1 << 24
	}
	s, err := Example(ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	s.Data.Synthetic.Train, s.Data.Synthetic.Test, s.Data.Test = n, 0, nil
	s.Data.Train.Count, s.Data.Train.Features = n, f
	ds, err := dataset.Synthetic(s.Data.Synthetic.Seed, n, f, s.Data.Train.Classes)
	if err != nil {
		t.Fatal(err)
	}
	s.Data.Train.Root = Ref(ds).Root
	ds = nil
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Data.Bytes() > spec.MaxDatasetBytes {
		t.Fatalf("%d bytes: the test is past the limit", s.Data.Bytes())
	}
	data := uint64(n * (f + 1))
	limit := data + 8<<20
	var train *dataset.Dataset
	if got := allocated(func() { train, _, err = LoadData(s, "") }); err != nil || got > limit {
		t.Fatalf("LoadData: %v; allocated %d MiB for %d MiB of samples (limit %d MiB)", err, got>>20, data>>20, limit>>20)
	}
	if train.Len() != n {
		t.Fatalf("%d samples, want %d", train.Len(), n)
	}
	train = nil
	s.Data.Train.Root = "00" + s.Data.Train.Root[2:]
	if got := allocated(func() { _, _, err = LoadData(s, "") }); !errors.Is(err, ErrDataMismatch) || got > limit {
		t.Fatalf("wrong root: %v; allocated %d MiB (limit %d MiB)", err, got>>20, limit>>20)
	}
}

// An IDX spec whose shape is not that of the files LoadData reads is
// refused before any file is opened (the directory does not exist).
func TestLoadDataIDXShape(t *testing.T) {
	t.Parallel()
	s, err := Example(ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	s.Data.Source = spec.SourceIDX
	s.Data.Train.Count = 1 << 20
	if _, _, err := LoadData(s, t.TempDir()+"/absent"); !errors.Is(err, ErrDataMismatch) {
		t.Fatalf("LoadData = %v, want ErrDataMismatch", err)
	}
}
