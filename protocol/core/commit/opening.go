package commit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// ErrBadOpening: an opening that does not verify or does not decode.
var ErrBadOpening = errors.New("commit: invalid opening")

// Opening proves that Chunk is chunk ChunkIndex of tensor TensorIndex of
// the state whose digest a solver committed: chunk → chunk root (inside the
// tensor's leaf) → state root → digest. A verifier needs only the digest.
type Opening struct {
	Job         spec.JobID
	Step        int64
	StateRoot   merkle.Digest
	TensorLeaf  []byte       // the tensor's leaf data (SPEC.md §11.2)
	TensorProof merkle.Proof // the leaf in the state tree
	ChunkProof  merkle.Proof // the chunk in the tensor's chunk tree
	Chunk       []byte
}

// Open returns the opening of chunk c of tensor ti of st (for job).
func (h *Hasher) Open(job spec.JobID, st *spec.State, ti, c int) (*Opening, error) {
	if ti < 0 || ti >= len(st.Tensors) {
		return nil, fmt.Errorf("commit: tensor %d of %d", ti, len(st.Tensors))
	}
	const perChunk = ChunkBytes / 4
	t := st.Tensors[ti]
	chunks := (len(t.Data) + perChunk - 1) / perChunk
	if c < 0 || c >= chunks {
		return nil, fmt.Errorf("commit: chunk %d of %d in tensor %s", c, chunks, t.Name)
	}
	chunkLeaves := make([]merkle.Digest, chunks)
	var buf []byte
	var chunk []byte
	for i := range chunks {
		buf = TensorBytes(buf[:0], t.Data[i*perChunk:min((i+1)*perChunk, len(t.Data))])
		chunkLeaves[i] = ChunkTree.Leaf(buf)
		if i == c {
			chunk = bytes.Clone(buf)
		}
	}
	chunkProof, err := ChunkTree.Prove(chunkLeaves, c)
	if err != nil {
		return nil, err
	}
	tensorLeaves := make([]merkle.Digest, len(st.Tensors))
	var leafData []byte
	for i, u := range st.Tensors {
		var root merkle.Digest
		if i == ti {
			root = ChunkTree.Root(chunkLeaves)
		} else {
			root = h.chunkRoot(u.Data)
		}
		d := TensorLeaf(u.Name, u.DType, u.Shape, u.ByteLen(), root)
		if i == ti {
			leafData = d
		}
		tensorLeaves[i] = TensorTree.Leaf(d)
	}
	tensorProof, err := TensorTree.Prove(tensorLeaves, ti)
	if err != nil {
		return nil, err
	}
	return &Opening{Job: job, Step: st.Step, StateRoot: TensorTree.Root(tensorLeaves), TensorLeaf: leafData,
		TensorProof: tensorProof, ChunkProof: chunkProof, Chunk: chunk}, nil
}

// chunkRoot is the chunk-tree root of one tensor's data.
func (h *Hasher) chunkRoot(data []int32) merkle.Digest {
	const perChunk = ChunkBytes / 4
	var leaves []merkle.Digest
	var buf []byte
	for off := 0; off < len(data); off += perChunk {
		buf = TensorBytes(buf[:0], data[off:min(off+perChunk, len(data))])
		leaves = append(leaves, ChunkTree.Leaf(buf))
	}
	return ChunkTree.Root(leaves)
}

// Verify checks o against the state digest a solver committed.
func (o *Opening) Verify(digest merkle.Digest) error {
	if Digest(o.Job, o.Step, o.StateRoot) != digest {
		return fmt.Errorf("%w: state root and step do not give the committed digest", ErrBadOpening)
	}
	if len(o.Chunk) == 0 || len(o.Chunk) > ChunkBytes || len(o.TensorLeaf) < sha256Size {
		return fmt.Errorf("%w: chunk of %d bytes, tensor leaf of %d", ErrBadOpening, len(o.Chunk), len(o.TensorLeaf))
	}
	if err := TensorTree.Verify(o.StateRoot, TensorTree.Leaf(o.TensorLeaf), o.TensorProof); err != nil {
		return fmt.Errorf("%w: tensor: %v", ErrBadOpening, err)
	}
	leaf, err := ParseTensorLeaf(o.TensorLeaf)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadOpening, err)
	}
	if err := ChunkTree.Verify(leaf.ChunkRoot, ChunkTree.Leaf(o.Chunk), o.ChunkProof); err != nil {
		return fmt.Errorf("%w: chunk: %v", ErrBadOpening, err)
	}
	// The chunk is the one its place in the tensor's bytes needs, so its
	// bytes split into whole elements of the leaf's type.
	chunks := (leaf.Bytes + ChunkBytes - 1) / ChunkBytes
	if o.ChunkProof.Count != uint64(chunks) ||
		int64(len(o.Chunk)) != min(ChunkBytes, leaf.Bytes-int64(o.ChunkProof.Index)*ChunkBytes) {
		return fmt.Errorf("%w: chunk %d of %d bytes does not fit a tensor of %d bytes", ErrBadOpening, o.ChunkProof.Index, len(o.Chunk), leaf.Bytes)
	}
	return nil
}

// LeafInfo is a tensor's leaf data in the state tree, decoded.
type LeafInfo struct {
	Name      string
	DType     spec.DType // DTypeInt32 or DTypeInt64
	Shape     []int
	Bytes     int64 // canonical byte length: element count × DType.Size()
	ChunkRoot merkle.Digest
}

// ParseTensorLeaf decodes leaf data as TensorLeaf writes it, refusing an
// unknown element type, a byte length other than the shape's element count
// times the element size, and anything after the chunk root.
func ParseTensorLeaf(b []byte) (LeafInfo, error) {
	bad := func(format string, a ...any) (LeafInfo, error) {
		return LeafInfo{}, fmt.Errorf("tensor leaf: "+format, a...)
	}
	if len(b) < 2 {
		return bad("%d bytes", len(b))
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n+2 {
		return bad("truncated in the name")
	}
	var l LeafInfo
	l.Name = string(b[2 : 2+n])
	l.DType = spec.DType(b[2+n])
	rank := int(b[3+n])
	rest := b[4+n:]
	if d, ok := l.DType.Known(); !ok || d != l.DType {
		return bad("element type %d of %q is not int32 (1) or int64 (2)", b[2+n], l.Name)
	}
	if len(rest) != 4*rank+8+sha256Size {
		return bad("%d bytes after the rank %d of %q", len(rest), rank, l.Name)
	}
	l.Shape = make([]int, rank)
	for i := range l.Shape {
		l.Shape[i] = int(binary.LittleEndian.Uint32(rest[4*i:]))
	}
	rest = rest[4*rank:]
	size := int64(l.DType.Size())
	elems, err := spec.Elems(l.Shape, math.MaxInt64/size)
	if err != nil {
		return bad("%q: %v", l.Name, err)
	}
	if nb := binary.LittleEndian.Uint64(rest); nb != uint64(elems*size) {
		return bad("%q (%s %v) has %d bytes, want %d", l.Name, l.DType, l.Shape, nb, elems*size)
	}
	l.Bytes = elems * size
	l.ChunkRoot = merkle.Digest(rest[8:])
	return l, nil
}

const sha256Size = len(merkle.Digest{})

// Limits on a decoded opening.
const (
	maxLeafBytes    = 2 + 65535 + 2 + 4*255 + 8 + sha256Size
	maxOpeningBytes = 64 + maxLeafBytes + 2*(16+1+merkle.MaxDepth*sha256Size) + 4 + ChunkBytes + 64
)

// MarshalBinary encodes o: "BLGOPEN1", job, le64 step, state root,
// le32 len + tensor leaf, two proofs (le64 index, le64 count, byte n, n
// siblings), le32 len + chunk.
func (o *Opening) MarshalBinary() ([]byte, error) {
	b := append([]byte("BLGOPEN1"), o.Job[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(o.Step))
	b = append(b, o.StateRoot[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(o.TensorLeaf)))
	b = append(b, o.TensorLeaf...)
	for _, p := range []merkle.Proof{o.TensorProof, o.ChunkProof} {
		if len(p.Siblings) > merkle.MaxDepth {
			return nil, fmt.Errorf("%w: proof too deep", ErrBadOpening)
		}
		b = binary.LittleEndian.AppendUint64(b, p.Index)
		b = binary.LittleEndian.AppendUint64(b, p.Count)
		b = append(b, byte(len(p.Siblings)))
		for _, s := range p.Siblings {
			b = append(b, s[:]...)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(o.Chunk)))
	return append(b, o.Chunk...), nil
}

// UnmarshalOpening decodes an opening, bounding every length before use.
func UnmarshalOpening(data []byte) (*Opening, error) {
	if len(data) > maxOpeningBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadOpening, len(data))
	}
	r := data
	take := func(n int) ([]byte, bool) {
		if n < 0 || n > len(r) {
			return nil, false
		}
		out := r[:n]
		r = r[n:]
		return out, true
	}
	bad := fmt.Errorf("%w: malformed encoding", ErrBadOpening)
	magic, ok := take(8)
	if !ok || string(magic) != "BLGOPEN1" {
		return nil, bad
	}
	o := &Opening{}
	f, ok := take(32 + 8 + 32 + 4)
	if !ok {
		return nil, bad
	}
	copy(o.Job[:], f)
	o.Step = int64(binary.LittleEndian.Uint64(f[32:]))
	copy(o.StateRoot[:], f[40:])
	n := int(binary.LittleEndian.Uint32(f[72:]))
	if n > maxLeafBytes {
		return nil, bad
	}
	if o.TensorLeaf, ok = take(n); !ok {
		return nil, bad
	}
	o.TensorLeaf = bytes.Clone(o.TensorLeaf)
	for _, p := range []*merkle.Proof{&o.TensorProof, &o.ChunkProof} {
		h, ok := take(17)
		if !ok || int(h[16]) > merkle.MaxDepth {
			return nil, bad
		}
		p.Index, p.Count = binary.LittleEndian.Uint64(h), binary.LittleEndian.Uint64(h[8:])
		sib, ok := take(int(h[16]) * sha256Size)
		if !ok {
			return nil, bad
		}
		for i := range int(h[16]) {
			p.Siblings = append(p.Siblings, merkle.Digest(sib[i*sha256Size:]))
		}
	}
	l, ok := take(4)
	if !ok {
		return nil, bad
	}
	cn := int(binary.LittleEndian.Uint32(l))
	if cn > ChunkBytes {
		return nil, bad
	}
	if o.Chunk, ok = take(cn); !ok || len(r) != 0 {
		return nil, bad
	}
	o.Chunk = bytes.Clone(o.Chunk)
	return o, nil
}
