package commit

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// TestDigestByHand recomputes a state digest from SPEC.md §11 without the
// package's helpers (beyond merkle's tree) and compares.
func TestDigestByHand(t *testing.T) {
	t.Parallel()
	big := make([]int32, ChunkBytes/4+3) // two chunks, the second short
	for i := range big {
		big[i] = int32(i*2654435761) ^ -7
	}
	big64 := make([]int64, ChunkBytes/8+2) // an int64 tensor of two chunks
	for i := range big64 {
		big64[i] = int64(i)*-0x9e3779b97f4a7c1 ^ 5
	}
	st := &spec.State{Step: 5, Tensors: []spec.Tensor{
		{Name: "a", Shape: []int{2, 3}, Data: []int32{1, -2, 3, -4, 5, -6}},
		{Name: "layers.0.weight", Shape: []int{len(big)}, Data: big},
		spec.Int64Tensor("p.v", []int{2, len(big64) / 2}, big64),
	}}
	var job spec.JobID
	job[0] = 0xab

	leafOf := func(name string, dtype byte, shape []int, raw []byte) merkle.Digest {
		var chunks []merkle.Digest
		for off := 0; off < len(raw); off += 65536 {
			chunks = append(chunks, merkle.New("beluga/chunks/v1").Leaf(raw[off:min(off+65536, len(raw))]))
		}
		root := merkle.New("beluga/chunks/v1").Root(chunks)
		b := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
		b = append(b, name...)
		b = append(b, dtype, byte(len(shape)))
		for _, d := range shape {
			b = binary.LittleEndian.AppendUint32(b, uint32(d))
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(len(raw)))
		b = append(b, root[:]...)
		return merkle.New("beluga/tensors/v1").Leaf(b)
	}
	le32 := func(data []int32) []byte {
		raw := make([]byte, 0, 4*len(data))
		for _, v := range data {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
		}
		return raw
	}
	le64 := func(data []int64) []byte {
		raw := make([]byte, 0, 8*len(data))
		for _, v := range data {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
		return raw
	}
	stateRoot := merkle.New("beluga/tensors/v1").Root([]merkle.Digest{
		leafOf("a", 1, []int{2, 3}, le32(st.Tensors[0].Data)),
		leafOf("layers.0.weight", 1, []int{len(big)}, le32(big)),
		leafOf("p.v", 2, []int{2, len(big64) / 2}, le64(big64)),
	})
	msg := append([]byte("beluga/state/v1\x00"), job[:]...)
	msg = binary.LittleEndian.AppendUint64(msg, 5)
	msg = append(msg, stateRoot[:]...)
	want := merkle.Digest(sha256.Sum256(msg))

	for _, threads := range []int{0, 1, 2, 7} {
		h := Hasher{Threads: threads}
		if got := h.StateDigest(job, st); got != want {
			t.Fatalf("threads %d: digest %x, by hand %x", threads, got[:8], want[:8])
		}
	}
	// Any change to any element, the step or the job changes the digest.
	h := Hasher{Threads: 2}
	big[len(big)-1]++
	if h.StateDigest(job, st) == want {
		t.Fatal("last element not bound")
	}
	big[len(big)-1]--
	for _, d := range []spec.DType{spec.DTypeInt32, 3} { // the element type is bound
		st.Tensors[2].DType = d
		if h.StateDigest(job, st) == want {
			t.Fatalf("element type %d hashes as int64", d)
		}
	}
	st.Tensors[2].DType = spec.DTypeInt64
	st.Step++
	if h.StateDigest(job, st) == want {
		t.Fatal("step not bound")
	}
}

// TestTensorLeafDTypes: the zero element type writes 0x01, so version 1's
// leaves (spec.Tensor literals without a type) are unchanged; int64 writes
// 0x02; ParseTensorLeaf reads both back and refuses what is inconsistent.
func TestTensorLeafDTypes(t *testing.T) {
	t.Parallel()
	var root merkle.Digest
	root[3] = 9
	zero := TensorLeaf("w", 0, []int{2, 3}, 24, root)
	if one := TensorLeaf("w", DTypeInt32, []int{2, 3}, 24, root); string(zero) != string(one) || zero[3] != 0x01 {
		t.Fatalf("zero type leaf %x, int32 leaf %x", zero, one)
	}
	leaf64 := TensorLeaf("w.v", DTypeInt64, []int{2, 3}, 48, root)
	if leaf64[5] != 0x02 {
		t.Fatalf("int64 leaf has type byte %d", leaf64[5])
	}
	for _, c := range []struct {
		leaf  []byte
		dtype spec.DType
		bytes int64
	}{{zero, DTypeInt32, 24}, {leaf64, DTypeInt64, 48}} {
		l, err := ParseTensorLeaf(c.leaf)
		if err != nil || l.DType != c.dtype || l.Bytes != c.bytes || l.ChunkRoot != root || len(l.Shape) != 2 || l.Shape[0] != 2 || l.Shape[1] != 3 {
			t.Fatalf("ParseTensorLeaf = %+v, %v", l, err)
		}
	}
	for name, bad := range map[string][]byte{
		"int64 with int32 bytes": TensorLeaf("w.v", DTypeInt64, []int{2, 3}, 24, root),
		"int32 with int64 bytes": TensorLeaf("w", DTypeInt32, []int{2, 3}, 48, root),
		"unknown type":           TensorLeaf("w", 3, []int{2, 3}, 24, root),
		"trailing byte":          append(TensorLeaf("w", DTypeInt32, []int{2, 3}, 24, root), 0),
		"cut":                    zero[:len(zero)-1],
		"empty":                  nil,
	} {
		if _, err := ParseTensorLeaf(bad); err == nil {
			t.Fatalf("%s: parsed", name)
		}
	}
}

func FuzzParseTensorLeaf(f *testing.F) {
	f.Add(TensorLeaf("w", DTypeInt32, []int{2, 3}, 24, merkle.Digest{}))
	f.Add(TensorLeaf("blocks.0.attn.qkv.v", DTypeInt64, []int{48, 16}, 8*48*16, merkle.Digest{1}))
	f.Add(TensorLeaf("s", DTypeInt32, nil, 4, merkle.Digest{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseTensorLeaf(b)
		if err != nil {
			return
		}
		if again := TensorLeaf(l.Name, l.DType, l.Shape, l.Bytes, l.ChunkRoot); string(again) != string(b) {
			t.Fatalf("parsed leaf re-encodes to %x, not %x", again, b)
		}
	})
}

func BenchmarkStateDigest(b *testing.B) {
	s := &spec.State{Tensors: []spec.Tensor{{Name: "w", Shape: []int{256, 784}, Data: make([]int32, 256*784)}, {Name: "v", Shape: []int{256, 784}, Data: make([]int32, 256*784)}}}
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			h := Hasher{Threads: threads}
			b.SetBytes(2 * 256 * 784 * 4)
			for b.Loop() {
				h.StateDigest(spec.JobID{}, s)
			}
		})
	}
}
