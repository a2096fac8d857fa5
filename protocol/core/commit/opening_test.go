package commit

import (
	"errors"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

func openingState() (*spec.State, spec.JobID) {
	big := make([]int32, 2*ChunkBytes/4+5) // three chunks
	for i := range big {
		big[i] = int32(i * 7)
	}
	st := &spec.State{Step: 9, Tensors: []spec.Tensor{
		{Name: "a", Shape: []int{3}, Data: []int32{1, 2, 3}},
		{Name: "b", Shape: []int{len(big)}, Data: big},
		{Name: "c", Shape: []int{1}, Data: []int32{-1}},
		spec.Int64Tensor("c.v", []int{ChunkBytes/8 + 1}, make([]int64, ChunkBytes/8+1)), // two chunks, the second 8 bytes
	}}
	st.Tensors[3].SetInt64(ChunkBytes/8, -1<<40)
	var job spec.JobID
	job[5] = 1
	return st, job
}

func TestOpeningsVerifyAgainstTheDigestOnly(t *testing.T) {
	t.Parallel()
	st, job := openingState()
	h := Hasher{Threads: 2}
	digest := h.StateDigest(job, st)
	for ti, tn := range st.Tensors {
		chunks := (len(tn.Data)*4 + ChunkBytes - 1) / ChunkBytes
		for c := range chunks {
			o, err := h.Open(job, st, ti, c)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Verify(digest); err != nil {
				t.Fatalf("tensor %d chunk %d: %v", ti, c, err)
			}
			raw, err := o.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			back, err := UnmarshalOpening(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := back.Verify(digest); err != nil {
				t.Fatal(err)
			}
			leaf, err := ParseTensorLeaf(o.TensorLeaf)
			want := DTypeInt32
			if ti == 3 {
				want = DTypeInt64
			}
			if err != nil || leaf.Name != tn.Name || leaf.DType != want {
				t.Fatalf("tensor %d: leaf %+v, %v", ti, leaf, err)
			}
			// A changed chunk byte, step or job fails.
			bad := *back
			bad.Chunk = append([]byte(nil), back.Chunk...)
			bad.Chunk[0] ^= 1
			if !errors.Is(bad.Verify(digest), ErrBadOpening) {
				t.Fatal("tampered chunk verified")
			}
			bad = *back
			bad.Step++
			if bad.Verify(digest) == nil {
				t.Fatal("opening verified at another step")
			}
		}
	}
	if _, err := h.Open(job, st, 1, 3); err == nil {
		t.Fatal("chunk out of range opened")
	}
	// The last chunk of the int64 tensor is its last element, le64.
	o, err := h.Open(job, st, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 0, 0xff, 0xff, 0xff}; string(o.Chunk) != string(want) {
		t.Fatalf("last int64 chunk %x, want %x", o.Chunk, want)
	}
	// A leaf whose type disagrees with its byte length does not verify,
	// even when the state commits to it (a hostile solver's state).
	odd := &spec.State{Step: 1, Tensors: []spec.Tensor{{Name: "x", Shape: []int{3}, DType: spec.DTypeInt64, Data: []int32{1, 2, 3}}}}
	o, err = h.Open(job, odd, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Verify(h.StateDigest(job, odd)); !errors.Is(err, ErrBadOpening) {
		t.Fatalf("inconsistent leaf: %v", err)
	}
}

func FuzzUnmarshalOpening(f *testing.F) {
	st, job := openingState()
	h := Hasher{}
	digest := h.StateDigest(job, st)
	o, _ := h.Open(job, st, 0, 0)
	raw, _ := o.MarshalBinary()
	f.Add(raw)
	f.Add(raw[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := UnmarshalOpening(data)
		if err != nil {
			return
		}
		_ = o.Verify(digest) // must not panic
		again, err := o.MarshalBinary()
		if err != nil || string(again) != string(data) {
			t.Fatal("decoded opening does not re-encode to the same bytes")
		}
	})
}
