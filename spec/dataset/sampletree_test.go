package dataset

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/merkle"
)

// fullLevels is the tree SampleTree kept before it was bounded: every
// level, leaves first, 64 bytes per sample in all.
type fullLevels [][]merkle.Digest

func newFullLevels(ds *Dataset) fullLevels {
	cur := make([]merkle.Digest, ds.Len())
	hashLeaves(ds, 0, cur)
	levels := fullLevels{cur}
	for len(cur) > 1 {
		cur = levelUp(make([]merkle.Digest, (len(cur)+1)/2), cur)
		levels = append(levels, cur)
	}
	return levels
}

func (f fullLevels) root() merkle.Digest {
	if top := f[len(f)-1]; len(top) == 1 {
		return top[0]
	}
	return samplesTree.Empty()
}

func (f fullLevels) prove(i int) merkle.Proof {
	p := merkle.Proof{Index: uint64(i), Count: uint64(len(f[0]))}
	for _, level := range f[:len(f)-1] {
		if sib := i ^ 1; sib < len(level) {
			p.Siblings = append(p.Siblings, level[sib])
		}
		i >>= 1
	}
	return p
}

func sameProof(a, b merkle.Proof) bool {
	return a.Index == b.Index && a.Count == b.Count && slices.Equal(a.Siblings, b.Siblings)
}

func TestBlockBits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ features, want int }{
		{1, 10}, {2, 10}, {3, 9}, {11, 8}, {59, 6}, {60, 6}, {784, 3}, {4090, 1}, {4091, 0}, {65536, 0},
	} {
		if got := blockBits(c.features); got != c.want {
			t.Errorf("blockBits(%d) = %d, want %d", c.features, got, c.want)
		}
	}
}

// TestSampleTreeMatchesFullLevels: the bounded tree gives the root and
// every proof of the tree that kept all levels (and of spec/merkle), for
// sizes below one block, at block and chunk boundaries and between them,
// and block sizes 2^10 down to 2^0.
func TestSampleTreeMatchesFullLevels(t *testing.T) {
	t.Parallel()
	merkleTree := merkle.New(SamplesTag)
	sizes := []int{1, 2, 3, 5, 511, 1023, 1024, 1025, 2047, 2048, 2049, 3000, 5121,
		commitChunk - 1, commitChunk, commitChunk + 1, 2*commitChunk + 1027}
	for _, features := range []int{1, 3, 60, 784, 4091} {
		for _, n := range sizes {
			if n*(features+5) > 1<<22 {
				continue // enough shapes for the wide features without 4 MiB datasets
			}
			ds := mustSynthetic(t, uint64(n), n, features, 7)
			full, st := newFullLevels(ds), NewSampleTree(ds)
			if st.Commitment().Root != full.root() || st.Commitment() != Commit(ds) {
				t.Fatalf("features %d, n %d: roots differ", features, n)
			}
			block := 1 << blockBits(features)
			var idx []int
			for i := 0; i < n; i += max(1, n/300) {
				idx = append(idx, i)
			}
			for _, e := range []int{block - 1, block, block + 1, n - block - 1, n - block, n - 2, n - 1} {
				if e >= 0 && e < n {
					idx = append(idx, e)
				}
			}
			batch, err := st.ProveBatch(idx)
			if err != nil {
				t.Fatal(err)
			}
			for k, i := range idx {
				want := full.prove(i)
				got, err := st.Prove(i)
				if err != nil {
					t.Fatal(err)
				}
				if !sameProof(got, want) || !sameProof(batch[k], want) {
					t.Fatalf("features %d, n %d, sample %d: proof differs from the full tree's", features, n, i)
				}
				if k%37 == 0 && n <= 5121 {
					if m, _ := merkleTree.Prove(full[0], i); !sameProof(got, m) {
						t.Fatalf("features %d, n %d, sample %d: proof differs from merkle.Prove", features, n, i)
					}
				}
				x, y := ds.Sample(i)
				if err := VerifySample(st.Commitment(), i, x, y, got); err != nil {
					t.Fatalf("features %d, n %d, sample %d: %v", features, n, i, err)
				}
			}
		}
	}
}

// TestSampleTreeProveBatch: a batch in any order, with repeats, gets
// Prove's proof for each index in its place; a bad index refuses the
// whole batch.
func TestSampleTreeProveBatch(t *testing.T) {
	t.Parallel()
	ds := mustSynthetic(t, 3, 5000, 2, 4)
	st := NewSampleTree(ds)
	r := rand.New(rand.NewPCG(1, 2))
	idx := make([]int, 300)
	for k := range idx {
		idx[k] = r.IntN(ds.Len())
	}
	idx = append(idx, idx[7], 0, ds.Len()-1, idx[7])
	ps, err := st.ProveBatch(idx)
	if err != nil || len(ps) != len(idx) {
		t.Fatalf("ProveBatch: %d proofs, %v", len(ps), err)
	}
	for k, i := range idx {
		if want, _ := st.Prove(i); !sameProof(ps[k], want) {
			t.Fatalf("batch position %d (sample %d): proof differs from Prove", k, i)
		}
	}
	if ps, err := st.ProveBatch(nil); err != nil || len(ps) != 0 {
		t.Fatalf("empty batch: %v %v", ps, err)
	}
	for _, bad := range [][]int{{0, -1}, {ds.Len()}, {5, ds.Len() + 1<<20, 6}} {
		if ps, err := st.ProveBatch(bad); !errors.Is(err, ErrBadArgument) || ps != nil {
			t.Fatalf("batch %v: %d proofs, %v; want ErrBadArgument", bad, len(ps), err)
		}
	}
}

// TestSampleTreeMemory: building the tree over n one-feature samples (the
// most samples spec.MaxDatasetBytes allows per byte) allocates O(n/2^10)
// beside the samples, and keeps less: the old tree kept 64 bytes per
// sample (64 MiB here). Not parallel: the heap counters are the process's.
func TestSampleTreeMemory(t *testing.T) {
	const n = 1 << 20
	ds := recommit(t, mustSynthetic(t, 5, n, 1, 2))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	st := NewSampleTree(ds)
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Kept: about 2 hashes per block of 2^10 (64 KiB here). Allocated on
	// the way: one chunk of leaf hashes and half a chunk of scratch
	// (768 KiB), and each hashing goroutine's leaf buffer.
	perBlock := int64(n>>maxBlockBits) * 2 * 32
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	allocated := int64(after.TotalAlloc - before.TotalAlloc)
	if limit := perBlock + 64<<10; kept > limit {
		t.Errorf("the tree over %d samples keeps %d bytes, want ≤ %d", n, kept, limit)
	}
	if limit := perBlock + commitChunk*3/2*32 + 256<<10; allocated > limit {
		t.Errorf("building the tree over %d samples allocated %d bytes, want ≤ %d", n, allocated, limit)
	}
	t.Logf("%d samples: kept %d bytes, allocated %d (the full tree: %d)", n, kept, allocated, 2*n*32)
	if st.Commitment() != Commit(ds) {
		t.Fatal("root differs from Commit")
	}
}

// BenchmarkSampleTreeProveBatch proves a batch of 64 Fashion-MNIST-sized
// samples, as a dispute party opens a step's batch.
func BenchmarkSampleTreeProveBatch(b *testing.B) {
	ds := fashionSized(b)
	st := NewSampleTree(ds)
	r := rand.New(rand.NewPCG(1, 1))
	idx := make([]int, 64)
	for b.Loop() {
		for k := range idx {
			idx[k] = r.IntN(ds.Len())
		}
		if _, err := st.ProveBatch(idx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSampleTreeProveNarrow proves single samples of a 2^20-sample,
// one-feature dataset: blocks of 2^10, the most leaves a proof rehashes.
func BenchmarkSampleTreeProveNarrow(b *testing.B) {
	st := NewSampleTree(mustSynthetic(b, 1, 1<<20, 1, 2))
	i := 0
	for b.Loop() {
		if _, err := st.Prove(i % (1 << 20)); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}
