package spec_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/prng"
)

// tinyGPT is a 2-layer GPT of width 16: 11 parameters, 33 state tensors.
func tinyGPT() gpt.Config {
	return gpt.Config{Context: 8, Dim: 16, Layers: 2, Heads: 2, FF: 32, Bits: 12, Batch: 2, Seed: 5,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 6554, Shift: 16},
		Eps: 1, LRShift: 40, LR: []gpt.LRPoint{{Step: 0, Value: 1 << 29}}}
}

// gptJob is the job ID the GPT digests below are taken under: bytes 0…31.
func gptJob() spec.JobID {
	var job spec.JobID
	for i := range job {
		job[i] = byte(i)
	}
	return job
}

// gptBatch is step t's batch of tokens and targets, drawn from the PRNG.
func gptBatch(c gpt.Config, t int) gpt.Batch {
	s := prng.Derive(uint64(t), "test.gptstate.batch", 0, 0)
	b := gpt.Batch{Tokens: make([]byte, c.Tokens()), Targets: make([]byte, c.Tokens())}
	for i := range b.Tokens {
		b.Tokens[i] = byte(s.At(uint64(2 * i)))
		b.Targets[i] = byte(s.At(uint64(2*i + 1)))
	}
	return b
}

// gptSteps returns c.Init() after steps training steps on gptBatch.
func gptSteps(t *testing.T, c gpt.Config, steps, threads int) *gpt.State {
	t.Helper()
	tr, err := gpt.NewTrainer(c, kernel.Best(), threads)
	if err != nil {
		t.Fatal(err)
	}
	st := c.Init()
	for i := range steps {
		if _, err := tr.Step(st, gptBatch(c, i)); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// Pinned state digests (SPEC.md §20.15) of tinyGPT under gptJob: at
// initialisation, and after three steps. They change only if the GPT's
// initialisation, its step or the digest changes, and they must be the
// same on every platform (scripts/crosscheck-arm64.sh runs them on arm64).
const (
	gptInitDigest   = "8d5948bd422d20067bd857b15904ca697b36044852de3575523a7352862bce0e"
	gptStep3Digest  = "38c28cb63eb03d6c8a1c5df84885935cf667eaef42dffed4ae5e40c97544a9d7"
	gptByHandTensor = 3*1 + 2 // pos_emb.v: an int64 tensor of [8, 16], above 2^32 after 3 steps
)

// digestByHand recomputes the state digest of st from spec/merkle and
// SHA-256 alone for the int64 tensor gptByHandTensor (its leaf data and
// le64 bytes written out here) and commit.Hasher for the other leaves.
func digestByHand(t *testing.T, c gpt.Config, g *gpt.State) merkle.Digest {
	t.Helper()
	st := spec.GPTTensors(c, g)
	var h commit.Hasher
	leaves := make([]merkle.Digest, len(st.Tensors))
	for i, tn := range st.Tensors {
		leaves[i] = h.StateRoot(&spec.State{Tensors: []spec.Tensor{tn}}) // a one-leaf tree's root is its leaf
	}
	p := c.Params()[gptByHandTensor/3]
	if want := p.Name + ".v"; st.Tensors[gptByHandTensor].Name != want {
		t.Fatalf("tensor %d is %q, want %q", gptByHandTensor, st.Tensors[gptByHandTensor].Name, want)
	}
	v := g.V[gptByHandTensor/3]
	raw := make([]byte, 0, 8*len(v))
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint64(raw, uint64(x))
	}
	if len(raw) > 65536 {
		t.Fatalf("%d bytes: the by-hand leaf assumes one chunk", len(raw))
	}
	chunkRoot := merkle.New("beluga/chunks/v1").Leaf(raw) // one chunk: the root is its leaf
	name := p.Name + ".v"
	leaf := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
	leaf = append(leaf, name...)
	leaf = append(leaf, 0x02, 2) // int64, rank 2
	leaf = binary.LittleEndian.AppendUint32(leaf, uint32(p.Rows))
	leaf = binary.LittleEndian.AppendUint32(leaf, uint32(p.In))
	leaf = binary.LittleEndian.AppendUint64(leaf, uint64(len(raw)))
	leaf = append(leaf, chunkRoot[:]...)
	leaves[gptByHandTensor] = merkle.New("beluga/tensors/v1").Leaf(leaf)
	root := merkle.New("beluga/tensors/v1").Root(leaves)
	job := gptJob()
	msg := append([]byte("beluga/state/v1\x00"), job[:]...)
	msg = binary.LittleEndian.AppendUint64(msg, uint64(g.Step))
	msg = append(msg, root[:]...)
	return sha256.Sum256(msg)
}

// checkDigest compares the digest of g with the pinned hex and with the
// by-hand computation.
func checkDigest(t *testing.T, c gpt.Config, g *gpt.State, pinned string) {
	t.Helper()
	h := commit.Hasher{Threads: 2}
	got := h.StateDigest(gptJob(), spec.GPTTensors(c, g))
	if hex.EncodeToString(got[:]) != pinned {
		t.Errorf("state digest after %d steps %x, pinned %s", g.Step, got, pinned)
	}
	if byHand := digestByHand(t, c, g); byHand != got {
		t.Errorf("state digest after %d steps %x, by hand %x", g.Step, got, byHand)
	}
}

// TestGPTInitDigest pins the digest of tinyGPT's initial state and checks
// it against an int64 leaf written out by hand (type byte 0x02, 8 bytes
// per element).
func TestGPTInitDigest(t *testing.T) {
	t.Parallel()
	c := tinyGPT()
	checkDigest(t, c, c.Init(), gptInitDigest)
}

// TestGPTStepsDigest pins the digest of tinyGPT after three training steps
// on PRNG batches, for 1, 2 and 3 threads: the second moments are nonzero
// there, so the by-hand leaf checks their le64 bytes.
func TestGPTStepsDigest(t *testing.T) {
	t.Parallel()
	c := tinyGPT()
	for _, threads := range []int{1, 2, 3} {
		g := gptSteps(t, c, 3, threads)
		if g.Step != 3 {
			t.Fatalf("step count %d", g.Step)
		}
		var high bool
		for _, v := range g.V[gptByHandTensor/3] {
			high = high || v>>32 != 0
		}
		if !high {
			t.Fatal("no second moment of the by-hand tensor above 2^32: the le64 check is weak")
		}
		checkDigest(t, c, g, gptStep3Digest)
	}
}

// TestGPTStateRoundTrip: GPTTensors lays the state out as SPEC.md §20.15
// says, and GPTFromState gives back an equal state that does not alias it.
func TestGPTStateRoundTrip(t *testing.T) {
	t.Parallel()
	c := tinyGPT()
	g := gptSteps(t, c, 1, 1)
	g.V[0][3] = -1 << 40 // any int64 survives
	st := spec.GPTTensors(c, g)
	ps := c.Params()
	if len(st.Tensors) != 3*len(ps) || st.Step != 1 {
		t.Fatalf("%d tensors at step %d", len(st.Tensors), st.Step)
	}
	for i, p := range ps {
		for k, suffix := range []string{"", ".m", ".v"} {
			tn := st.Tensors[3*i+k]
			dtype, words := spec.DTypeInt32, 1
			if k == 2 {
				dtype, words = spec.DTypeInt64, 2
			}
			if tn.Name != p.Name+suffix || tn.DType != dtype || !reflect.DeepEqual(tn.Shape, []int{p.Rows, p.In}) ||
				len(tn.Data) != words*p.Rows*p.In || tn.Len() != p.Rows*p.In || tn.Check() != nil {
				t.Fatalf("tensor %d: %q %v %v, %d words", 3*i+k, tn.Name, tn.DType, tn.Shape, len(tn.Data))
			}
		}
	}
	if v := st.Tensors[2]; v.Int64At(3) != -1<<40 || v.Data[6] != 0 || v.Data[7] != -1<<8 {
		t.Fatalf("int64 element 3 is %d, words %d %d", v.Int64At(3), v.Data[6], v.Data[7])
	}
	back, err := spec.GPTFromState(c, st)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, g) {
		t.Fatal("round trip changed the state")
	}
	back.W[0][0]++
	back.V[0][0]++
	if st.Tensors[0].Data[0] == back.W[0][0] || st.Tensors[2].Int64At(0) == back.V[0][0] {
		t.Fatal("GPTFromState aliases its input")
	}
	// Clone keeps the element type.
	if cl := st.Clone(); !reflect.DeepEqual(cl, st) {
		t.Fatal("Clone differs")
	}
}

// TestGPTFromStateRefuses: every way a state can fail to be c's GPT state
// is a clear error, never a panic.
func TestGPTFromStateRefuses(t *testing.T) {
	t.Parallel()
	c := tinyGPT()
	good := func() *spec.State { return spec.GPTTensors(c, c.Init()) }
	bad := c
	bad.Heads = 3
	for _, tc := range []struct {
		name, want string
		cfg        gpt.Config
		edit       func(st *spec.State) *spec.State
	}{
		{"nil", "nil", c, func(*spec.State) *spec.State { return nil }},
		{"invalid config", "heads", bad, func(st *spec.State) *spec.State { return st }},
		{"negative step", "negative", c, func(st *spec.State) *spec.State { st.Step = -1; return st }},
		{"missing tensor", "32 tensors", c, func(st *spec.State) *spec.State { st.Tensors = st.Tensors[:32]; return st }},
		{"no tensors", "0 tensors", c, func(st *spec.State) *spec.State { st.Tensors = nil; return st }},
		{"renamed", "tok_emb.x", c, func(st *spec.State) *spec.State { st.Tensors[1].Name = "tok_emb.x"; return st }},
		{"swapped", "pos_emb", c, func(st *spec.State) *spec.State {
			st.Tensors[0], st.Tensors[3] = st.Tensors[3], st.Tensors[0]
			return st
		}},
		{"v as int32", "int32", c, func(st *spec.State) *spec.State { st.Tensors[2].DType = spec.DTypeInt32; return st }},
		{"m as int64", "int64", c, func(st *spec.State) *spec.State { st.Tensors[1].DType = spec.DTypeInt64; return st }},
		{"unknown type", "dtype(9)", c, func(st *spec.State) *spec.State { st.Tensors[2].DType = 9; return st }},
		{"transposed", "[16 256]", c, func(st *spec.State) *spec.State { st.Tensors[0].Shape = []int{16, 256}; return st }},
		{"rank 1", "[4096]", c, func(st *spec.State) *spec.State { st.Tensors[0].Shape = []int{4096}; return st }},
		{"short data", "words", c, func(st *spec.State) *spec.State { st.Tensors[0].Data = st.Tensors[0].Data[:9]; return st }},
		{"odd int64 data", "words", c, func(st *spec.State) *spec.State { st.Tensors[2].Data = st.Tensors[2].Data[:5]; return st }},
		{"int64 data as int32 length", "words", c, func(st *spec.State) *spec.State {
			st.Tensors[5].Data = st.Tensors[5].Data[:len(st.Tensors[4].Data)]
			return st
		}},
	} {
		got, err := spec.GPTFromState(tc.cfg, tc.edit(good()))
		if err == nil || got != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want an error mentioning %q)", tc.name, err, tc.want)
		}
	}
}

// TestTensorCheck: Check accepts exactly the tensors whose data fits their
// type and shape.
func TestTensorCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		t    spec.Tensor
		ok   bool
	}{
		{"int32 literal", spec.Tensor{Name: "a", Shape: []int{2, 3}, Data: make([]int32, 6)}, true},
		{"int64", spec.Int64Tensor("a", []int{2, 3}, make([]int64, 6)), true},
		{"scalar", spec.Tensor{Name: "a", Data: []int32{1}}, true},
		{"empty", spec.Tensor{Name: "a", Shape: []int{0, 7}, DType: spec.DTypeInt64}, true},
		{"int64 one word short", spec.Tensor{Name: "a", Shape: []int{3}, DType: spec.DTypeInt64, Data: make([]int32, 5)}, false},
		{"int32 with int64 words", spec.Tensor{Name: "a", Shape: []int{3}, Data: make([]int32, 6)}, false},
		{"unknown type", spec.Tensor{Name: "a", Shape: []int{1}, DType: 3, Data: make([]int32, 1)}, false},
		{"negative dimension", spec.Tensor{Name: "a", Shape: []int{-1, -1}, Data: make([]int32, 1)}, false},
		{"overflowing shape", spec.Tensor{Name: "a", Shape: []int{1 << 31, 1 << 31, 1 << 31}, DType: spec.DTypeInt64}, false},
	} {
		if err := tc.t.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v", tc.name, err)
		}
	}
	if s := (spec.DType(0)).String() + " " + spec.DTypeInt64.String() + " " + spec.DType(5).String(); s != "int32 int64 dtype(5)" {
		t.Errorf("names %q", s)
	}
}

// FuzzGPTFromState: edits of a valid GPT state (each 3 bytes: tensor,
// edit, value) never panic GPTFromState, and whatever it accepts converts
// back to tensors of the same state root (a zero element type reads as
// int32, so the tensors may differ in that field only).
func FuzzGPTFromState(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 1})
	f.Add([]byte{5, 1, 9, 0, 2, 3})
	f.Add([]byte{200, 3, 0, 7, 4, 255})
	c := tinyGPT()
	f.Fuzz(func(t *testing.T, edits []byte) {
		st := spec.GPTTensors(c, c.Init())
		for ; len(edits) >= 3; edits = edits[3:] {
			if len(st.Tensors) == 0 {
				break
			}
			tn := &st.Tensors[int(edits[0])%len(st.Tensors)]
			v := int(edits[2])
			switch edits[1] % 6 {
			case 0:
				tn.DType = spec.DType(v)
			case 1:
				tn.Data = tn.Data[:min(v, len(tn.Data))]
			case 2:
				tn.Shape = append([]int(nil), tn.Shape...)
				if len(tn.Shape) > 0 {
					tn.Shape[v%len(tn.Shape)] = v - 128
				}
			case 3:
				tn.Name += string(rune(v))
			case 4:
				st.Tensors = st.Tensors[:v%len(st.Tensors)]
			case 5:
				st.Step = int64(v - 128)
			}
		}
		g, err := spec.GPTFromState(c, st)
		if err != nil {
			return
		}
		var h commit.Hasher
		if again := spec.GPTTensors(c, g); h.StateRoot(again) != h.StateRoot(st) || again.Step != st.Step {
			t.Fatal("an accepted state does not convert back to itself")
		}
	})
}
