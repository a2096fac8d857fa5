package conformance

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/prng"
)

// GPT-2 block vectors (SPEC.md §22.6): the operators of §22.2 on chosen
// inputs (ops.json), and one small model's forward pass (model.json), so
// an implementation can check each formula and the whole pass on its own.

const gpt2VectorsDir = "../testdata/gpt2vectors"

type gpt2Ops struct {
	// GELU: [u, GELU(u)] pairs.
	GELU [][2]int64 `json:"gelu"`
	// LayerNorm: rows x with gain and bias, and the output y.
	LayerNorm []lnRow `json:"layernorm"`
	// BiasOut: [a, e, β, BiasOut(a, e, β)].
	BiasOut [][4]int64 `json:"bias_out"`
}

type lnRow struct {
	X    []int32 `json:"x"`
	Gain []int32 `json:"gain"`
	Bias []int32 `json:"bias"`
	Y    []int32 `json:"y"`
}

// gpt2OpsVectors computes ops.json from its inputs.
func gpt2OpsVectors() *gpt2Ops {
	o := &gpt2Ops{}
	us := []int64{0, 1, -1, 1 << 15, -1 << 15, 1 << 16, -1 << 16, 3 << 16, -3 << 16, 348000, -348000,
		1<<20 - 1, -(1<<20 - 1), 1 << 20, -1 << 20, 1<<20 + 1, -(1<<20 + 1), math.MaxInt32, math.MinInt32}
	r := prng.Derive(22, "gpt2.vectors.gelu", 0, 0)
	for i := range 40 {
		us = append(us, int64(r.At(uint64(i))%(16<<16))-8<<16)
	}
	for _, u := range us {
		o.GELU = append(o.GELU, [2]int64{u, gpt.GELU(u)})
	}
	r = prng.Derive(22, "gpt2.vectors.layernorm", 0, 0)
	k := uint64(0)
	next := func(n uint64) int64 { k++; return int64(r.At(k) % n) }
	row := func(d int, scale, gscale, bscale int64) lnRow {
		l := lnRow{X: make([]int32, d), Gain: make([]int32, d), Bias: make([]int32, d), Y: make([]int32, d)}
		for i := range d {
			l.X[i] = int32(next(uint64(2*scale+1)) - scale)
			l.Gain[i] = int32(1<<16 + next(uint64(2*gscale+1)) - gscale)
			l.Bias[i] = int32(next(uint64(2*bscale+1)) - bscale)
		}
		return l
	}
	rows := []lnRow{
		row(5, 3<<16, 1<<14, 1<<14), // an ordinary row
		row(8, 1<<8, 1<<15, 1<<12),  // small values: ε matters
		row(7, 1<<30, 1<<14, 1<<14), // large values: prescaled (s > 0)
		row(1, 1<<16, 0, 1<<10),     // one element: c = 0
	}
	flat := row(4, 0, 1<<14, 1<<14) // zero variance: y = bias
	for i := range flat.X {
		flat.X[i] = 123456
	}
	sat := row(6, 1<<20, 0, 1<<14) // huge gains: y saturates
	for i := range sat.Gain {
		sat.Gain[i] = math.MaxInt32 - int32(i)
		if i%2 == 1 {
			sat.Gain[i] = -sat.Gain[i]
		}
	}
	sat.Bias[0] = math.MaxInt32
	rows = append(rows, flat, sat)
	for _, l := range rows {
		gpt.LayerNormRow(l.Y, l.X, l.Gain, l.Bias)
		o.LayerNorm = append(o.LayerNorm, l)
	}
	for _, b := range [][3]int64{
		{123456789, -20, 1000}, {-123456789, -20, -1000}, {5, -1, 0}, {7, -1, 0}, {-7, -1, 0},
		{1 << 40, -10, 0},               // the inner Sat32
		{-1 << 40, -10, 0},              // and its negative side
		{math.MaxInt32 - 5, -16, 100},   // the outer Sat32
		{math.MinInt32 + 5, -16, -100},  // and its negative side
		{3, 40, 0},                      // ShiftRound's saturating left shift
		{-(1 << 50), 30, math.MaxInt32}, // saturated, then the bias
		{99, -70, math.MinInt32 + 1},    // RoundShift by more than 63
	} {
		o.BiasOut = append(o.BiasOut, [4]int64{b[0], b[1], b[2], int64(gpt.BiasOut(b[0], int(b[1]), int32(b[2])))})
	}
	return o
}

// gpt2Model is model.json: a small model of GPT-2 blocks, its state, a
// text, and the forward pass over it.
type gpt2Model struct {
	Spec json.RawMessage `json:"spec"`
	// State: per parameter in §22.1's order, its name and values.
	State []namedValues `json:"state"`
	Text  string        `json:"text"`
	// Logits[r] and Exponents[r] are position r's (§22.3).
	Logits    [][]int64 `json:"logits"`
	Exponents []int     `json:"exponents"`
	// Digest is the model's state digest (§20.15 over §22.1's tensors).
	Digest string `json:"digest"`
}

type namedValues struct {
	Name   string  `json:"name"`
	Values []int32 `json:"values"`
}

// gpt2VectorSpec is model.json's model: 2 layers, width 8, 2 heads, MLP
// width 16, context 8, 12-bit operands.
func gpt2VectorSpec() *spec.Spec { return spec.ServedGPT2("gpt2-vector", 8, 8, 2, 2, 16, 12) }

// gpt2VectorState draws a state whose predictions are not uniform:
// embeddings in ±0.8, matrices in ±1.5/√in, gains 1 ± 0.3, biases ±0.2.
func gpt2VectorState(c gpt.Config) *gpt.State {
	st := c.Init()
	for p, pr := range c.Params() {
		r := prng.Derive(22, "gpt2.vectors.state", uint64(p), 0)
		var lo, span int64
		switch {
		case pr.Vector && len(pr.Name) > 5 && pr.Name[len(pr.Name)-5:] == ".gain":
			lo, span = 1<<16-19661, 2*19661+1
		case pr.Vector:
			lo, span = -13107, 2*13107+1
		case pr.Embedding:
			lo, span = -13421773, 2*13421773+1
		default:
			b := int64(1.5 * (1 << 24) / math.Sqrt(float64(pr.In)))
			lo, span = -b, 2*b+1
		}
		for i := range st.W[p] {
			st.W[p][i] = int32(lo + int64(r.At(uint64(i))%uint64(span)))
		}
	}
	return st
}

func gpt2ModelVector(t *testing.T, s *spec.Spec, st *gpt.State, text string) *gpt2Model {
	t.Helper()
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	canon, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	m := &gpt2Model{Spec: canon, Text: text}
	for p, pr := range c.Params() {
		m.State = append(m.State, namedValues{Name: pr.Name, Values: st.W[p]})
	}
	g, err := gpt.NewGenerator(c, st, kernel.Best(), 1)
	if err != nil {
		t.Fatal(err)
	}
	err = g.Positions([]byte(text), 0, func(r int, z []int64, e int) error {
		m.Logits = append(m.Logits, append([]int64(nil), z...))
		m.Exponents = append(m.Exponents, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	var h commit.Hasher
	d := h.StateDigest(id, spec.GPTTensors(c, st))
	m.Digest = hex.EncodeToString(d[:])
	return m
}

const gpt2VectorText = "GPT-2 b"

// TestUpdateGPT2Vectors regenerates spec/testdata/gpt2vectors with -update.
func TestUpdateGPT2Vectors(t *testing.T) {
	if !*update {
		t.Skip("pass -update to regenerate the vectors")
	}
	s := gpt2VectorSpec()
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"ops.json":   gpt2OpsVectors(),
		"model.json": gpt2ModelVector(t, s, gpt2VectorState(c), gpt2VectorText),
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(gpt2VectorsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(gpt2VectorsDir, name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGPT2OpVectors: the engine's GELU, LayerNorm and BiasOut reproduce
// every pair of ops.json.
func TestGPT2OpVectors(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(gpt2VectorsDir, "ops.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want gpt2Ops
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, p := range want.GELU {
		if got := gpt.GELU(p[0]); got != p[1] {
			t.Errorf("GELU(%d) = %d, vector %d", p[0], got, p[1])
		}
	}
	for i, l := range want.LayerNorm {
		y := make([]int32, len(l.X))
		gpt.LayerNormRow(y, l.X, l.Gain, l.Bias)
		if !reflect.DeepEqual(y, l.Y) {
			t.Errorf("LayerNorm row %d = %v, vector %v", i, y, l.Y)
		}
	}
	for _, v := range want.BiasOut {
		if got := int64(gpt.BiasOut(v[0], int(v[1]), int32(v[2]))); got != v[3] {
			t.Errorf("BiasOut(%d, %d, %d) = %d, vector %d", v[0], v[1], v[2], got, v[3])
		}
	}
	if !reflect.DeepEqual(&want, gpt2OpsVectors()) {
		t.Error("ops.json's inputs differ from the ones the test draws: regenerate with -update")
	}
}

// TestGPT2ModelVector: the engine reproduces model.json's forward pass —
// every position's logits and exponent — and digest, from the state the
// file holds (with every kernel).
func TestGPT2ModelVector(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(gpt2VectorsDir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want gpt2Model
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(want.Spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	st := c.Init()
	ps := c.Params()
	if len(want.State) != len(ps) {
		t.Fatalf("%d tensors, the model has %d", len(want.State), len(ps))
	}
	for p, nv := range want.State {
		if nv.Name != ps[p].Name || len(nv.Values) != len(st.W[p]) {
			t.Fatalf("tensor %d is %q of %d values, want %q of %d", p, nv.Name, len(nv.Values), ps[p].Name, len(st.W[p]))
		}
		st.W[p] = nv.Values
	}
	got := gpt2ModelVector(t, s, st, want.Text)
	if !reflect.DeepEqual(got.Logits, want.Logits) || !reflect.DeepEqual(got.Exponents, want.Exponents) {
		t.Fatal("the forward pass differs from model.json's logits")
	}
	if got.Digest != want.Digest {
		t.Fatalf("digest %s, vector %s", got.Digest, want.Digest)
	}
	for _, name := range kernel.Names() {
		k, err := kernel.ByName(name)
		if err != nil {
			continue // not on this machine
		}
		g, err := gpt.NewGenerator(c, st, k, 2)
		if err != nil {
			t.Fatal(err)
		}
		z, e, err := g.Logits([]byte(want.Text))
		if err != nil {
			t.Fatal(err)
		}
		last := len(want.Text) - 1
		if e != want.Exponents[last] || !reflect.DeepEqual(z, want.Logits[last]) {
			t.Fatalf("kernel %s: the last position differs", k.Name())
		}
	}
	// The model is not degenerate: its predictions are not all alike.
	if reflect.DeepEqual(want.Logits[0], want.Logits[len(want.Logits)-1]) {
		t.Fatal("the vector's logits are the same at every position")
	}
}
