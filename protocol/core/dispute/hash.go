package dispute

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/ref"
)

// OpTensorTag domain-separates the hash of a tensor that is not part of
// the state (the batch and every intermediate).
const OpTensorTag = "beluga/op-tensor/v1"

// HashTensor returns the commitment to the value t of the graph tensor
// described by info, after checking t's shape and value range:
//
//   - a state tensor (before or after the step) hashes to its leaf in the
//     state tree, exactly as SPEC.md §11.2 and commit.Hasher compute it:
//     leaf("beluga/tensors/v1", le16(len name) || name || dtype || rank ||
//     le32 dims || le64(byte length) || chunk root of the canonical
//     bytes), with the state name (no "next." prefix). So the per-tensor
//     hashes of a claim rebuild the state root, and with it the state
//     digest. The element type is StateDType(info): int32 (0x01, le32
//     bytes) when info's bounds fit int32, as every MLP state tensor's do,
//     and int64 (0x02, le64 bytes) otherwise, as a GPT's second moments.
//   - any other tensor hashes to SHA-256(OpTensorTag || 0x00 ||
//     le16(len name) || name || rank || le32 dims || le64(count) || le64
//     values…).
func HashTensor(info ref.TensorInfo, t ref.Tensor) (merkle.Digest, error) {
	if err := info.Check(t); err != nil {
		return merkle.Digest{}, err
	}
	if info.Kind == ref.StateIn || info.Kind == ref.StateOut {
		return stateLeaf(info.StateName, StateDType(info), info.Shape, t.Data), nil
	}
	h := sha256.New()
	buf := make([]byte, 0, 8<<10)
	buf = append(buf, OpTensorTag...)
	buf = append(buf, 0)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(info.Name)))
	buf = append(buf, info.Name...)
	buf = append(buf, byte(len(info.Shape)))
	for _, d := range info.Shape {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(d))
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(t.Data)))
	for _, v := range t.Data {
		if len(buf)+8 > cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
	}
	h.Write(buf)
	var d merkle.Digest
	h.Sum(d[:0])
	return d, nil
}

// StateDType is the element type of a state tensor's canonical bytes:
// int32 when every value info allows fits int32, int64 otherwise.
func StateDType(info ref.TensorInfo) spec.DType {
	if info.Min >= math.MinInt32 && info.Max <= math.MaxInt32 {
		return spec.DTypeInt32
	}
	return spec.DTypeInt64
}

// stateLeaf is the state-tree leaf hash of a tensor of element type dtype
// whose values are in that type's range.
func stateLeaf(name string, dtype spec.DType, shape []int, data []int64) merkle.Digest {
	size := dtype.Size()
	perChunk := commit.ChunkBytes / size
	var chunks []merkle.Digest
	buf := make([]byte, 0, commit.ChunkBytes)
	for lo := 0; lo < len(data); lo += perChunk {
		buf = buf[:0]
		for _, v := range data[lo:min(lo+perChunk, len(data))] {
			if size == 8 {
				buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
			} else {
				buf = binary.LittleEndian.AppendUint32(buf, uint32(int32(v)))
			}
		}
		chunks = append(chunks, commit.ChunkTree.Leaf(buf))
	}
	root := commit.ChunkTree.Root(chunks)
	return commit.TensorTree.Leaf(commit.TensorLeaf(name, dtype, shape, int64(size)*int64(len(data)), root))
}

// Claim is a party's commitment to its computation of one step: the hash
// (HashTensor) of every tensor of the step's operator graph, in the order
// of Graph.Tensors.
type Claim struct {
	Hashes []merkle.Digest
}

// ClaimOf returns the claim of an MLP step's trace.
func ClaimOf(tr *ref.OpTrace) (Claim, error) {
	return claimOf(tr.Graph.Tensors, tr.Value)
}

// claimOf hashes the values of a step's tensors described by infos.
func claimOf(infos []ref.TensorInfo, values []ref.Tensor) (Claim, error) {
	if len(values) != len(infos) {
		return Claim{}, fmt.Errorf("dispute: a trace of %d tensors, the step has %d", len(values), len(infos))
	}
	c := Claim{Hashes: make([]merkle.Digest, len(infos))}
	for i, info := range infos {
		d, err := HashTensor(info, values[i])
		if err != nil {
			return Claim{}, err
		}
		c.Hashes[i] = d
	}
	return c, nil
}

// stateDigests returns the digests that a claim's state tensors rebuild:
// before the step (after t steps) and after it (t+1 steps). The claim must
// have one hash per tensor of l.
func stateDigests(l *layout, job spec.JobID, t int64, c Claim) (before, after merkle.Digest) {
	leaves := func(idx []int) []merkle.Digest {
		out := make([]merkle.Digest, len(idx))
		for k, i := range idx {
			out[k] = c.Hashes[i]
		}
		return out
	}
	before = commit.Digest(job, t, commit.TensorTree.Root(leaves(l.stateIn)))
	after = commit.Digest(job, t+1, commit.TensorTree.Root(leaves(l.stateOut)))
	return before, after
}

// tensorBytes is what hashing t costs, for the referee's accounting.
func tensorBytes(info ref.TensorInfo) int64 {
	if info.Kind == ref.StateIn || info.Kind == ref.StateOut {
		return int64(StateDType(info).Size()) * int64(info.Len())
	}
	return 8 * int64(info.Len())
}

func checkClaimLen(l *layout, c Claim) error {
	if len(c.Hashes) != len(l.tensors) {
		return fmt.Errorf("claim has %d hashes, the step has %d tensors", len(c.Hashes), len(l.tensors))
	}
	return nil
}
