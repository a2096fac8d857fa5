package store

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Limits on what a manifest may describe. They bound decoding (nothing is
// allocated beyond what they and the input length allow) and PutCheckpoint.
const (
	// ManifestVersion is the manifest encoding this package writes and reads.
	ManifestVersion = 1
	// MaxTensors bounds the tensors of one checkpoint.
	MaxTensors = 1 << 12
	// MaxRank bounds the dimensions of one tensor.
	MaxRank = 8
	// MaxNameLen bounds a tensor name in bytes (SPEC.md allows 65,535; the
	// names of version 1 are under 30).
	MaxNameLen = 255
	// MaxChunks bounds the chunks of one checkpoint, all tensors together:
	// 2^22 chunks of 64 KiB are 256 GiB of state and 128 MiB of chunk IDs.
	MaxChunks = 1 << 22
)

const (
	manifestMagic = "BELUGAMF"
	// manifestHeaderLen: magic, version, job, step, state root, digest, tensor count.
	manifestHeaderLen = len(manifestMagic) + 2 + len(spec.JobID{}) + 8 + 2*len(merkle.Digest{}) + 4
	// tensorFixedLen: name length, dtype, rank, byte length, chunk root, chunk count.
	tensorFixedLen = 2 + 1 + 1 + 8 + len(merkle.Digest{}) + 4
	// minTensorLen is the smallest encoded tensor: a one-byte name, rank 0, no chunks.
	minTensorLen = tensorFixedLen + 1
	idLen        = len(ChunkID{})
)

// MaxManifestBytes bounds an encoded manifest; longer input is rejected
// before it is parsed. The largest manifest within the limits is a little
// under 130 MiB.
const MaxManifestBytes = 130 << 20

// The compiler checks that MaxManifestBytes covers every manifest within the
// limits (a negative constant does not convert to uint).
const _ = uint(MaxManifestBytes - (manifestHeaderLen + MaxTensors*(tensorFixedLen+MaxNameLen+4*MaxRank) + MaxChunks*idLen))

// maxTensorElems bounds a tensor's element count so that the byte length
// of an int32 tensor needs at most MaxChunks chunks (an int64 tensor's
// chunks are then bounded by the manifest's MaxChunks in all).
const maxTensorElems = MaxChunks * commit.ChunkBytes / 4

// Manifest describes one stored checkpoint: the state of Job after Step
// steps, as the chunk IDs of each tensor's canonical bytes. Every root in it
// is recomputable from the chunk IDs, and Digest is the state digest of
// SPEC.md §11, so a manifest is checked against a committed digest by
// comparing Digest, and each chunk against its ID.
type Manifest struct {
	Job       spec.JobID
	Step      int64
	Tensors   []TensorManifest
	StateRoot merkle.Digest // root of the "beluga/tensors/v1" tree
	Digest    merkle.Digest // commit.Digest(Job, Step, StateRoot)
}

// TensorManifest describes one tensor: its name, element type and shape as
// in spec.State, the length of its canonical bytes (little-endian, 4 per
// int32 element, 8 per int64 element), and the IDs of its chunks in order,
// with their "beluga/chunks/v1" root.
type TensorManifest struct {
	Name      string
	DType     spec.DType // spec.DTypeInt32 (zero reads as int32) or spec.DTypeInt64
	Shape     []int
	Bytes     int64
	ChunkRoot merkle.Digest
	Chunks    []ChunkID
}

// ChunkIDs returns the distinct chunk IDs the manifest references, in order
// of first appearance.
func (m *Manifest) ChunkIDs() []ChunkID {
	seen := make(map[ChunkID]struct{})
	var ids []ChunkID
	for _, t := range m.Tensors {
		for _, id := range t.Chunks {
			if _, ok := seen[id]; !ok {
				seen[id] = struct{}{}
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// chunkCount returns how many chunks hold nbytes of canonical bytes.
func chunkCount(nbytes int64) int64 {
	return (nbytes + commit.ChunkBytes - 1) / commit.ChunkBytes
}

// chunkLen returns the length of chunk i of a tensor of nbytes bytes.
func chunkLen(nbytes int64, i int) int {
	return int(min(commit.ChunkBytes, nbytes-int64(i)*commit.ChunkBytes))
}

// shapeElems returns the element count of shape, or an error when a
// dimension is negative or wider than 32 bits (SPEC.md encodes le32 dims) or
// the product exceeds maxTensorElems.
func shapeElems(shape []int) (int64, error) {
	zero := false
	for _, d := range shape {
		if d < 0 || int64(d) > math.MaxUint32 {
			return 0, fmt.Errorf("dimension %d outside [0, 2^32)", d)
		}
		zero = zero || d == 0
	}
	if zero {
		return 0, nil
	}
	n := int64(1)
	for _, d := range shape {
		if n > maxTensorElems/int64(d) {
			return 0, fmt.Errorf("%w: shape %v exceeds %d elements", ErrTooLarge, shape, int64(maxTensorElems))
		}
		n *= int64(d)
	}
	return n, nil
}

// Verify checks that m is within the limits and consistent: each tensor's
// element type is int32 or int64, its byte length is its element count
// times the element size (4 or 8), it lists exactly the chunks that
// length needs, its ChunkRoot is their root, StateRoot is the root of the
// tensors' leaves (SPEC.md §11.2) and Digest binds it to Job and Step.
// Errors wrap ErrCorrupt. It does not look at chunk contents.
func (m *Manifest) Verify() error {
	if m.Step < 0 {
		return fmt.Errorf("%w: manifest step %d is negative", ErrCorrupt, m.Step)
	}
	if len(m.Tensors) > MaxTensors {
		return fmt.Errorf("%w: manifest has %d tensors, the limit is %d", ErrCorrupt, len(m.Tensors), MaxTensors)
	}
	leaves := make([]merkle.Digest, len(m.Tensors))
	total := 0
	for i, t := range m.Tensors {
		if len(t.Name) == 0 || len(t.Name) > MaxNameLen {
			return fmt.Errorf("%w: tensor %d has a name of %d bytes", ErrCorrupt, i, len(t.Name))
		}
		if len(t.Shape) > MaxRank {
			return fmt.Errorf("%w: tensor %q has rank %d, the limit is %d", ErrCorrupt, t.Name, len(t.Shape), MaxRank)
		}
		dtype, ok := t.DType.Known()
		if !ok {
			return fmt.Errorf("%w: tensor %q has element type %d, this store knows int32 (1) and int64 (2)", ErrCorrupt, t.Name, uint8(t.DType))
		}
		elems, err := shapeElems(t.Shape)
		if err != nil {
			return fmt.Errorf("%w: tensor %q: %v", ErrCorrupt, t.Name, err)
		}
		if want := int64(dtype.Size()) * elems; t.Bytes != want {
			return fmt.Errorf("%w: tensor %q (%s, shape %v) has %d bytes, want %d", ErrCorrupt, t.Name, dtype, t.Shape, t.Bytes, want)
		}
		if n := chunkCount(t.Bytes); int64(len(t.Chunks)) != n {
			return fmt.Errorf("%w: tensor %q lists %d chunks, its %d bytes need %d", ErrCorrupt, t.Name, len(t.Chunks), t.Bytes, n)
		}
		if total += len(t.Chunks); total > MaxChunks {
			return fmt.Errorf("%w: manifest has more than %d chunks", ErrCorrupt, MaxChunks)
		}
		if root := commit.ChunkTree.Root(t.Chunks); root != t.ChunkRoot {
			return fmt.Errorf("%w: tensor %q: chunk root %x does not match its chunks (%x)", ErrCorrupt, t.Name, t.ChunkRoot[:8], root[:8])
		}
		leaves[i] = commit.TensorTree.Leaf(commit.TensorLeaf(t.Name, dtype, t.Shape, t.Bytes, t.ChunkRoot))
	}
	if root := commit.TensorTree.Root(leaves); root != m.StateRoot {
		return fmt.Errorf("%w: state root %x does not match the tensors (%x)", ErrCorrupt, m.StateRoot[:8], root[:8])
	}
	if d := commit.Digest(m.Job, m.Step, m.StateRoot); d != m.Digest {
		return fmt.Errorf("%w: digest %x is not that of job, step and state root (%x)", ErrCorrupt, m.Digest[:8], d[:8])
	}
	return nil
}

// MarshalBinary encodes m in the manifest format, version 1 (all integers
// little-endian):
//
//	"BELUGAMF" || le16(1) || job[32] || le64(step) || state_root[32] ||
//	digest[32] || le32(tensor count) || tensor…
//
//	tensor = le16(len name) || name || dtype (0x01 int32, 0x02 int64) || byte(rank) ||
//	         le32(dim)… || le64(byte length) || chunk_root[32] ||
//	         le32(chunk count) || chunk_id[32]…
//
// Nothing follows the last tensor. There is no checksum: every field is
// bound to Digest by the roots, which Verify (and so DecodeManifest)
// recomputes. The encoding is canonical: one manifest has one encoding, and
// DecodeManifest accepts nothing else. It fails (wrapping ErrCorrupt) unless
// m passes Verify.
func (m *Manifest) MarshalBinary() ([]byte, error) {
	if err := m.Verify(); err != nil {
		return nil, err
	}
	size := manifestHeaderLen
	for _, t := range m.Tensors {
		size += tensorFixedLen + len(t.Name) + 4*len(t.Shape) + idLen*len(t.Chunks)
	}
	b := make([]byte, 0, size)
	b = append(b, manifestMagic...)
	b = binary.LittleEndian.AppendUint16(b, ManifestVersion)
	b = append(b, m.Job[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(m.Step))
	b = append(b, m.StateRoot[:]...)
	b = append(b, m.Digest[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Tensors)))
	for _, t := range m.Tensors {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(t.Name)))
		b = append(b, t.Name...)
		dtype, _ := t.DType.Known()
		b = append(b, byte(dtype), byte(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.LittleEndian.AppendUint32(b, uint32(d))
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(t.Bytes))
		b = append(b, t.ChunkRoot[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Chunks)))
		for _, id := range t.Chunks {
			b = append(b, id[:]...)
		}
	}
	return b, nil
}

// DecodeManifest decodes and verifies a manifest (see MarshalBinary for the
// format and Verify for the checks). Every count is checked against the
// limits and against the bytes that remain before anything is allocated for
// it, so the allocation is bounded by a small multiple of len(b). Errors wrap
// ErrCorrupt. The result does not alias b.
func DecodeManifest(b []byte) (Manifest, error) {
	if len(b) > MaxManifestBytes {
		return Manifest{}, fmt.Errorf("%w: manifest of %d bytes exceeds %d", ErrCorrupt, len(b), MaxManifestBytes)
	}
	d := decoder{b: b}
	if string(d.next(len(manifestMagic))) != manifestMagic {
		return Manifest{}, fmt.Errorf("%w: not a manifest (bad magic)", ErrCorrupt)
	}
	if v := d.u16(); d.err == nil && v != ManifestVersion {
		return Manifest{}, fmt.Errorf("%w: manifest version %d, this store reads %d", ErrCorrupt, v, ManifestVersion)
	}
	var m Manifest
	copy(m.Job[:], d.next(len(m.Job)))
	step := d.u64()
	copy(m.StateRoot[:], d.next(idLen))
	copy(m.Digest[:], d.next(idLen))
	n := d.u32()
	if d.err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest header truncated", ErrCorrupt)
	}
	if step > math.MaxInt64 {
		return Manifest{}, fmt.Errorf("%w: manifest step %d out of range", ErrCorrupt, step)
	}
	m.Step = int64(step)
	if n > MaxTensors || uint64(n)*uint64(minTensorLen) > uint64(len(d.b)) {
		return Manifest{}, fmt.Errorf("%w: manifest claims %d tensors in %d bytes", ErrCorrupt, n, len(d.b))
	}
	m.Tensors = make([]TensorManifest, n)
	total := uint64(0)
	for i := range m.Tensors {
		t := &m.Tensors[i]
		nameLen := int(d.u16())
		if nameLen == 0 || nameLen > MaxNameLen {
			return Manifest{}, fmt.Errorf("%w: tensor %d has a name of %d bytes", ErrCorrupt, i, nameLen)
		}
		t.Name = string(d.next(nameLen))
		dtype := spec.DType(d.u8())
		if d.err == nil && dtype != commit.DTypeInt32 && dtype != commit.DTypeInt64 {
			return Manifest{}, fmt.Errorf("%w: tensor %d (%q) has element type %d, this store reads int32 (1) and int64 (2)", ErrCorrupt, i, t.Name, uint8(dtype))
		}
		t.DType = dtype
		rank := int(d.u8())
		if rank > MaxRank {
			return Manifest{}, fmt.Errorf("%w: tensor %d has rank %d", ErrCorrupt, i, rank)
		}
		if d.err == nil && 4*rank > len(d.b) {
			d.err = ErrCorrupt
		}
		if d.err != nil {
			return Manifest{}, fmt.Errorf("%w: manifest truncated in tensor %d", ErrCorrupt, i)
		}
		t.Shape = make([]int, rank)
		for j := range t.Shape {
			t.Shape[j] = int(d.u32())
		}
		nbytes := d.u64()
		copy(t.ChunkRoot[:], d.next(idLen))
		count := uint64(d.u32())
		if d.err != nil {
			return Manifest{}, fmt.Errorf("%w: manifest truncated in tensor %d", ErrCorrupt, i)
		}
		if nbytes > math.MaxInt64 {
			return Manifest{}, fmt.Errorf("%w: tensor %d has %d bytes", ErrCorrupt, i, nbytes)
		}
		t.Bytes = int64(nbytes)
		if total += count; total > MaxChunks || count*uint64(idLen) > uint64(len(d.b)) {
			return Manifest{}, fmt.Errorf("%w: tensor %d claims %d chunks in %d bytes", ErrCorrupt, i, count, len(d.b))
		}
		t.Chunks = make([]ChunkID, count)
		for j := range t.Chunks {
			copy(t.Chunks[j][:], d.next(idLen))
		}
	}
	if d.err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest truncated", ErrCorrupt)
	}
	if len(d.b) != 0 {
		return Manifest{}, fmt.Errorf("%w: %d bytes after the manifest", ErrCorrupt, len(d.b))
	}
	if err := m.Verify(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// decoder consumes little-endian fields; past the end it records an error
// and yields nil (zeros), so callers check err once per record.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) next(n int) []byte {
	if d.err != nil || n > len(d.b) {
		d.err = ErrCorrupt
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u8() uint8 {
	if b := d.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.next(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.next(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}
