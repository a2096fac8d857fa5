package dispute

import (
	"math"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/ref"
)

// TestHashTensorElementTypes: a state tensor whose bounds fit int32 hashes
// to the int32 leaf, one whose bounds do not (a GPT's second moment) to
// the int64 leaf, each exactly as commit.Hasher computes it for the same
// values, across a chunk boundary.
func TestHashTensorElementTypes(t *testing.T) {
	t.Parallel()
	n := commit.ChunkBytes/8 + 3 // int64: two chunks; int32: one
	vals := make([]int64, n)
	for i := range vals {
		vals[i] = int64(i)*0x12345 - 1<<20
	}
	vals[n-1] = math.MaxInt64 - 1
	info := ref.TensorInfo{Name: "p.v", Kind: ref.StateIn, StateName: "p.v", Shape: []int{n}, Min: 0, Max: math.MaxInt64, Producer: -1}
	if StateDType(info) != spec.DTypeInt64 {
		t.Fatal("int64 bounds do not give an int64 leaf")
	}
	var h commit.Hasher
	if _, err := HashTensor(info, ref.Tensor{Shape: []int{n}, Data: vals}); err == nil {
		t.Fatal("negative value outside [0, MaxInt64] hashed")
	}
	info.Min = math.MinInt64
	got, err := HashTensor(info, ref.Tensor{Shape: []int{n}, Data: vals})
	if err != nil {
		t.Fatal(err)
	}
	st := &spec.State{Tensors: []spec.Tensor{spec.Int64Tensor("p.v", []int{n}, vals)}}
	if want := h.StateRoot(st); got != want { // a one-leaf tree's root is the leaf
		t.Fatalf("int64 state leaf %x, commit.Hasher %x", got[:8], want[:8])
	}
	if tensorBytes(info) != 8*int64(n) {
		t.Fatalf("int64 tensor costs %d bytes", tensorBytes(info))
	}

	// int32 bounds: le32, as version 1 always was.
	info32 := info
	info32.StateName, info32.Min, info32.Max = "p", math.MinInt32, math.MaxInt32
	v32 := make([]int64, n)
	d32 := make([]int32, n)
	for i := range v32 {
		d32[i] = int32(vals[i])
		v32[i] = int64(d32[i])
	}
	got, err = HashTensor(info32, ref.Tensor{Shape: []int{n}, Data: v32})
	if err != nil {
		t.Fatal(err)
	}
	if want := h.StateRoot(&spec.State{Tensors: []spec.Tensor{{Name: "p", Shape: []int{n}, Data: d32}}}); got != want {
		t.Fatalf("int32 state leaf %x, commit.Hasher %x", got[:8], want[:8])
	}
	if StateDType(info32) != spec.DTypeInt32 || tensorBytes(info32) != 4*int64(n) {
		t.Fatal("int32 bounds do not give an int32 leaf")
	}
}
