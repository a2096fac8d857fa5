// Package merkle builds domain-separated binary Merkle trees over SHA-256.
//
// Every tree carries a tag naming what its leaves are ("beluga/chunks/v1",
// "beluga/samples/v1", ...). With T = len(tag) as one byte followed by tag:
//
//	leaf(d)     = SHA-256(0x00 || T || d)
//	node(l, r)  = SHA-256(0x01 || T || l || r)
//	empty tree  = SHA-256(0x02 || T)
//
// The shape is RFC 6962's: a tree over n > 1 leaves splits them at k, the
// largest power of two below n, and hashes node(root(leaves[:k]), root(leaves[k:])).
// That shape is fixed by n alone, so a root and a leaf count name one tree.
//
// # Soundness
//
// The 0x00/0x01/0x02 prefixes keep a leaf from being read as a node (second
// preimages across levels); the tag keeps a proof for one kind of tree from
// verifying against another kind's root.
package merkle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// Digest is a SHA-256 output.
type Digest [sha256.Size]byte

// MaxTagLen bounds tags so that the length fits in one byte.
const MaxTagLen = 255

// Prefix bytes that separate leaves, inner nodes and the empty tree.
const (
	leafPrefix  = 0x00
	nodePrefix  = 0x01
	emptyPrefix = 0x02
)

// Tree hashes leaves and nodes under one tag.
type Tree struct {
	tag []byte // len(tag) byte, then the tag
}

// New returns the hasher for trees tagged tag. It panics if tag is longer
// than MaxTagLen: tags are compile-time constants of the protocol.
func New(tag string) Tree {
	if len(tag) > MaxTagLen {
		panic("merkle: tag too long")
	}
	return Tree{tag: append([]byte{byte(len(tag))}, tag...)}
}

// Leaf returns leaf(d).
func (t Tree) Leaf(d []byte) Digest {
	h := sha256.New()
	h.Write([]byte{leafPrefix})
	h.Write(t.tag)
	h.Write(d)
	var out Digest
	h.Sum(out[:0])
	return out
}

// Node returns node(l, r).
func (t Tree) Node(l, r Digest) Digest {
	var buf [1 + 256 + 2*sha256.Size]byte
	n := copy(buf[1:], t.tag) + 1
	buf[0] = nodePrefix
	n += copy(buf[n:], l[:])
	n += copy(buf[n:], r[:])
	return sha256.Sum256(buf[:n])
}

// Empty returns the root of the tree with no leaves.
func (t Tree) Empty() Digest {
	return sha256.Sum256(append([]byte{emptyPrefix}, t.tag...))
}

// Root returns the root over leaf hashes already computed with Leaf.
func (t Tree) Root(leaves []Digest) Digest {
	switch len(leaves) {
	case 0:
		return t.Empty()
	case 1:
		return leaves[0]
	}
	k := split(len(leaves))
	return t.Node(t.Root(leaves[:k]), t.Root(leaves[k:]))
}

// split returns the largest power of two strictly below n (n ≥ 2).
func split(n int) int {
	return 1 << (bits.Len(uint(n-1)) - 1)
}

// Proof is an inclusion proof: the sibling hashes from the leaf up to the root.
type Proof struct {
	Index    uint64
	Count    uint64
	Siblings []Digest
}

// MaxDepth bounds proofs: no tree has more than 2^MaxDepth leaves.
const MaxDepth = 48

// Errors returned by Verify.
var (
	ErrBadProof = errors.New("merkle: invalid inclusion proof")
)

// Prove returns the inclusion proof for leaves[i].
func (t Tree) Prove(leaves []Digest, i int) (Proof, error) {
	if i < 0 || i >= len(leaves) {
		return Proof{}, fmt.Errorf("merkle: leaf %d out of range [0,%d)", i, len(leaves))
	}
	p := Proof{Index: uint64(i), Count: uint64(len(leaves))}
	var walk func(ls []Digest, i int)
	walk = func(ls []Digest, i int) {
		if len(ls) == 1 {
			return
		}
		k := split(len(ls))
		if i < k {
			walk(ls[:k], i)
			p.Siblings = append(p.Siblings, t.Root(ls[k:]))
		} else {
			walk(ls[k:], i-k)
			p.Siblings = append(p.Siblings, t.Root(ls[:k]))
		}
	}
	walk(leaves, i)
	return p, nil
}

// Verify checks that leaf is at p.Index of a tree of p.Count leaves with the
// given root. It needs nothing but the root.
func (t Tree) Verify(root, leaf Digest, p Proof) error {
	if p.Count == 0 || p.Index >= p.Count || p.Count > 1<<MaxDepth || len(p.Siblings) > MaxDepth {
		return fmt.Errorf("%w: index %d of %d with %d siblings", ErrBadProof, p.Index, p.Count, len(p.Siblings))
	}
	got, used, err := t.climb(leaf, p.Index, p.Count, p.Siblings)
	if err != nil {
		return err
	}
	if used != len(p.Siblings) || got != root {
		return ErrBadProof
	}
	return nil
}

// climb recomputes the root of a tree of n leaves from leaf at index i,
// consuming siblings deepest-first; it returns how many it used.
func (t Tree) climb(leaf Digest, i, n uint64, sib []Digest) (Digest, int, error) {
	if n == 1 {
		return leaf, 0, nil
	}
	k := uint64(split(int(n)))
	var sub Digest
	var used int
	var err error
	if i < k {
		sub, used, err = t.climb(leaf, i, k, sib)
	} else {
		sub, used, err = t.climb(leaf, i-k, n-k, sib)
	}
	if err != nil {
		return Digest{}, 0, err
	}
	if used >= len(sib) {
		return Digest{}, 0, fmt.Errorf("%w: too few siblings", ErrBadProof)
	}
	if i < k {
		return t.Node(sub, sib[used]), used + 1, nil
	}
	return t.Node(sib[used], sub), used + 1, nil
}
