package gptref

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// randomGPT2Config draws a small valid configuration of GPT-2 blocks.
func randomGPT2Config(r *rand.Rand) gpt.Config {
	c := gpt.RandomConfig(r)
	c.GPT2 = true
	return c
}

// gpt2Variants edit a GPT-2 model's state to reach §22's edge cases:
// random gains and biases (negative gains, large biases), gains and
// biases anywhere in int32 (LayerNorm's and BiasOut's Sat32), every
// tensor anywhere in int32, and zero embeddings (rows of zeros: ρ from
// ε alone).
var gpt2Variants = []struct {
	name string
	edit func(c gpt.Config, st *gpt.State, r *rand.Rand)
}{
	{"init", func(gpt.Config, *gpt.State, *rand.Rand) {}},
	{"random vectors", func(c gpt.Config, st *gpt.State, r *rand.Rand) {
		for p, pr := range c.Params() {
			if pr.Vector {
				for i := range st.W[p] {
					st.W[p][i] = int32(r.Int64N(1<<19) - 1<<18)
				}
			}
		}
	}},
	{"int32 vectors", func(c gpt.Config, st *gpt.State, r *rand.Rand) {
		for p, pr := range c.Params() {
			if pr.Vector {
				for i := range st.W[p] {
					st.W[p][i] = int32(r.Uint32())
				}
			}
		}
	}},
	{"int32 weights", func(c gpt.Config, st *gpt.State, r *rand.Rand) {
		for _, w := range st.W {
			for i := range w {
				w[i] = int32(r.Uint32())
			}
		}
	}},
	{"zero embeddings", func(c gpt.Config, st *gpt.State, _ *rand.Rand) { clear(st.W[0]); clear(st.W[1]) }},
}

// TestGPT2ForwardGraphMatchesTeacher: for random configurations of GPT-2
// blocks (SPEC.md §22), state variants and lengths n ≤ T, the forward
// graph's logits are the engine's teacher-forced pass, row for row.
func TestGPT2ForwardGraphMatchesTeacher(t *testing.T) {
	t.Parallel()
	for k := range 40 {
		r := rand.New(rand.NewPCG(22, uint64(k)))
		c := randomGPT2Config(r)
		v := gpt2Variants[k%len(gpt2Variants)]
		t.Run(fmt.Sprintf("%d %s", k, v.name), func(t *testing.T) {
			t.Parallel()
			st := c.Init()
			v.edit(c, st, r)
			matchTeacher(t, c, st, randomBytes(r, 1+r.IntN(c.Context)))
		})
	}
}

// TestGPT2ForwardGraphVector: the forward graph reproduces the §22
// model vector (spec/testdata/gpt2vectors/model.json): every position's
// logits and exponent, from the state the file holds.
func TestGPT2ForwardGraphVector(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "gpt2vectors", "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Spec  json.RawMessage `json:"spec"`
		State []struct {
			Name   string  `json:"name"`
			Values []int32 `json:"values"`
		} `json:"state"`
		Text      string    `json:"text"`
		Logits    [][]int64 `json:"logits"`
		Exponents []int64   `json:"exponents"`
	}
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
	if !c.GPT2 {
		t.Fatal("the vector's model has no GPT-2 blocks")
	}
	st := c.Init()
	ps := c.Params()
	if len(want.State) != len(ps) {
		t.Fatalf("%d tensors, the model has %d", len(want.State), len(ps))
	}
	for p, nv := range want.State {
		if nv.Name != ps[p].Name || len(nv.Values) != len(st.W[p]) {
			t.Fatalf("tensor %d is %q, want %q", p, nv.Name, ps[p].Name)
		}
		st.W[p] = nv.Values
	}
	g, err := NewForwardGraph(c, len(want.Text))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := g.Forward(st, []byte(want.Text))
	if err != nil {
		t.Fatal(err)
	}
	z, ez := vals["act.logits"].Data, vals["act.logits.exp"].Data
	if len(want.Logits) != len(want.Text) {
		t.Fatalf("%d logits rows for %d bytes", len(want.Logits), len(want.Text))
	}
	for r, row := range want.Logits {
		if ez[r] != want.Exponents[r] {
			t.Fatalf("row %d: exponent %d, vector %d", r, ez[r], want.Exponents[r])
		}
		if got := z[r*gpt.Vocab : (r+1)*gpt.Vocab]; !slices.Equal(got, row) {
			t.Fatalf("row %d: logits differ from the vector's", r)
		}
	}
}

// TestGPT2ForwardGraphShape: the sources are §22.1's parameters in state
// order (the vectors as [1, n] state tensors named by their state names)
// and the tokens; the operators are §22.3's, each of a documented kind
// whose arity is the same at every instance; the head reads tok_emb's
// quantisation; NewGraph still refuses the configuration (served, not
// trained).
func TestGPT2ForwardGraphShape(t *testing.T) {
	t.Parallel()
	c := randomGPT2Config(rand.New(rand.NewPCG(8, 9)))
	if _, err := NewGraph(c); !errors.Is(err, ErrGPT2) {
		t.Errorf("NewGraph: %v, want ErrGPT2", err)
	}
	g, err := NewForwardGraph(c, c.Context)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, p := range c.Params() {
		want = append(want, fmt.Sprintf("%s %v", p.Name, []int{p.Rows, p.In}))
	}
	want = append(want, "tokens [1]")
	for _, info := range g.Tensors() {
		if info.Producer >= 0 {
			continue
		}
		if info.Kind == StateIn && info.StateName != info.Name {
			t.Errorf("source %s has the state name %q", info.Name, info.StateName)
		}
		shape := info.Shape
		if info.Name == "tokens" {
			shape = []int{1}
		}
		got = append(got, fmt.Sprintf("%s %v", info.Name, shape))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sources %v, want %v", got, want)
	}
	kinds := map[string]bool{"quantize": true, "embed": true, "layernorm": true, "qkv.bias": true, "attn": true,
		"residual.bias": true, "up.bias": true, "gelu": true, "head": true}
	arity := map[string][2]int{}
	var names []string
	for _, o := range g.Ops() {
		if !kinds[o.Kind] {
			t.Fatalf("operator %s has kind %q", o.Name, o.Kind)
		}
		a := [2]int{len(o.Inputs), len(o.Outputs)}
		if prev, ok := arity[o.Kind]; ok && prev != a {
			t.Fatalf("operator %s: %v inputs/outputs, another %s has %v", o.Name, a, o.Kind, prev)
		}
		arity[o.Kind] = a
		names = append(names, o.Name)
	}
	if len(arity) != len(kinds) {
		t.Fatalf("kinds %v, want all of %v", arity, kinds)
	}
	ops := g.Ops()
	if ops[0].Name != "quantize.tok_emb" || !slices.Equal(ops[len(ops)-1].Inputs[2:], []string{"tok_emb.wq", "tok_emb.wq.exp"}) {
		t.Fatalf("operators %v: want the tied head over quantize.tok_emb", names)
	}
	if strings.Contains(fmt.Sprint(names), "rmsnorm") || strings.Contains(fmt.Sprint(names), "silu") {
		t.Fatalf("operators %v have §20's blocks", names)
	}
	// 4L + 1 quantize, embed, 8 per block, the final layernorm and the head.
	if n := len(ops); n != 12*c.Layers+4 {
		t.Fatalf("%d operators, want %d", n, 12*c.Layers+4)
	}
}

// TestGPT2RunOpRefusesBadInputs: every operator of a GPT-2 forward graph
// recomputes its outputs on the run's inputs and refuses a missing or
// extra input, a wrong shape, and an element outside its range with
// ErrBadOpInput.
func TestGPT2RunOpRefusesBadInputs(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 11))
	c := randomGPT2Config(r)
	g, err := NewForwardGraph(c, c.Context)
	if err != nil {
		t.Fatal(err)
	}
	st := c.Init()
	gpt2Variants[1].edit(c, st, r)
	vals, err := g.Forward(st, randomBytes(r, c.Context))
	if err != nil {
		t.Fatal(err)
	}
	bad := func(what string, i int, in map[string]Tensor) {
		t.Helper()
		if _, err := g.RunOp(i, in, 0); !errors.Is(err, ErrBadOpInput) {
			t.Errorf("operator %d, %s: error %v, want ErrBadOpInput", i, what, err)
		}
	}
	for i, o := range g.Ops() {
		out, err := g.RunOp(i, opInputs(o, vals), 0)
		if err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		for name, v := range out {
			if !slices.Equal(v.Data, vals[name].Data) {
				t.Fatalf("%s: %s differs on a rerun", o.Name, name)
			}
		}
		in := opInputs(o, vals)
		delete(in, o.Inputs[len(o.Inputs)-1])
		bad("missing input", i, in)
		in = opInputs(o, vals)
		in["bogus"] = Tensor{Shape: []int{1}, Data: []int64{0}}
		bad("extra input", i, in)
		for _, name := range o.Inputs {
			info, _ := g.Tensor(name)
			in = opInputs(o, vals)
			v := in[name]
			v.Shape = append(v.Shape, 1)
			in[name] = v
			bad(name+" rank", i, in)
			if info.Max < maxI64 {
				in = opInputs(o, vals)
				in[name].Data[len(in[name].Data)-1] = info.Max + 1
				bad(name+" above range", i, in)
			}
			if info.Min > -maxI64 {
				in = opInputs(o, vals)
				in[name].Data[0] = info.Min - 1
				bad(name+" below range", i, in)
			}
		}
	}
}

// TestGPT2RunOpHostileInputs: every operator of GPT-2 forward graphs, on
// random inputs inside their ranges (extremes included), returns outputs
// or an error wrapping ErrBadOpInput or ErrOverflow, never a panic.
func TestGPT2RunOpHostileInputs(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(13, 14))
	for range 4 {
		c := randomGPT2Config(r)
		g, err := NewForwardGraph(c, 1+r.IntN(c.Context))
		if err != nil {
			t.Fatal(err)
		}
		for i := range g.Ops() {
			for trial := range 6 {
				runHostile(t, g, i, r, trial)
			}
		}
	}
}

// runHostile runs operator i of g on inputs drawn by hostile.
func runHostile(t *testing.T, g *Graph, i int, r *rand.Rand, trial int) {
	t.Helper()
	o := g.Ops()[i]
	in := map[string]Tensor{}
	for _, name := range o.Inputs {
		info, _ := g.Tensor(name)
		v := Tensor{Shape: slices.Clone(info.Shape), Data: make([]int64, info.Len())}
		for k := range v.Data {
			v.Data[k] = hostile(r, info, trial)
		}
		in[name] = v
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s panicked: %v", o.Name, p)
		}
	}()
	if _, err := g.RunOp(i, in, 0); err != nil && !errors.Is(err, ErrBadOpInput) && !errors.Is(err, ErrOverflow) {
		t.Fatalf("%s: %v", o.Name, err)
	}
}

// FuzzGPT2RunOp: any operator of a small GPT-2 forward graph, on inputs
// drawn in their ranges from the fuzzer's seed, returns outputs or an
// error, never a panic.
func FuzzGPT2RunOp(f *testing.F) {
	for _, s := range []struct {
		seed  uint64
		op    uint16
		trial uint8
	}{{1, 0, 0}, {2, 5, 1}, {3, 9, 2}, {4, 12, 3}, {5, 20, 9}} {
		f.Add(s.seed, s.op, s.trial)
	}
	f.Fuzz(func(t *testing.T, seed uint64, op uint16, trial uint8) {
		r := rand.New(rand.NewPCG(seed, 0))
		c := randomGPT2Config(r)
		g, err := NewForwardGraph(c, 1+r.IntN(c.Context))
		if err != nil {
			t.Fatal(err)
		}
		runHostile(t, g, int(op)%len(g.Ops()), r, int(trial))
	})
}

// TestGPT2Numbers: LayerNorm, BiasOut and GELU at points §22.2 states:
// GELU is the identity from 16.0 on and 0 from −16.0 down, GELU(0) = 0;
// BiasOut saturates at int32; a constant row normalises to its bias.
func TestGPT2Numbers(t *testing.T) {
	t.Parallel()
	m := newDims(gpt.Config{Dim: 4, FF: 4, Bits: 8, Heads: 1, Context: 1}, 1, 1, 1)
	m.f = 4
	ar := &arith{}
	// GELU(u) before NormRow: read through hq and its exponent.
	for _, c := range []struct{ u, h int64 }{{1 << 20, 1 << 20}, {1 << 30, 1 << 30}, {-1 << 20, 0}, {-1 << 30, 0}, {0, 0}} {
		out := m.gelu(0, [][]int64{{c.u, 0, 0, 0}}, ar)
		h := out[0][0] << uint(out[1][0]+actFrac) // exact: NormRow of one value keeps it
		if out[1][0] < -actFrac {
			h = out[0][0] >> uint(-actFrac-out[1][0])
		}
		if h != c.h {
			t.Errorf("GELU(%d) = %d, want %d", c.u, h, c.h)
		}
	}
	if got := biasOut(1<<40, 0, 5); got != maxI32 {
		t.Errorf("BiasOut saturates to %d", got)
	}
	if got := biasOut(-1<<40, 0, -5); got != minI32 {
		t.Errorf("BiasOut saturates to %d", got)
	}
	if got := biasOut(3<<16, -16, 7); got != 3<<16+7 {
		t.Errorf("BiasOut(3·2^16 at −16, 7) = %d", got)
	}
	out := m.layernorm(0, [][]int64{{5 << 16, 5 << 16, 5 << 16, 5 << 16}, {1 << 16, 1 << 16, 1 << 16, 1 << 16}, {-3, 1, 2, 1 << 16}}, ar)
	if ar.err != nil || !slices.Equal(out[0], []int64{-3, 1, 2, 1 << 16}) {
		t.Errorf("LayerNorm of a constant row: %v, %v", out[0], ar.err)
	}
}
