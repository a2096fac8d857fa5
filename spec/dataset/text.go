package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/prng"
)

// The text dataset: a byte string that a byte-level language model reads
// in windows (SPEC.md, "Text data").
const (
	// TextTag is the Merkle tree tag of text commitments.
	TextTag = "beluga/text/v1"
	// TextChunkBytes is the size of a text chunk, the leaf unit of the
	// commitment: chunk i is bytes [i·4096, min((i+1)·4096, n)).
	TextChunkBytes = 4096
	// MaxTextBytes bounds a corpus (256 MiB): its chunk indices fit le32
	// with room to spare, and it matches spec.MaxDatasetBytes.
	MaxTextBytes = 1 << 28
	// TextWindowPurpose is the spec/prng purpose of training windows.
	TextWindowPurpose = "batch.window"
)

// ErrBadWindow: a text window or its proof does not match a commitment.
var ErrBadWindow = errors.New("dataset: text window does not match commitment")

var textTree = merkle.New(TextTag)

// Text is a byte corpus and its commitment. It is immutable: NewText copies
// the bytes, and nothing hands out the copy.
type Text struct {
	b      []byte
	leaves []merkle.Digest // leaf hash of each chunk, 32 bytes per 4 KiB
	root   merkle.Digest
}

// NewText copies b and commits to it (hashing its chunks on all cores).
// It refuses an empty corpus and one over MaxTextBytes; errors wrap
// ErrBadArgument.
func NewText(b []byte) (*Text, error) {
	if err := checkTextSize(len(b)); err != nil {
		return nil, err
	}
	t := &Text{b: bytes.Clone(b)}
	t.leaves = make([]merkle.Digest, TextChunks(len(b)))
	parallel(len(t.leaves), 16, func(lo, hi int) {
		buf := make([]byte, 0, 4+TextChunkBytes)
		for i := lo; i < hi; i++ {
			t.leaves[i] = textTree.Leaf(appendTextLeaf(buf[:0], i, t.chunk(i)))
		}
	})
	t.root = textTree.Root(t.leaves)
	return t, nil
}

// checkTextSize refuses a corpus of n bytes unless 1 ≤ n ≤ MaxTextBytes.
func checkTextSize(n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: the text corpus is empty; it needs at least one byte", ErrBadArgument)
	case n > MaxTextBytes:
		return fmt.Errorf("%w: the text corpus is %d bytes, more than the limit of %d (256 MiB)", ErrBadArgument, n, MaxTextBytes)
	}
	return nil
}

// TextChunks returns the number of chunks, ⌈n / TextChunkBytes⌉, of a
// corpus of n ≥ 0 bytes: the leaf count of its tree.
func TextChunks(n int) int { return (n + TextChunkBytes - 1) / TextChunkBytes }

// TextLeaf returns the leaf data of chunk i: le32(i) || chunk. The index
// binds the chunk to its position, as in SampleLeaf.
func TextLeaf(i int, chunk []byte) []byte {
	return appendTextLeaf(make([]byte, 0, 4+len(chunk)), i, chunk)
}

func appendTextLeaf(buf []byte, i int, chunk []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(i))
	return append(buf, chunk...)
}

// chunk returns chunk i of the corpus (aliasing it).
func (t *Text) chunk(i int) []byte {
	return t.b[i*TextChunkBytes : min((i+1)*TextChunkBytes, len(t.b))]
}

// Len returns the corpus size n in bytes.
func (t *Text) Len() int { return len(t.b) }

// Root returns the commitment: the root of the "beluga/text/v1" tree whose
// leaf i is TextLeaf(i, chunk i). The dataset is named by (Root, Len).
func (t *Text) Root() [32]byte { return t.root }

// Bytes returns a copy of bytes [start, start+n) of the corpus. Errors
// wrap ErrBadArgument.
func (t *Text) Bytes(start, n int) ([]byte, error) {
	if err := checkRange(start, n, len(t.b)); err != nil {
		return nil, err
	}
	return bytes.Clone(t.b[start : start+n]), nil
}

// checkRange checks that [start, start+n) is a non-empty range inside a
// corpus of size bytes, without overflow.
func checkRange(start, n, size int) error {
	if start < 0 || n < 1 || start >= size || n > size-start {
		return fmt.Errorf("%w: bytes [%d, %d+%d) are not a non-empty range of the %d-byte corpus", ErrBadArgument, start, start, n, size)
	}
	return nil
}

// TextSplit cuts a corpus of n bytes in two: training bytes [0, Train)
// and validation bytes [Train, Train+Val), the last Val bytes.
type TextSplit struct {
	Train, Val int
}

// NewTextSplit returns the split of a corpus of n bytes whose last
// valBytes bytes are for validation, for windows of context T = context
// bytes of input. It refuses splits that leave no training window
// (n − valBytes < T + 1) or no validation window (valBytes < T + 1).
// Errors wrap ErrBadArgument.
func NewTextSplit(n, valBytes, context int) (TextSplit, error) {
	switch {
	case n < 1 || n > MaxTextBytes:
		return TextSplit{}, fmt.Errorf("%w: corpus of %d bytes, want 1 … %d", ErrBadArgument, n, MaxTextBytes)
	case context < 1 || context >= MaxTextBytes:
		return TextSplit{}, fmt.Errorf("%w: context of %d bytes, want 1 … %d", ErrBadArgument, context, MaxTextBytes-1)
	case valBytes < context+1:
		return TextSplit{}, fmt.Errorf("%w: %d validation bytes hold no window of %d+1 bytes; want at least %d", ErrBadArgument, valBytes, context, context+1)
	case n-valBytes < context+1:
		return TextSplit{}, fmt.Errorf("%w: %d of %d bytes are left for training after %d validation bytes; a window of context %d needs at least %d", ErrBadArgument, max(n-valBytes, 0), n, valBytes, context, context+1)
	}
	return TextSplit{Train: n - valBytes, Val: valBytes}, nil
}

// TrainWindows returns in dst[:0] (grown as needed) the start offsets of
// the batch windows of training step `step`: window b (0 ≤ b < batch)
// starts at
//
//	Below(Derive(seed, "batch.window", step, 0).At(b), nTrain − context)
//
// and is bytes [start, start+context+1), inside the training bytes
// [0, nTrain): inputs are its first context bytes, targets its last.
//
// The arguments are those NewTextSplit accepted; TrainWindows panics if
// step < 0, batch < 0, context < 1 or nTrain < context+1, which would
// otherwise draw windows outside the training bytes.
func TrainWindows(seed uint64, step int64, batch, context, nTrain int, dst []int64) []int64 {
	if step < 0 || batch < 0 || context < 1 || nTrain < 1 || nTrain-context < 1 {
		panic(fmt.Sprintf("dataset: TrainWindows(step %d, batch %d, context %d, nTrain %d): want step ≥ 0, batch ≥ 0, context ≥ 1, nTrain ≥ context+1", step, batch, context, nTrain))
	}
	s := prng.Derive(seed, TextWindowPurpose, uint64(step), 0)
	span := uint64(nTrain - context)
	dst = dst[:0]
	for b := range batch {
		dst = append(dst, int64(prng.Below(s.At(uint64(b)), span)))
	}
	return dst
}

// ValWindows returns the start offsets of the validation windows:
// nTrain + k·context for k = 0 … K−1, K = min(⌊(valBytes−1)/context⌋,
// maxWindows) (none if K ≤ 0). Window k is bytes [start, start+context+1),
// inside the validation bytes [nTrain, nTrain+valBytes). It panics if
// context < 1, nTrain < 0 or valBytes > MaxTextBytes (arguments that
// NewTextSplit refuses).
func ValWindows(nTrain, valBytes, context, maxWindows int) []int64 {
	if context < 1 || nTrain < 0 || valBytes > MaxTextBytes {
		panic(fmt.Sprintf("dataset: ValWindows(nTrain %d, valBytes %d, context %d): want nTrain ≥ 0, valBytes ≤ %d, context ≥ 1", nTrain, valBytes, context, MaxTextBytes))
	}
	k := 0
	if valBytes >= 1 {
		k = min((valBytes-1)/context, maxWindows)
	}
	if k <= 0 {
		return nil
	}
	out := make([]int64, k)
	for i := range out {
		out[i] = int64(nTrain) + int64(i)*int64(context)
	}
	return out
}

// TextWindowProof proves a window of a text against its commitment: the
// whole chunks that cover the window, first to last, and each chunk's
// inclusion proof in the text tree (Proofs[k].Index is the chunk's index).
type TextWindowProof struct {
	Chunks [][]byte
	Proofs []merkle.Proof
}

// WindowProof returns the proof of bytes [start, start+length) of the
// corpus: chunks ⌊start/4096⌋ … ⌊(start+length−1)/4096⌋. Errors wrap
// ErrBadArgument.
func (t *Text) WindowProof(start, length int) (TextWindowProof, error) {
	if err := checkRange(start, length, len(t.b)); err != nil {
		return TextWindowProof{}, err
	}
	first, last := start/TextChunkBytes, (start+length-1)/TextChunkBytes
	p := TextWindowProof{
		Chunks: make([][]byte, 0, last-first+1),
		Proofs: make([]merkle.Proof, 0, last-first+1),
	}
	for i := first; i <= last; i++ {
		mp, err := textTree.Prove(t.leaves, i)
		if err != nil {
			return TextWindowProof{}, err
		}
		p.Chunks = append(p.Chunks, bytes.Clone(t.chunk(i)))
		p.Proofs = append(p.Proofs, mp)
	}
	return p, nil
}

// VerifyWindow checks that data is bytes [start, start+len(data)) of the
// n-byte text committed to by root, using only root, n and the proof. The
// window must be non-empty and inside [0, n). Errors wrap ErrBadWindow,
// and also merkle.ErrBadProof when an inclusion proof fails.
func VerifyWindow(root [32]byte, n int, start int, data []byte, proof TextWindowProof) error {
	length := len(data)
	if n < 1 || n > MaxTextBytes {
		return fmt.Errorf("%w: corpus of %d bytes, want 1 … %d", ErrBadWindow, n, MaxTextBytes)
	}
	if start < 0 || length < 1 || start >= n || length > n-start {
		return fmt.Errorf("%w: bytes [%d, %d+%d) are not a non-empty range of the %d-byte corpus", ErrBadWindow, start, start, length, n)
	}
	first, last := start/TextChunkBytes, (start+length-1)/TextChunkBytes
	want := last - first + 1
	if len(proof.Chunks) != want || len(proof.Proofs) != want {
		return fmt.Errorf("%w: proof has %d chunks and %d inclusion proofs, want %d of each (chunks %d … %d)",
			ErrBadWindow, len(proof.Chunks), len(proof.Proofs), want, first, last)
	}
	count := TextChunks(n)
	for k, chunk := range proof.Chunks {
		i := first + k
		size := min(TextChunkBytes, n-i*TextChunkBytes)
		p := proof.Proofs[k]
		switch {
		case len(chunk) != size:
			return fmt.Errorf("%w: chunk %d is %d bytes, want %d", ErrBadWindow, i, len(chunk), size)
		case p.Index != uint64(i) || p.Count != uint64(count):
			return fmt.Errorf("%w: inclusion proof is for chunk %d of %d, want %d of %d", ErrBadWindow, p.Index, p.Count, i, count)
		}
		if err := textTree.Verify(root, textTree.Leaf(TextLeaf(i, chunk)), p); err != nil {
			return fmt.Errorf("%w: chunk %d: %w", ErrBadWindow, i, err)
		}
		// The part of the window inside chunk i.
		lo, hi := max(start, i*TextChunkBytes), min(start+length, i*TextChunkBytes+size)
		if !bytes.Equal(data[lo-start:hi-start], chunk[lo-i*TextChunkBytes:hi-i*TextChunkBytes]) {
			return fmt.Errorf("%w: bytes [%d, %d) differ from chunk %d", ErrBadWindow, lo, hi, i)
		}
	}
	return nil
}
