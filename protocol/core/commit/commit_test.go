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
	st := &spec.State{Step: 5, Tensors: []spec.Tensor{
		{Name: "a", Shape: []int{2, 3}, Data: []int32{1, -2, 3, -4, 5, -6}},
		{Name: "layers.0.weight", Shape: []int{len(big)}, Data: big},
	}}
	var job spec.JobID
	job[0] = 0xab

	leafOf := func(name string, shape []int, data []int32) merkle.Digest {
		raw := make([]byte, 0, 4*len(data))
		for _, v := range data {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
		}
		var chunks []merkle.Digest
		for off := 0; off < len(raw); off += 65536 {
			chunks = append(chunks, merkle.New("beluga/chunks/v1").Leaf(raw[off:min(off+65536, len(raw))]))
		}
		root := merkle.New("beluga/chunks/v1").Root(chunks)
		b := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
		b = append(b, name...)
		b = append(b, 1, byte(len(shape)))
		for _, d := range shape {
			b = binary.LittleEndian.AppendUint32(b, uint32(d))
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(len(raw)))
		b = append(b, root[:]...)
		return merkle.New("beluga/tensors/v1").Leaf(b)
	}
	stateRoot := merkle.New("beluga/tensors/v1").Root([]merkle.Digest{
		leafOf("a", []int{2, 3}, st.Tensors[0].Data),
		leafOf("layers.0.weight", []int{len(big)}, big),
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
	st.Step++
	if h.StateDigest(job, st) == want {
		t.Fatal("step not bound")
	}
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
