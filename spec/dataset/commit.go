package dataset

import (
	"encoding/binary"
	"fmt"

	"github.com/beluga-compute/beluga/spec/merkle"
)

// SamplesTag is the Merkle tree tag of sample commitments.
const SamplesTag = "beluga/samples/v1"

var samplesTree = merkle.New(SamplesTag)

// Commitment names a dataset: the root of the samples tree plus the shape a
// verifier needs to check a sample (the root and Count together fix the
// tree, see spec/merkle).
type Commitment struct {
	Root     merkle.Digest
	Count    int
	Features int
	Classes  int
}

// SampleLeaf returns the leaf data of sample i:
//
//	le32(i) || label || features     (5 + len(features) bytes)
//
// The index is in the leaf so that the leaf hash alone binds a sample to
// its position: identical samples at different positions hash differently,
// and a leaf hash quoted outside a proof (in a batch list, a log, a
// challenge) cannot be moved to another slot. The proof's path binds the
// position too; the index in the leaf makes that binding survive any code
// that handles leaf hashes without their proofs.
//
// i must be in [0, 2^32); a Dataset has at most MaxSamples (2^30) samples.
func SampleLeaf(i int, features []uint8, label uint8) []byte {
	return appendLeaf(make([]byte, 0, 5+len(features)), i, features, label)
}

func appendLeaf(buf []byte, i int, features []uint8, label uint8) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(i))
	buf = append(buf, label)
	return append(buf, features...)
}

// hashLeaves writes the leaf hashes of samples lo … lo+len(dst)−1 of ds
// into dst, on all cores.
func hashLeaves(ds *Dataset, lo int, dst []merkle.Digest) {
	parallel(len(dst), 256, func(from, to int) {
		buf := make([]byte, 0, 5+ds.features)
		for k := from; k < to; k++ {
			x, y := ds.Sample(lo + k)
			buf = appendLeaf(buf[:0], lo+k, x, y)
			dst[k] = samplesTree.Leaf(buf)
		}
	})
}

// commitChunk is how many samples are generated or hashed between two
// pushes into a rootBuilder: enough to keep every core busy, small enough
// (512 KiB of leaf hashes) to be nothing beside the samples.
const commitChunk = 1 << 14

// Commit returns the commitment to ds: the root of the "beluga/samples/v1"
// tree whose leaf i is SampleLeaf(i, features, label) of sample i (an empty
// dataset has the tree's empty root). It equals merkle.New(SamplesTag).Root
// over the leaf hashes, but hashes leaves on all cores and streams them
// into the tree: it holds O(log n) hashes beside the samples, never one
// per sample. A dataset this package generated carries the commitment it
// computed while generating the samples, and Commit returns that.
func Commit(ds *Dataset) Commitment {
	if ds.commitment != nil {
		return *ds.commitment
	}
	var tree rootBuilder
	leaves, scratch := chunkBuffers(ds.Len())
	for lo := 0; lo < ds.Len(); lo += commitChunk {
		chunk := leaves[:min(commitChunk, ds.Len()-lo)]
		hashLeaves(ds, lo, chunk)
		tree.pushChunk(chunk, scratch)
	}
	return Commitment{Root: tree.root(), Count: ds.Len(), Features: ds.features, Classes: ds.classes}
}

// chunkBuffers returns the leaf and scratch buffers of pushChunk for a
// dataset of n samples.
func chunkBuffers(n int) (leaves, scratch []merkle.Digest) {
	if n < commitChunk {
		return make([]merkle.Digest, n), nil
	}
	return make([]merkle.Digest, commitChunk), make([]merkle.Digest, commitChunk/2)
}

// rootBuilder computes the root of a samples tree from its leaf hashes in
// order, holding one hash per level. It keeps the roots of the perfect
// subtrees that the binary digits of the leaf count cut the leaves into,
// largest first; RFC 6962's shape (spec/merkle) is exactly those subtrees
// joined from the right: root = node(P₁, node(P₂, … node(P_{m−1}, P_m))).
type rootBuilder struct {
	roots []merkle.Digest
	sizes []uint64
}

// push appends the next leaf hash.
func (b *rootBuilder) push(leaf merkle.Digest) { b.pushSubtree(leaf, 1) }

// pushChunk appends the leaf hashes of the next chunk, which starts at a
// multiple of commitChunk samples. A full chunk is a perfect subtree at an
// aligned position: its root is hashed level by level on all cores (in
// leaves and scratch, which it overwrites; scratch holds commitChunk/2)
// and pushed whole.
func (b *rootBuilder) pushChunk(leaves, scratch []merkle.Digest) {
	if len(leaves) != commitChunk {
		for _, l := range leaves {
			b.push(l)
		}
		return
	}
	cur, spare := leaves, scratch
	for len(cur) > 1 {
		next := levelUp(spare[:len(cur)/2], cur)
		spare, cur = cur, next
	}
	b.pushSubtree(cur[0], commitChunk)
}

// pushSubtree appends the root h of a perfect subtree of size leaves (a
// power of two, no larger than any subtree pushed before), merging
// equal-sized subtrees.
func (b *rootBuilder) pushSubtree(h merkle.Digest, size uint64) {
	for n := len(b.roots); n > 0 && b.sizes[n-1] == size; n-- {
		h, size = samplesTree.Node(b.roots[n-1], h), 2*size
		b.roots, b.sizes = b.roots[:n-1], b.sizes[:n-1]
	}
	b.roots, b.sizes = append(b.roots, h), append(b.sizes, size)
}

// root returns the root over the leaves pushed so far.
func (b *rootBuilder) root() merkle.Digest {
	if len(b.roots) == 0 {
		return samplesTree.Empty()
	}
	h := b.roots[len(b.roots)-1]
	for i := len(b.roots) - 2; i >= 0; i-- {
		h = samplesTree.Node(b.roots[i], h)
	}
	return h
}

// levelUp writes into dst (len (len(src)+1)/2, not overlapping src) the next
// level of the tree above src: dst[j] = node(src[2j], src[2j+1]), and the
// last node of an odd level promoted unchanged. Promoting the odd node this
// way yields exactly the RFC 6962 shape that spec/merkle defines.
func levelUp(dst, src []merkle.Digest) []merkle.Digest {
	parallel(len(src)/2, 1024, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			dst[j] = samplesTree.Node(src[2*j], src[2*j+1])
		}
	})
	if len(src)%2 == 1 {
		dst[len(dst)-1] = src[len(src)-1]
	}
	return dst
}

// ProveSample returns the inclusion proof of sample i in Commit(ds). It
// hashes the whole dataset; to prove many samples build a SampleTree once.
func ProveSample(ds *Dataset, i int) (merkle.Proof, error) {
	if i < 0 || i >= ds.Len() {
		return merkle.Proof{}, fmt.Errorf("%w: sample %d of %d", ErrBadArgument, i, ds.Len())
	}
	return NewSampleTree(ds).Prove(i)
}

// VerifySample checks that sample i of the dataset committed to by c has
// the given features and label, using only c and the proof. Errors wrap
// ErrBadSample, and also merkle.ErrBadProof when the proof fails.
func VerifySample(c Commitment, i int, features []uint8, label uint8, p merkle.Proof) error {
	switch {
	case i < 0 || i >= c.Count || c.Count > MaxSamples:
		return fmt.Errorf("%w: index %d of %d", ErrBadSample, i, c.Count)
	case len(features) != c.Features:
		return fmt.Errorf("%w: sample %d has %d features, want %d", ErrBadSample, i, len(features), c.Features)
	case int(label) >= c.Classes:
		return fmt.Errorf("%w: sample %d has label %d, want < %d", ErrBadSample, i, label, c.Classes)
	case p.Index != uint64(i) || p.Count != uint64(c.Count):
		return fmt.Errorf("%w: proof is for leaf %d of %d, want %d of %d", ErrBadSample, p.Index, p.Count, i, c.Count)
	}
	leaf := samplesTree.Leaf(SampleLeaf(i, features, label))
	if err := samplesTree.Verify(c.Root, leaf, p); err != nil {
		return fmt.Errorf("%w: sample %d: %w", ErrBadSample, i, err)
	}
	return nil
}
