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

// leafHashes returns the leaf hash of every sample, hashing on all cores.
func leafHashes(ds *Dataset) []merkle.Digest {
	leaves := make([]merkle.Digest, ds.Len())
	parallel(len(leaves), 256, func(lo, hi int) {
		buf := make([]byte, 0, 5+ds.features)
		for i := lo; i < hi; i++ {
			x, y := ds.Sample(i)
			buf = appendLeaf(buf[:0], i, x, y)
			leaves[i] = samplesTree.Leaf(buf)
		}
	})
	return leaves
}

// Commit returns the commitment to ds: the root of the "beluga/samples/v1"
// tree whose leaf i is SampleLeaf(i, features, label) of sample i (an empty
// dataset has the tree's empty root). It equals merkle.New(SamplesTag).Root
// over the leaf hashes, but hashes leaves and inner nodes on all cores.
func Commit(ds *Dataset) Commitment {
	cur := leafHashes(ds)
	root := samplesTree.Empty()
	if len(cur) > 0 {
		// Ping-pong between the leaves and one scratch level: each level
		// is read from one buffer and written to the other.
		spare := make([]merkle.Digest, (len(cur)+1)/2)
		for len(cur) > 1 {
			next := levelUp(spare[:(len(cur)+1)/2], cur)
			spare, cur = cur, next
		}
		root = cur[0]
	}
	return Commitment{Root: root, Count: ds.Len(), Features: ds.features, Classes: ds.classes}
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

// SampleTree is the samples tree of one dataset with every level kept, so
// that each proof costs O(log n) instead of rehashing the dataset.
type SampleTree struct {
	c Commitment
	// levels[0] are the leaf hashes; levels[k+1] = levelUp(levels[k]).
	levels [][]merkle.Digest
}

// NewSampleTree hashes ds (leaves on all cores) and keeps every level.
func NewSampleTree(ds *Dataset) *SampleTree {
	cur := leafHashes(ds)
	levels := [][]merkle.Digest{cur}
	for len(cur) > 1 {
		cur = levelUp(make([]merkle.Digest, (len(cur)+1)/2), cur)
		levels = append(levels, cur)
	}
	root := samplesTree.Empty()
	if len(cur) == 1 {
		root = cur[0]
	}
	return &SampleTree{
		c:      Commitment{Root: root, Count: ds.Len(), Features: ds.features, Classes: ds.classes},
		levels: levels,
	}
}

// Commitment returns the commitment, equal to Commit of the dataset.
func (t *SampleTree) Commitment() Commitment { return t.c }

// Prove returns the inclusion proof of sample i, identical to what
// merkle.Tree.Prove gives over the leaf hashes.
func (t *SampleTree) Prove(i int) (merkle.Proof, error) {
	if i < 0 || i >= t.c.Count {
		return merkle.Proof{}, fmt.Errorf("%w: sample %d of %d", ErrBadArgument, i, t.c.Count)
	}
	p := merkle.Proof{Index: uint64(i), Count: uint64(t.c.Count)}
	for _, level := range t.levels[:len(t.levels)-1] {
		if sib := i ^ 1; sib < len(level) {
			p.Siblings = append(p.Siblings, level[sib])
		}
		i >>= 1
	}
	return p, nil
}
