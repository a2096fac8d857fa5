package store_test

import (
	"context"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// benchImpls are the stores the benchmarks compare.
var benchImpls = []struct {
	name string
	open func(b *testing.B) store.CheckpointStore
}{
	{"badger-disk", func(b *testing.B) store.CheckpointStore {
		s, err := store.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return s
	}},
	{"badger-mem", func(b *testing.B) store.CheckpointStore {
		s, err := store.Open("", store.WithInMemory())
		if err != nil {
			b.Fatal(err)
		}
		return s
	}},
	{"memory", func(b *testing.B) store.CheckpointStore { return store.NewMemory() }},
}

// referenceMLP is the fashion-mnist example (784-256-128-10) at its initial
// state, with the momenta filled so that no two chunks are equal.
func referenceMLP(b *testing.B) (*spec.Spec, spec.JobID, *spec.State, int64) {
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		b.Fatal(err)
	}
	job, err := s.ID()
	if err != nil {
		b.Fatal(err)
	}
	st := s.Init()
	var n int64
	for ti := range st.Tensors {
		d := st.Tensors[ti].Data
		for i := range d {
			if d[i] == 0 {
				d[i] = int32(i*31 + ti)
			}
		}
		n += 4 * int64(len(d))
	}
	return s, job, st, n
}

// touch changes one element of every chunk of st, so every chunk is new.
func touch(st *spec.State) {
	for ti := range st.Tensors {
		d := st.Tensors[ti].Data
		for i := 0; i < len(d); i += commit.ChunkBytes / 4 {
			d[i]++
		}
	}
}

// BenchmarkPutCheckpoint stores the reference MLP state: "new" changes
// every chunk each time (all chunks written), "dedup" only the step (no
// chunk written, only hashed and compared).
func BenchmarkPutCheckpoint(b *testing.B) {
	ctx := context.Background()
	for _, impl := range benchImpls {
		for _, mode := range []string{"new", "dedup"} {
			b.Run(impl.name+"/"+mode, func(b *testing.B) {
				_, job, st, size := referenceMLP(b)
				s := impl.open(b)
				defer s.Close()
				b.SetBytes(size)
				step := int64(0)
				for b.Loop() {
					if mode == "new" {
						touch(st)
					}
					st.Step = step
					if _, err := s.PutCheckpoint(ctx, job, st); err != nil {
						b.Fatal(err)
					}
					step++
					if mode == "new" && step%32 == 0 { // keep memory bounded
						b.StopTimer()
						for old := step - 32; old < step-1; old++ {
							if err := s.DeleteCheckpoint(ctx, job, old); err != nil {
								b.Fatal(err)
							}
						}
						if _, _, err := s.GC(ctx); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
				}
			})
		}
	}
}

// BenchmarkGetCheckpoint rebuilds the reference MLP state, verifying every
// chunk and the state digest.
func BenchmarkGetCheckpoint(b *testing.B) {
	ctx := context.Background()
	for _, impl := range benchImpls {
		b.Run(impl.name, func(b *testing.B) {
			sp, job, st, size := referenceMLP(b)
			s := impl.open(b)
			defer s.Close()
			if _, err := s.PutCheckpoint(ctx, job, st); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			for b.Loop() {
				if _, err := s.GetCheckpoint(ctx, sp, job, st.Step); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
