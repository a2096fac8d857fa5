package dataset

import (
	"fmt"
	"slices"

	"github.com/beluga-compute/beluga/spec/merkle"
)

// Block sizes of a SampleTree. A block is 2^b consecutive samples, b the
// least in 0 … maxBlockBits with 2^b × (features + 5) ≥ blockLeafBytes:
// 1024 samples of one feature, 8 of 784 (Fashion-MNIST), one of 4091 or
// more. The tree keeps about 2 hashes (64 bytes) per block: 1/64 of the
// samples' leaf bytes at most (2^b × (features + 5) ≥ 4096) or, when the
// block is 2^10 samples of ≥ 6 bytes, 1/96; about 4 MiB at most within
// spec.MaxDatasetBytes. A proof rehashes one block: at most 2^10 leaves
// and, unless the block is one sample, under 8 KiB of samples.
const (
	maxBlockBits   = 10
	blockLeafBytes = 1 << 12
)

// blockBits returns b of a dataset of this many features.
func blockBits(features int) int {
	b := 0
	for b < maxBlockBits && (features+5)<<b < blockLeafBytes {
		b++
	}
	return b
}

// SampleTree proves samples of one dataset in its "beluga/samples/v1"
// tree (SPEC.md §6.4) without holding a hash per sample. It keeps the
// levels of the tree at and above the roots of blocks of 2^b consecutive
// samples (b from blockBits, at most 10): one hash per block and the
// levels above, O(n / 2^b) memory, under 4 MiB for any dataset within
// spec.MaxDatasetBytes. A proof rehashes the samples of its block, which
// the tree reads from the dataset (a Dataset is immutable), and takes the
// rest of its path from the kept levels.
//
// Proofs and the root are exactly spec/merkle's (merkle.Tree.Prove and
// Root over the leaf hashes): a node of level k ≥ 0 covers leaves
// [j·2^k, min((j+1)·2^k, n)), and blocks start at multiples of 2^b, so a
// block's levels below b depend only on its own samples, and an odd
// level's last node is promoted unchanged (levelUp) both inside the last
// block and above it.
type SampleTree struct {
	ds   *Dataset
	c    Commitment
	bits int
	// upper[k] is level bits+k of the tree: upper[0][j] is the root of
	// block j, upper[k+1] = levelUp(upper[k]), and the last level holds
	// the root alone (upper is [[]] for an empty dataset).
	upper [][]merkle.Digest
}

// NewSampleTree hashes ds (leaves on all cores, a chunk at a time, as
// Commit does) and keeps the levels from the block roots up.
func NewSampleTree(ds *Dataset) *SampleTree {
	n, bits := ds.Len(), blockBits(ds.features)
	blocks := make([]merkle.Digest, 0, (n+1<<bits-1)>>bits)
	if n > 0 {
		leaves := make([]merkle.Digest, min(n, commitChunk))
		scratch := make([]merkle.Digest, (len(leaves)+1)/2)
		for lo := 0; lo < n; lo += commitChunk {
			// A chunk starts at a multiple of commitChunk = 2^14, so of
			// 2^bits: its level bits is a run of the tree's.
			chunk := leaves[:min(commitChunk, n-lo)]
			hashLeaves(ds, lo, chunk)
			blocks = append(blocks, climbLevels(chunk, scratch, bits)...)
		}
	}
	upper := [][]merkle.Digest{blocks}
	for cur := blocks; len(cur) > 1; {
		cur = levelUp(make([]merkle.Digest, (len(cur)+1)/2), cur)
		upper = append(upper, cur)
	}
	root := samplesTree.Empty()
	if top := upper[len(upper)-1]; len(top) == 1 {
		root = top[0]
	}
	return &SampleTree{
		ds:    ds,
		c:     Commitment{Root: root, Count: n, Features: ds.features, Classes: ds.classes},
		bits:  bits,
		upper: upper,
	}
}

// climbLevels returns level k above level cur, computed in cur and spare
// (len ≥ (len(cur)+1)/2), which it overwrites; the result aliases one of
// them.
func climbLevels(cur, spare []merkle.Digest, k int) []merkle.Digest {
	for range k {
		next := levelUp(spare[:(len(cur)+1)/2], cur)
		spare, cur = cur, next
	}
	return cur
}

// Commitment returns the commitment, equal to Commit of the dataset.
func (t *SampleTree) Commitment() Commitment { return t.c }

// Prove returns the inclusion proof of sample i, identical to what
// merkle.Tree.Prove gives over the leaf hashes. It rehashes i's block; to
// prove many samples at once use ProveBatch, which rehashes each block
// once.
func (t *SampleTree) Prove(i int) (merkle.Proof, error) {
	ps, err := t.ProveBatch([]int{i})
	if err != nil {
		return merkle.Proof{}, err
	}
	return ps[0], nil
}

// ProveBatch returns the proofs of samples idx[0], idx[1], … in that
// order (indices may repeat and come in any order), each equal to
// Prove's. It rehashes every block that holds an index once, so a batch
// costs at most one pass over the dataset however large it is.
func (t *SampleTree) ProveBatch(idx []int) ([]merkle.Proof, error) {
	for _, i := range idx {
		if i < 0 || i >= t.c.Count {
			return nil, fmt.Errorf("%w: sample %d of %d", ErrBadArgument, i, t.c.Count)
		}
	}
	order := make([]int, len(idx))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int { return idx[a] - idx[b] })
	proofs := make([]merkle.Proof, len(idx))
	var b blockLevels
	for _, k := range order {
		if j := idx[k] >> t.bits; !b.holds(j) {
			t.rehash(&b, j)
		}
		proofs[k] = t.proof(idx[k], &b)
	}
	return proofs, nil
}

// blockLevels holds the levels 0 … bits−1 of one block, leaves first.
type blockLevels struct {
	block  int
	levels [][]merkle.Digest
	buf    []merkle.Digest
}

func (b *blockLevels) holds(j int) bool { return b.levels != nil && b.block == j }

// rehash fills b with block j's levels, reusing its buffer.
func (t *SampleTree) rehash(b *blockLevels, j int) {
	lo := j << t.bits
	m := min(1<<t.bits, t.c.Count-lo)
	// Level k has ⌈m/2^k⌉ < m/2^k + 1 nodes: levels 0 … bits−1 take
	// fewer than 2m + bits.
	if need := 2*m + t.bits; cap(b.buf) < need {
		b.buf = make([]merkle.Digest, need)
	}
	rest := b.buf[:cap(b.buf)]
	b.block, b.levels = j, b.levels[:0]
	cur := rest[:m]
	hashLeaves(t.ds, lo, cur)
	rest = rest[m:]
	for k := range t.bits {
		b.levels = append(b.levels, cur)
		if k+1 < t.bits {
			next := rest[:(len(cur)+1)/2]
			rest = rest[len(next):]
			cur = levelUp(next, cur)
		}
	}
}

// proof returns sample i's proof; b holds i's block. Siblings come from
// the block's levels, then from the kept ones; a node with no sibling (the
// last of an odd level) contributes none, as in spec/merkle. Inside the
// last block, level k's length is the tree's less the nodes of the blocks
// before it (a multiple of 2^(bits−k), so even): the same nodes lack a
// sibling.
func (t *SampleTree) proof(i int, b *blockLevels) merkle.Proof {
	p := merkle.Proof{Index: uint64(i), Count: uint64(t.c.Count)}
	p.Siblings = make([]merkle.Digest, 0, t.bits+len(t.upper)-1)
	local := i & (1<<t.bits - 1)
	for _, level := range b.levels {
		if sib := local ^ 1; sib < len(level) {
			p.Siblings = append(p.Siblings, level[sib])
		}
		local >>= 1
	}
	j := i >> t.bits
	for _, level := range t.upper[:len(t.upper)-1] {
		if sib := j ^ 1; sib < len(level) {
			p.Siblings = append(p.Siblings, level[sib])
		}
		j >>= 1
	}
	return p
}
