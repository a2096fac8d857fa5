// Package storetest is the conformance suite that every
// store.CheckpointStore implementation must pass, in the manner of
// testing/fstest: round trips, deduplication, garbage collection, and (where
// the implementation lets a test write raw bytes) tampering.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/protocol/store"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/prng"
)

// Subject is one fresh, empty store under test, with optional hooks that
// write raw bytes past every check (as a disk fault or someone with access
// to the disk would). Tests that need a nil hook are skipped.
type Subject struct {
	Store store.CheckpointStore
	// SetRawChunk stores data under id as is.
	SetRawChunk func(id store.ChunkID, data []byte) error
	// SetRawManifest stores raw as the manifest of job at step, as is.
	SetRawManifest func(job spec.JobID, step int64, raw []byte) error
}

// RunConformance runs the suite; open must return a new, empty store for
// each call. The suite closes it.
func RunConformance(t *testing.T, open func(t *testing.T) Subject) {
	fx := newFixture(t)
	run := func(name string, f func(t *testing.T, sub Subject, fx *fixture)) {
		t.Run(name, func(t *testing.T) {
			sub := open(t)
			t.Cleanup(func() {
				if err := sub.Store.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			f(t, sub, fx)
		})
	}
	run("Chunks", testChunks)
	run("ChunkSizeLimit", testChunkSizeLimit)
	run("CheckpointRoundTrip", testCheckpointRoundTrip)
	run("GPTRoundTrip", testGPTRoundTrip)
	run("Dedup", testDedup)
	run("Conflict", testConflict)
	run("NotFound", testNotFound)
	run("InvalidState", testInvalidState)
	run("SpecMismatch", testSpecMismatch)
	run("GC", testGC)
	run("TamperChunk", testTamperChunk)
	run("TamperManifest", testTamperManifest)
	run("Concurrent", testConcurrent)
	run("Canceled", testCanceled)
	run("Closed", testClosed)
}

// fixture is the reference MLP job (784-256-128-10) and states of it.
type fixture struct {
	spec    *spec.Spec
	job     spec.JobID
	init    *spec.State // step 0, as s.Init() draws it
	trained *spec.State // step 7, every tensor filled with PRNG values
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	job, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	trained := s.Init()
	trained.Step = 7
	for ti := range trained.Tensors {
		r := prng.New(uint64(ti) + 1)
		for i := range trained.Tensors[ti].Data {
			trained.Tensors[ti].Data[i] = int32(r.At(uint64(i)))
		}
	}
	return &fixture{spec: s, job: job, init: s.Init(), trained: trained}
}

// distinctChunks returns the distinct chunk IDs of st and their total
// length, computed without the store.
func distinctChunks(st *spec.State) (map[store.ChunkID]int, int64) {
	ids := make(map[store.ChunkID]int)
	var size int64
	for _, t := range st.Tensors {
		raw := commit.TensorBytes(nil, t.Data)
		for off := 0; off < len(raw); off += commit.ChunkBytes {
			c := raw[off:min(off+commit.ChunkBytes, len(raw))]
			id := commit.ChunkTree.Leaf(c)
			if _, ok := ids[id]; !ok {
				size += int64(len(c))
			}
			ids[id] = len(c)
		}
	}
	return ids, size
}

func stats(t *testing.T, s store.CheckpointStore) store.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func put(t *testing.T, s store.CheckpointStore, job spec.JobID, st *spec.State) store.Manifest {
	t.Helper()
	m, err := s.PutCheckpoint(context.Background(), job, st)
	if err != nil {
		t.Fatalf("PutCheckpoint(step %d): %v", st.Step, err)
	}
	return m
}

// mustGet reads the checkpoint back and compares it with want.
func mustGet(t *testing.T, s store.CheckpointStore, fx *fixture, want *spec.State) {
	t.Helper()
	got, err := s.GetCheckpoint(context.Background(), fx.spec, fx.job, want.Step)
	if err != nil {
		t.Fatalf("GetCheckpoint(step %d): %v", want.Step, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetCheckpoint(step %d) returned a different state", want.Step)
	}
}

// wantErr checks that err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// getFails checks that GetCheckpoint fails with target and returns no state.
func getFails(t *testing.T, s store.CheckpointStore, sp *spec.Spec, job spec.JobID, step int64, target error) {
	t.Helper()
	st, err := s.GetCheckpoint(context.Background(), sp, job, step)
	if st != nil {
		t.Fatalf("GetCheckpoint(step %d) returned a state with error %v", step, err)
	}
	wantErr(t, fmt.Sprintf("GetCheckpoint(step %d)", step), err, target)
}

func testChunks(t *testing.T, sub Subject, _ *fixture) {
	ctx := context.Background()
	s := sub.Store
	data := bytes.Repeat([]byte("beluga"), 1000)
	id := store.ChunkIDOf(data)
	if id != commit.ChunkTree.Leaf(data) {
		t.Fatal("ChunkIDOf is not the chunk tree's leaf hash")
	}
	if ok, err := s.Has(ctx, id); err != nil || ok {
		t.Fatalf("Has before Put = %v, %v", ok, err)
	}
	if _, err := s.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get before Put: %v, want ErrNotFound", err)
	}
	buf := bytes.Clone(data)
	got, err := s.Put(ctx, buf)
	if err != nil || got != id {
		t.Fatalf("Put = %x, %v; want %x", got[:8], err, id[:8])
	}
	buf[0] ^= 1 // the store must have copied
	if ok, err := s.Has(ctx, id); err != nil || !ok {
		t.Fatalf("Has after Put = %v, %v", ok, err)
	}
	out, err := s.Get(ctx, id)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("Get = %d bytes, %v", len(out), err)
	}
	out[0] ^= 1 // and must hand out copies
	if out, _ := s.Get(ctx, id); !bytes.Equal(out, data) {
		t.Fatal("mutating Get's result changed the stored chunk")
	}
	if _, err := s.Put(ctx, data); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Chunks != 1 || st.ChunkBytes != int64(len(data)) {
		t.Fatalf("after putting one chunk twice: %+v", st)
	}
	empty, err := s.Put(ctx, nil)
	if err != nil {
		t.Fatalf("Put(empty): %v", err)
	}
	if out, err := s.Get(ctx, empty); err != nil || len(out) != 0 {
		t.Fatalf("Get(empty) = %d bytes, %v", len(out), err)
	}
}

func testChunkSizeLimit(t *testing.T, sub Subject, _ *fixture) {
	ctx := context.Background()
	s := sub.Store
	full := bytes.Repeat([]byte{7}, commit.ChunkBytes)
	id, err := s.Put(ctx, full)
	if err != nil {
		t.Fatalf("Put of exactly ChunkBytes: %v", err)
	}
	if out, err := s.Get(ctx, id); err != nil || !bytes.Equal(out, full) {
		t.Fatalf("Get: %v", err)
	}
	_, err = s.Put(ctx, append(full, 0))
	wantErr(t, "Put of ChunkBytes+1", err, store.ErrTooLarge)
	if st := stats(t, s); st.Chunks != 1 {
		t.Fatalf("a rejected chunk was stored: %+v", st)
	}
}

func testCheckpointRoundTrip(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	for _, st := range []*spec.State{fx.init, fx.trained} {
		m := put(t, s, fx.job, st)
		h := commit.Hasher{Threads: 2}
		if want := h.StateDigest(fx.job, st); m.Digest != want {
			t.Fatalf("step %d: manifest digest %x, commit.Hasher says %x", st.Step, m.Digest[:8], want[:8])
		}
		if want := h.StateRoot(st); m.StateRoot != want {
			t.Fatalf("step %d: state root differs from commit.Hasher's", st.Step)
		}
		if m.Job != fx.job || m.Step != st.Step || len(m.Tensors) != len(st.Tensors) {
			t.Fatalf("manifest header: job %s step %d, %d tensors", m.Job, m.Step, len(m.Tensors))
		}
		for i, tm := range m.Tensors {
			tt := st.Tensors[i]
			if tm.Name != tt.Name || tm.DType != spec.DTypeInt32 || !slices.Equal(tm.Shape, tt.Shape) || tm.Bytes != 4*int64(len(tt.Data)) {
				t.Fatalf("tensor %d: %q %v %d bytes", i, tm.Name, tm.Shape, tm.Bytes)
			}
		}
		got, err := s.Manifest(ctx, fx.job, st.Step)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("Manifest(step %d) differs from PutCheckpoint's: %v", st.Step, err)
		}
		raw, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if dec, err := store.DecodeManifest(raw); err != nil || !reflect.DeepEqual(dec, m) {
			t.Fatalf("manifest encoding round trip: %v", err)
		}
		mustGet(t, s, fx, st)
	}
	steps, err := s.ListCheckpoints(ctx, fx.job)
	if err != nil || !slices.Equal(steps, []int64{0, 7}) {
		t.Fatalf("ListCheckpoints = %v, %v", steps, err)
	}
	// The last step of the job is a valid checkpoint too.
	last := fx.trained.Clone()
	last.Step = fx.spec.Steps
	put(t, s, fx.job, last)
	mustGet(t, s, fx, last)
}

func testDedup(t *testing.T, sub Subject, fx *fixture) {
	s := sub.Store
	ids, size := distinctChunks(fx.init)
	put(t, s, fx.job, fx.init)
	st := stats(t, s)
	if st.Chunks != len(ids) || st.ChunkBytes != size || st.Manifests != 1 {
		t.Fatalf("after one checkpoint: %+v, want %d chunks of %d bytes (zero momenta share chunks)", st, len(ids), size)
	}
	// Storing the same checkpoint again changes nothing.
	put(t, s, fx.job, fx.init)
	if got := stats(t, s); got != st {
		t.Fatalf("after storing it again: %+v, want %+v", got, st)
	}
	// The same tensors at another step add a manifest and no chunk.
	same := fx.init.Clone()
	same.Step = 1
	put(t, s, fx.job, same)
	if got := stats(t, s); got.Chunks != st.Chunks || got.ChunkBytes != st.ChunkBytes || got.Manifests != 2 {
		t.Fatalf("same tensors at step 1: %+v", got)
	}
	// One tensor changed in two of its chunks adds exactly those two.
	changed := fx.init.Clone()
	changed.Step = 2
	w := changed.Tensors[0].Data // layers.0.weight: 13 chunks
	w[0]++
	w[5*commit.ChunkBytes/4+3]++
	m0 := put(t, s, fx.job, fx.init)
	m2 := put(t, s, fx.job, changed)
	got := stats(t, s)
	if got.Chunks != st.Chunks+2 || got.ChunkBytes != st.ChunkBytes+2*commit.ChunkBytes || got.Manifests != 3 {
		t.Fatalf("one tensor changed in 2 chunks: %+v, want %d chunks", got, st.Chunks+2)
	}
	for ti := range m0.Tensors {
		for ci := range m0.Tensors[ti].Chunks {
			differs := m0.Tensors[ti].Chunks[ci] != m2.Tensors[ti].Chunks[ci]
			if differs != (ti == 0 && (ci == 0 || ci == 5)) {
				t.Fatalf("tensor %d chunk %d: differs = %v", ti, ci, differs)
			}
		}
	}
	mustGet(t, s, fx, changed)
	mustGet(t, s, fx, same)
}

func testConflict(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	put(t, s, fx.job, fx.init)
	other := fx.init.Clone()
	other.Tensors[1].Data[0] = 42
	_, err := s.PutCheckpoint(ctx, fx.job, other)
	wantErr(t, "PutCheckpoint of a different state at the same step", err, store.ErrConflict)
	mustGet(t, s, fx, fx.init)
	if err := s.DeleteCheckpoint(ctx, fx.job, 0); err != nil {
		t.Fatal(err)
	}
	put(t, s, fx.job, other)
	mustGet(t, s, fx, other)
}

func testNotFound(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	getFails(t, s, fx.spec, fx.job, 3, store.ErrNotFound)
	_, err := s.Manifest(ctx, fx.job, 3)
	wantErr(t, "Manifest", err, store.ErrNotFound)
	wantErr(t, "DeleteCheckpoint", s.DeleteCheckpoint(ctx, fx.job, 3), store.ErrNotFound)
	steps, err := s.ListCheckpoints(ctx, fx.job)
	if err != nil || len(steps) != 0 {
		t.Fatalf("ListCheckpoints of an empty store = %v, %v", steps, err)
	}
	// Another job's checkpoints are not listed.
	other := fx.job
	other[0] ^= 1
	st := fx.init.Clone()
	put(t, s, other, st)
	if steps, _ := s.ListCheckpoints(ctx, fx.job); len(steps) != 0 {
		t.Fatalf("ListCheckpoints lists another job's steps: %v", steps)
	}
	if steps, _ := s.ListCheckpoints(ctx, other); !slices.Equal(steps, []int64{0}) {
		t.Fatalf("ListCheckpoints(other) = %v", steps)
	}
}

// gptConfig is a small GPT: 2 layers, 11 parameters of [rows, 16] or
// [16, 32], 33 state tensors of one chunk each.
func gptConfig() gpt.Config {
	return gpt.Config{Context: 8, Dim: 16, Layers: 2, Heads: 2, FF: 32, Bits: 12, Batch: 2, Seed: 5,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 6554, Shift: 16},
		Eps: 1, LRShift: 40, LR: []gpt.LRPoint{{Step: 0, Value: 1 << 29}}}
}

// testGPTRoundTrip stores a GPT state (int32 weights and first moments,
// int64 second moments) and reads it back through GetState: the manifest
// records each tensor's element type and byte length, the digest is
// commit.Hasher's, and the restored state equals the original to the bit.
func testGPTRoundTrip(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	c := gptConfig()
	g := c.Init()
	g.Step = 3
	for p := range g.V {
		r := prng.New(uint64(p) + 100)
		for i := range g.V[p] {
			g.M[p][i] = int32(r.At(uint64(2 * i)))
			g.V[p][i] = int64(r.At(uint64(2*i + 1))) // any sign, high word set
		}
	}
	st := spec.GPTTensors(c, g)
	m := put(t, s, fx.job, st)
	h := commit.Hasher{Threads: 2}
	if want := h.StateDigest(fx.job, st); m.Digest != want {
		t.Fatalf("manifest digest %x, commit.Hasher says %x", m.Digest[:8], want[:8])
	}
	for i, tm := range m.Tensors {
		want, size := spec.DTypeInt32, int64(4)
		if i%3 == 2 {
			want, size = spec.DTypeInt64, 8
		}
		if tm.DType != want || tm.Bytes != size*int64(tm.Shape[0]*tm.Shape[1]) {
			t.Fatalf("tensor %q: element type %v, %d bytes", tm.Name, tm.DType, tm.Bytes)
		}
	}
	template := spec.GPTTensors(c, c.Init())
	got, err := s.GetState(ctx, fx.job, 3, template)
	if err != nil {
		t.Fatalf("GetState: %v", err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatal("GetState returned a different state")
	}
	back, err := spec.GPTFromState(c, got)
	if err != nil || !reflect.DeepEqual(back, g) {
		t.Fatalf("GPTFromState of the restored state differs: %v", err)
	}
	// A template that reads a second moment as int32 (same byte length,
	// twice the elements) or drops a tensor is refused, with no state.
	wrong := spec.GPTTensors(c, c.Init())
	v := &wrong.Tensors[2]
	v.DType, v.Shape = spec.DTypeInt32, []int{2 * v.Shape[0], v.Shape[1]}
	if st, err := s.GetState(ctx, fx.job, 3, wrong); st != nil || !errors.Is(err, store.ErrMismatch) {
		t.Fatalf("int64 tensor read as int32: %v", err)
	}
	short := spec.GPTTensors(c, c.Init())
	short.Tensors = short.Tensors[:len(short.Tensors)-1]
	if st, err := s.GetState(ctx, fx.job, 3, short); st != nil || !errors.Is(err, store.ErrMismatch) {
		t.Fatalf("template with a tensor missing: %v", err)
	}
	if _, err := s.GetState(ctx, fx.job, 3, nil); !errors.Is(err, store.ErrInvalidState) {
		t.Fatalf("nil template: %v", err)
	}
}

func testInvalidState(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	tensor := func(name string, shape []int, n int) *spec.State {
		return &spec.State{Tensors: []spec.Tensor{{Name: name, Shape: shape, Data: make([]int32, n)}}}
	}
	negative := fx.init.Clone()
	negative.Step = -1
	for _, c := range []struct {
		name string
		st   *spec.State
		want error
	}{
		{"nil", nil, store.ErrInvalidState},
		{"negative step", negative, store.ErrInvalidState},
		{"shape and data disagree", tensor("a", []int{2, 3}, 5), store.ErrInvalidState},
		{"empty name", tensor("", []int{1}, 1), store.ErrInvalidState},
		{"long name", tensor(string(make([]byte, store.MaxNameLen+1)), []int{1}, 1), store.ErrInvalidState},
		{"rank too high", tensor("a", make([]int, store.MaxRank+1), 0), store.ErrInvalidState},
		{"negative dimension", tensor("a", []int{-1, -1}, 1), store.ErrInvalidState},
		{"dimension beyond 32 bits", tensor("a", []int{1 << 32, 0}, 0), store.ErrInvalidState},
		{"unknown element type", &spec.State{Tensors: []spec.Tensor{{Name: "a", Shape: []int{1}, DType: 3, Data: []int32{0}}}}, store.ErrInvalidState},
		{"int64 tensor with odd words", &spec.State{Tensors: []spec.Tensor{{Name: "a", Shape: []int{2}, DType: spec.DTypeInt64, Data: []int32{0, 0, 0}}}}, store.ErrInvalidState},
		{"too many tensors", &spec.State{Tensors: make([]spec.Tensor, store.MaxTensors+1)}, store.ErrTooLarge},
	} {
		_, err := s.PutCheckpoint(ctx, fx.job, c.st)
		wantErr(t, c.name, err, c.want)
	}
	if st := stats(t, s); st != (store.Stats{}) {
		t.Fatalf("rejected states left data behind: %+v", st)
	}
	// A tensor with no elements has no chunks and is fine.
	zero := tensor("empty", []int{0, 5}, 0)
	m, err := s.PutCheckpoint(ctx, fx.job, zero)
	if err != nil || len(m.Tensors[0].Chunks) != 0 {
		t.Fatalf("zero-element tensor: %v", err)
	}
}

func testSpecMismatch(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	put(t, s, fx.job, fx.init)
	other := fx.job
	other[31] ^= 1
	getFails(t, s, fx.spec, other, 0, store.ErrMismatch) // the spec is not that job's
	getFails(t, s, fx.spec, fx.job, fx.spec.Steps+1, store.ErrMismatch)
	getFails(t, s, fx.spec, fx.job, -1, store.ErrMismatch)

	// A self-consistent checkpoint of the wrong shapes, stored under the
	// job: GetCheckpoint must refuse it, not build it.
	foreign := &spec.State{Step: 3, Tensors: []spec.Tensor{{Name: "layers.0.weight", Shape: []int{2, 3}, Data: []int32{1, 2, 3, 4, 5, 6}}}}
	put(t, s, fx.job, foreign)
	getFails(t, s, fx.spec, fx.job, 3, store.ErrMismatch)
	wrongShape := fx.init.Clone()
	wrongShape.Step = 4
	wrongShape.Tensors[1].Shape = []int{len(wrongShape.Tensors[1].Data), 1}
	put(t, s, fx.job, wrongShape)
	getFails(t, s, fx.spec, fx.job, 4, store.ErrMismatch)
	swapped := fx.init.Clone()
	swapped.Step = 5
	swapped.Tensors[0], swapped.Tensors[2] = swapped.Tensors[2], swapped.Tensors[0]
	put(t, s, fx.job, swapped)
	getFails(t, s, fx.spec, fx.job, 5, store.ErrMismatch)
	if _, err := s.Manifest(ctx, fx.job, 5); err != nil {
		t.Fatalf("Manifest of a self-consistent checkpoint: %v", err)
	}
}

func testGC(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	changed := fx.trained.Clone()
	changed.Step = 8
	changed.Tensors[0].Data[0]++
	changed.Tensors[0].Data[5*commit.ChunkBytes/4]++
	put(t, s, fx.job, fx.trained)
	put(t, s, fx.job, changed)
	referenced := stats(t, s)
	var looseBytes int64
	for i := range 3 {
		data := bytes.Repeat([]byte{byte(i + 1)}, 1000*(i+1))
		looseBytes += int64(len(data))
		if _, err := s.Put(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	n, freed, err := s.GC(ctx)
	if err != nil || n != 3 || freed != looseBytes {
		t.Fatalf("GC = %d chunks, %d bytes, %v; want the 3 loose chunks, %d bytes", n, freed, err, looseBytes)
	}
	if got := stats(t, s); got != referenced {
		t.Fatalf("after GC: %+v, want %+v", got, referenced)
	}
	mustGet(t, s, fx, fx.trained)
	mustGet(t, s, fx, changed)
	if n, freed, err := s.GC(ctx); err != nil || n != 0 || freed != 0 {
		t.Fatalf("second GC = %d, %d, %v", n, freed, err)
	}
	// Dropping step 7 frees exactly the two chunks only it had.
	if err := s.DeleteCheckpoint(ctx, fx.job, 7); err != nil {
		t.Fatal(err)
	}
	n, freed, err = s.GC(ctx)
	if err != nil || n != 2 || freed != 2*commit.ChunkBytes {
		t.Fatalf("GC after deleting step 7 = %d, %d, %v; want 2 chunks", n, freed, err)
	}
	mustGet(t, s, fx, changed)
	if err := s.DeleteCheckpoint(ctx, fx.job, 8); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stats(t, s); got != (store.Stats{}) {
		t.Fatalf("after deleting everything and GC: %+v", got)
	}
}

func testTamperChunk(t *testing.T, sub Subject, fx *fixture) {
	if sub.SetRawChunk == nil {
		t.Skip("no raw chunk access")
	}
	ctx := context.Background()
	s := sub.Store
	m := put(t, s, fx.job, fx.trained)
	id := m.Tensors[0].Chunks[3]
	good, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[1234] ^= 0x10
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"flipped byte", flipped},
		{"truncated", good[:100]},
		{"extended", append(bytes.Clone(good), 0)},
		{"empty", []byte{}},
	} {
		if err := sub.SetRawChunk(id, c.data); err != nil {
			t.Fatal(err)
		}
		out, err := s.Get(ctx, id)
		if out != nil {
			t.Fatalf("%s: Get returned %d bytes with error %v", c.name, len(out), err)
		}
		wantErr(t, c.name+": Get", err, store.ErrCorrupt)
		if ok, err := s.Has(ctx, id); err != nil || !ok {
			t.Fatalf("%s: Has = %v, %v", c.name, ok, err)
		}
		getFails(t, s, fx.spec, fx.job, fx.trained.Step, store.ErrCorrupt)
	}
	// Storing the checkpoint again repairs the chunk.
	if err := sub.SetRawChunk(id, flipped); err != nil {
		t.Fatal(err)
	}
	put(t, s, fx.job, fx.trained)
	mustGet(t, s, fx, fx.trained)
	// So does Put.
	if err := sub.SetRawChunk(id, flipped); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, good); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, fx, fx.trained)
}

// Offsets into a version 1 manifest.
const (
	offsetDigest  = 8 + 2 + 32 + 8 + 32
	offsetTensors = offsetDigest + 32
)

func testTamperManifest(t *testing.T, sub Subject, fx *fixture) {
	if sub.SetRawManifest == nil {
		t.Skip("no raw manifest access")
	}
	ctx := context.Background()
	s := sub.Store
	m := put(t, s, fx.job, fx.init)
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	step := fx.init.Step
	flip := func(i int) []byte {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return b
	}
	for _, c := range []struct {
		name string
		raw  []byte
	}{
		{"wrong digest", flip(offsetDigest)},
		{"wrong state root", flip(offsetDigest - 1)},
		{"wrong step", flip(offsetDigest - 32 - 8)},
		{"wrong chunk ID", flip(len(raw) - 1)},
		{"wrong name", flip(offsetTensors + 4 + 2)},
		{"wrong version", flip(8)},
		{"truncated by one", raw[:len(raw)-1]},
		{"truncated header", raw[:50]},
		{"empty", []byte{}},
		{"trailing byte", append(bytes.Clone(raw), 0)},
		{"garbage", bytes.Repeat([]byte{0xa5}, len(raw))},
	} {
		if err := sub.SetRawManifest(fx.job, step, c.raw); err != nil {
			t.Fatal(err)
		}
		getFails(t, s, fx.spec, fx.job, step, store.ErrCorrupt)
		_, err := s.Manifest(ctx, fx.job, step)
		wantErr(t, c.name+": Manifest", err, store.ErrCorrupt)
	}
	// GC will not run while a manifest is unreadable, and deletes nothing.
	if _, err := s.Put(ctx, []byte("loose")); err != nil {
		t.Fatal(err)
	}
	before := stats(t, s)
	_, _, err = s.GC(ctx)
	wantErr(t, "GC with a corrupt manifest", err, store.ErrCorrupt)
	if got := stats(t, s); got != before {
		t.Fatalf("GC deleted with a corrupt manifest: %+v -> %+v", before, got)
	}
	// A good manifest stored at the wrong place is a mismatch.
	if err := sub.SetRawManifest(fx.job, step, raw); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, fx, fx.init)
	if err := sub.SetRawManifest(fx.job, 9, raw); err != nil {
		t.Fatal(err)
	}
	getFails(t, s, fx.spec, fx.job, 9, store.ErrMismatch)
	other := fx.job
	other[0] ^= 1
	if err := sub.SetRawManifest(other, step, raw); err != nil {
		t.Fatal(err)
	}
	_, err = s.Manifest(ctx, other, step)
	wantErr(t, "Manifest of another job", err, store.ErrMismatch)
	// A hostile manifest for the job with the spec's names but a huge shape
	// is refused before any chunk is read (none of its chunks exist).
	huge := m
	huge.Step = 10
	huge.Tensors = slices.Clone(m.Tensors)
	big := &huge.Tensors[0]
	big.Shape = []int{1 << 14, 1 << 14}
	big.Bytes = 4 << 28
	big.Chunks = make([]store.ChunkID, big.Bytes/commit.ChunkBytes)
	big.ChunkRoot = commit.ChunkTree.Root(big.Chunks)
	fixRoots(&huge)
	hugeRaw, err := huge.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetRawManifest(fx.job, 10, hugeRaw); err != nil {
		t.Fatal(err)
	}
	getFails(t, s, fx.spec, fx.job, 10, store.ErrMismatch)
}

// fixRoots recomputes the state root and digest of m from its tensors.
func fixRoots(m *store.Manifest) {
	leaves := make([]store.ChunkID, len(m.Tensors))
	for i, t := range m.Tensors {
		leaves[i] = commit.TensorTree.Leaf(commit.TensorLeaf(t.Name, t.DType, t.Shape, t.Bytes, t.ChunkRoot))
	}
	m.StateRoot = commit.TensorTree.Root(leaves)
	m.Digest = commit.Digest(m.Job, m.Step, m.StateRoot)
}

// testConcurrent stores checkpoints from several goroutines while GC runs
// in a loop: every checkpoint that was stored must read back intact.
func testConcurrent(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	const writers, perWriter = 3, 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	var stored []*spec.State
	errs := make(chan error, writers+1)
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				st := fx.init.Clone()
				st.Step = int64(1 + w*perWriter + i)
				st.Tensors[4].Data[i] = int32(w + 1) // a chunk of its own; the rest shared
				if _, err := s.PutCheckpoint(ctx, fx.job, st); err != nil {
					errs <- err
					return
				}
				if _, err := s.Put(ctx, []byte(fmt.Sprintf("loose %d %d", w, i))); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				stored = append(stored, st)
				mu.Unlock()
			}
		})
	}
	var gcs sync.WaitGroup
	gcs.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, _, err := s.GC(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(done)
	gcs.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range stored {
		mustGet(t, s, fx, st)
	}
	steps, err := s.ListCheckpoints(ctx, fx.job)
	if err != nil || len(steps) != writers*perWriter {
		t.Fatalf("ListCheckpoints = %v, %v", steps, err)
	}
}

func testCanceled(t *testing.T, sub Subject, fx *fixture) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := sub.Store
	_, err := s.PutCheckpoint(ctx, fx.job, fx.init)
	wantErr(t, "PutCheckpoint", err, context.Canceled)
	_, err = s.Put(ctx, []byte("x"))
	wantErr(t, "Put", err, context.Canceled)
	put(t, s, fx.job, fx.init)
	_, err = s.GetCheckpoint(ctx, fx.spec, fx.job, 0)
	wantErr(t, "GetCheckpoint", err, context.Canceled)
	_, _, err = s.GC(ctx)
	wantErr(t, "GC", err, context.Canceled)
	if steps, _ := s.ListCheckpoints(context.Background(), fx.job); !slices.Equal(steps, []int64{0}) {
		t.Fatalf("steps after canceled calls: %v", steps)
	}
}

func testClosed(t *testing.T, sub Subject, fx *fixture) {
	ctx := context.Background()
	s := sub.Store
	id, err := s.Put(ctx, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, id)
	wantErr(t, "Get after Close", err, store.ErrClosed)
	_, err = s.PutCheckpoint(ctx, fx.job, fx.init)
	wantErr(t, "PutCheckpoint after Close", err, store.ErrClosed)
	_, _, err = s.GC(ctx)
	wantErr(t, "GC after Close", err, store.ErrClosed)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
