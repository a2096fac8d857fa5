package dispute

import (
	"context"
	"slices"
	"testing"

	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// TestOpenBatchProofsAreMerkles: the batch a Replayer opens (proved by
// the bounded SampleTree, a block at a time) carries, for every sample in
// batch order, exactly spec/merkle's proof over all the leaf hashes, and
// the referee's VerifyBatch accepts it.
func TestOpenBatchProofsAreMerkles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, ds := syntheticJob(t, 6)
	tree := merkle.New(dataset.SamplesTag)
	leaves := make([]merkle.Digest, ds.Len())
	for i := range leaves {
		x, y := ds.Sample(i)
		leaves[i] = tree.Leaf(dataset.SampleLeaf(i, x, y))
	}
	r := replayer(t, s, ds, s.Init(), nil)
	for step := range s.Steps {
		o, err := r.OpenBatch(ctx, step)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := VerifyBatch(s, step, o); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for b, smp := range o.Samples {
			want, err := tree.Prove(leaves, smp.Index)
			if err != nil {
				t.Fatal(err)
			}
			if smp.Proof.Index != want.Index || smp.Proof.Count != want.Count || !slices.Equal(smp.Proof.Siblings, want.Siblings) {
				t.Fatalf("step %d, batch slot %d (sample %d): proof differs from merkle.Prove", step, b, smp.Index)
			}
		}
	}
}
