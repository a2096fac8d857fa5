package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
)

// manifestStates are small states whose manifests seed the tests and the
// fuzzer.
func manifestStates() []*spec.State {
	big := make([]int32, commit.ChunkBytes/4+3) // two chunks, the second short
	for i := range big {
		big[i] = int32(i * 7919)
	}
	big64 := make([]int64, commit.ChunkBytes/8+1) // two chunks, the second one element
	for i := range big64 {
		big64[i] = int64(i) * -0x1234567890b
	}
	return []*spec.State{
		{Step: 0, Tensors: nil},
		{Step: 1, Tensors: []spec.Tensor{{Name: "a", Shape: []int{2, 3}, Data: []int32{1, -2, 3, -4, 5, -6}}}},
		{Step: 9, Tensors: []spec.Tensor{
			{Name: "scalar", Shape: []int{}, Data: []int32{42}},
			{Name: "empty", Shape: []int{3, 0}, Data: []int32{}},
			{Name: "layers.0.weight", Shape: []int{len(big)}, Data: big},
			{Name: "layers.0.bias", Shape: []int{1, 1, 1, 1, 1, 1, 1, 1}, Data: []int32{-1}},
		}},
		{Step: 11, Tensors: []spec.Tensor{ // a GPT's three kinds of tensor
			{Name: "head", Shape: []int{2, 2}, DType: spec.DTypeInt32, Data: []int32{1, 2, 3, 4}},
			spec.Int64Tensor("head.v", []int{2, 2}, []int64{1, -1, 1 << 40, math.MinInt64}),
			spec.Int64Tensor("big.v", []int{len(big64)}, big64),
		}},
	}
}

func encodedManifests(t testing.TB) [][]byte {
	s := store.NewMemory()
	defer s.Close()
	var job spec.JobID
	job[0] = 0xbe
	var out [][]byte
	for _, st := range manifestStates() {
		m, err := s.PutCheckpoint(context.Background(), job, st)
		if err != nil {
			t.Fatal(err)
		}
		h := commit.Hasher{}
		if m.Digest != h.StateDigest(job, st) {
			t.Fatalf("step %d: digest differs from commit.Hasher's", st.Step)
		}
		raw, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

func TestManifestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, raw := range encodedManifests(t) {
		m, err := store.DecodeManifest(raw)
		if err != nil {
			t.Fatal(err)
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	}
}

// TestManifestEveryBitCounts flips each bit of small manifests and cuts
// them at every length: no variant may decode, because every byte is either
// structure or bound to the digest through the roots.
func TestManifestEveryBitCounts(t *testing.T) {
	t.Parallel()
	for _, raw := range encodedManifests(t) {
		if len(raw) > 4096 {
			continue
		}
		for i := range raw {
			for bit := range 8 {
				b := bytes.Clone(raw)
				b[i] ^= 1 << bit
				if _, err := store.DecodeManifest(b); !errors.Is(err, store.ErrCorrupt) {
					t.Fatalf("byte %d bit %d flipped: %v", i, bit, err)
				}
			}
		}
		for n := range len(raw) {
			if _, err := store.DecodeManifest(raw[:n]); !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("cut to %d of %d bytes: %v", n, len(raw), err)
			}
		}
	}
}

// TestDecodeManifestHostileCounts: counts far beyond the input must be
// refused before anything of their size is allocated.
func TestDecodeManifestHostileCounts(t *testing.T) {
	// Not parallel: AllocsPerRun refuses to run in a parallel test.
	raws := encodedManifests(t)
	const tensorCount = 8 + 2 + 32 + 8 + 32 + 32
	one := raws[1]
	for _, c := range []struct {
		name string
		at   int
		val  uint32
	}{
		{"tensor count 2^32-1", tensorCount, 0xffffffff},
		{"tensor count MaxTensors", tensorCount, store.MaxTensors},
		{"chunk count 2^32-1", len(one) - 32 - 4, 0xffffffff},
		{"chunk count MaxChunks", len(one) - 32 - 4, store.MaxChunks},
	} {
		b := bytes.Clone(one)
		binary.LittleEndian.PutUint32(b[c.at:], c.val)
		allocs := testing.AllocsPerRun(10, func() { _, _ = store.DecodeManifest(b) })
		if _, err := store.DecodeManifest(b); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if allocs > 20 {
			t.Fatalf("%s: %v allocations", c.name, allocs)
		}
	}
}

// TestManifestElementTypes: a manifest records int32 (1) and int64 (2)
// tensors with 4 and 8 bytes per element, and refuses any other type byte
// with an error that names it.
func TestManifestElementTypes(t *testing.T) {
	t.Parallel()
	raw := encodedManifests(t)[3]
	m, err := store.DecodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		dtype spec.DType
		bytes int64
	}{{spec.DTypeInt32, 16}, {spec.DTypeInt64, 32}, {spec.DTypeInt64, 8 * (commit.ChunkBytes/8 + 1)}} {
		if tm := m.Tensors[i]; tm.DType != want.dtype || tm.Bytes != want.bytes || len(tm.Chunks) != int(store.ChunkCount(want.bytes)) {
			t.Fatalf("tensor %q: %v, %d bytes, %d chunks", tm.Name, tm.DType, tm.Bytes, len(tm.Chunks))
		}
	}
	// The type byte of the first tensor follows its name "head".
	at := bytes.Index(raw, []byte("head")) + len("head")
	if raw[at] != 1 {
		t.Fatalf("byte after the name is %d", raw[at])
	}
	for _, d := range []byte{0, 2, 3, 255} {
		b := bytes.Clone(raw)
		b[at] = d
		_, err := store.DecodeManifest(b)
		if !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("type byte %d: %v", d, err)
		}
		if d != 2 && !strings.Contains(err.Error(), "element type") {
			t.Fatalf("type byte %d: error %q does not name the element type", d, err)
		}
	}
	// An in-memory manifest with an unknown type does not verify.
	bad := m
	bad.Tensors = append([]store.TensorManifest(nil), m.Tensors...)
	bad.Tensors[0].DType = 7
	if err := bad.Verify(); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Verify of element type 7: %v", err)
	}
}

func TestMarshalRefusesInconsistent(t *testing.T) {
	t.Parallel()
	m, err := store.DecodeManifest(encodedManifests(t)[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		mutate func(m *store.Manifest)
	}{
		{"digest", func(m *store.Manifest) { m.Digest[0] ^= 1 }},
		{"step", func(m *store.Manifest) { m.Step++ }},
		{"negative step", func(m *store.Manifest) { m.Step = -1 }},
		{"chunk", func(m *store.Manifest) { m.Tensors[2].Chunks[1][0] ^= 1 }},
		{"missing chunk", func(m *store.Manifest) { m.Tensors[2].Chunks = m.Tensors[2].Chunks[:1] }},
		{"bytes", func(m *store.Manifest) { m.Tensors[0].Bytes = 8 }},
		{"shape", func(m *store.Manifest) { m.Tensors[0].Shape = []int{1, 1} }},
		{"name", func(m *store.Manifest) { m.Tensors[0].Name = "other" }},
	} {
		mm := m
		mm.Tensors = make([]store.TensorManifest, len(m.Tensors))
		for i, t := range m.Tensors {
			t.Shape = append([]int(nil), t.Shape...)
			t.Chunks = append([]store.ChunkID(nil), t.Chunks...)
			mm.Tensors[i] = t
		}
		c.mutate(&mm)
		if _, err := mm.MarshalBinary(); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("%s changed: MarshalBinary error %v", c.name, err)
		}
		if reflect.DeepEqual(mm, m) {
			t.Fatalf("%s: mutation did not change the manifest", c.name)
		}
	}
}

// FuzzDecodeManifest: decoding never panics, and whatever decodes is
// consistent and re-encodes to the same bytes.
func FuzzDecodeManifest(f *testing.F) {
	for _, raw := range encodedManifests(f) {
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Add([]byte("BELUGAMF"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := store.DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if err := m.Verify(); err != nil {
			t.Fatalf("decoded manifest fails Verify: %v", err)
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded manifest re-encodes differently: %v", err)
		}
	})
}
