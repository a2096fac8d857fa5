package gptref

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/prng"
	"github.com/beluga-compute/beluga/spec/spectest"
)

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

// variants of the initial state, to reach the spec's edge cases: the
// unclipped update (a zero head leaves only the head's small gradient),
// zero rows (ρ = 0) and zero tensors, tiny activations (s = 0, small ρ),
// and weights anywhere in int32 (saturating residual adds).
var variants = []struct {
	name string
	edit func(c gpt.Config, st *gpt.State, r *rand.Rand)
}{
	{"init", func(gpt.Config, *gpt.State, *rand.Rand) {}},
	{"zero head", func(c gpt.Config, st *gpt.State, _ *rand.Rand) { clear(st.W[len(st.W)-1]) }},
	{"zero embeddings", func(c gpt.Config, st *gpt.State, _ *rand.Rand) { clear(st.W[0]); clear(st.W[1]) }},
	{"tiny embeddings", func(c gpt.Config, st *gpt.State, _ *rand.Rand) {
		for _, w := range st.W[:2] {
			for i := range w {
				w[i] >>= 14
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
}

// TestMatchesEngine: for random small configurations (and variants of
// their initial state), 2–3 steps of the reference give the engine's state
// bit for bit, its loss and its gradient norm.
func TestMatchesEngine(t *testing.T) {
	t.Parallel()
	matchEngine(t, 13, 25)
}

// TestMatchesEngineSweep is TestMatchesEngine on 3000 configurations.
func TestMatchesEngineSweep(t *testing.T) {
	spectest.Slow(t)
	t.Parallel()
	matchEngine(t, 99, 3000)
}

func matchEngine(t *testing.T, seed uint64, configs int) {
	var unclipped, clipped atomic.Int32
	t.Cleanup(func() {
		t.Logf("%d unclipped and %d clipped updates", unclipped.Load(), clipped.Load())
		if !t.Failed() && (unclipped.Load() == 0 || clipped.Load() == 0) {
			t.Errorf("both paths of §20.14 step 2 must be covered")
		}
	})
	for k := range configs {
		r := rand.New(rand.NewPCG(seed, uint64(k)))
		c := gpt.RandomConfig(r)
		v := variants[k%len(variants)]
		t.Run(fmt.Sprintf("%d %s", k, v.name), func(t *testing.T) {
			t.Parallel()
			tr, err := gpt.NewTrainer(c, kernel.Generic(), 1)
			if err != nil {
				t.Fatal(err)
			}
			g, err := NewGraph(c)
			if err != nil {
				t.Fatal(err)
			}
			ref := c.Init()
			v.edit(c, ref, r)
			eng := ref.Clone()
			steps := 2 + r.IntN(2)
			for s := range steps {
				tokens, targets := randomBytes(r, c.Tokens()), randomBytes(r, c.Tokens())
				vals, err := g.Run(ref, tokens, targets)
				if err != nil {
					t.Fatalf("config %+v step %d: %v", c, s, err)
				}
				res, err := tr.Step(eng, gpt.Batch{Tokens: tokens, Targets: targets})
				if err != nil {
					t.Fatal(err)
				}
				if loss := vals["loss.sum"].Data[0]; loss != res.LossQ16 {
					t.Errorf("config %+v step %d: loss %d, engine %d", c, s, loss, res.LossQ16)
				}
				if nu := vals["adamw.norm"].Data[0]; nu != res.NormQ15 {
					t.Errorf("config %+v step %d: gradient norm %d, engine %d", c, s, nu, res.NormQ15)
				} else if nu > 1<<15 {
					clipped.Add(1)
				} else {
					unclipped.Add(1)
				}
				next := g.nextState(vals, ref.Step)
				if d := stateDiff(c, next, eng); d != "" {
					t.Fatalf("config %+v step %d: %s", c, s, d)
				}
				ref = next
			}
		})
	}
}

// TestStep: Step is Run plus the state's collection, and it does not
// modify its input.
func TestStep(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	c := gpt.RandomConfig(r)
	st := c.Init()
	before := st.Clone()
	tokens, targets := randomBytes(r, c.Tokens()), randomBytes(r, c.Tokens())
	next, loss, err := Step(c, st, tokens, targets)
	if err != nil {
		t.Fatal(err)
	}
	if d := stateDiff(c, st, before); d != "" {
		t.Fatalf("Step changed its input: %s", d)
	}
	eng := st.Clone()
	tr, _ := gpt.NewTrainer(c, kernel.Generic(), 1)
	res, err := tr.Step(eng, gpt.Batch{Tokens: tokens, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	if d := stateDiff(c, next, eng); d != "" || loss != res.LossQ16 {
		t.Fatalf("Step: %s, loss %d vs %d", d, loss, res.LossQ16)
	}
}

// stateDiff describes the first difference of two states, "" if none.
func stateDiff(c gpt.Config, a, b *gpt.State) string {
	if a.Step != b.Step {
		return fmt.Sprintf("step count %d, engine %d", a.Step, b.Step)
	}
	for p, info := range c.Params() {
		if i := firstDiff(a.W[p], b.W[p]); i >= 0 {
			return fmt.Sprintf("%s[%d] = %d, engine %d", info.Name, i, a.W[p][i], b.W[p][i])
		}
		if i := firstDiff(a.M[p], b.M[p]); i >= 0 {
			return fmt.Sprintf("%s.m[%d] = %d, engine %d", info.Name, i, a.M[p][i], b.M[p][i])
		}
		if i := firstDiff(a.V[p], b.V[p]); i >= 0 {
			return fmt.Sprintf("%s.v[%d] = %d, engine %d", info.Name, i, a.V[p][i], b.V[p][i])
		}
	}
	return ""
}

func firstDiff[T comparable](a, b []T) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	if len(b) > len(a) {
		return len(a)
	}
	return -1
}

// TestLearningRate: LR(t) of §8.6 against the engine's LRAt on random
// knots; the reference is exact where (v_{i+1} − v_i)(t − s_i) leaves
// int64 too.
func TestLearningRate(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		c := gpt.RandomConfig(r)
		for t0 := int64(0); t0 < 12; t0++ {
			if got, want := learningRate(c.LR, t0), c.LRAt(t0); got != want {
				t.Fatalf("knots %v: LR(%d) = %d, engine %d", c.LR, t0, got, want)
			}
		}
	}
	// The largest knot gap and value step: ⌊(2^30 − 1)·2^39 / 2^40⌋.
	knots := []gpt.LRPoint{{Step: 0, Value: 0}, {Step: 1 << 40, Value: 1<<30 - 1}}
	if got := learningRate(knots, 1<<39); got != (1<<30-1)/2 {
		t.Errorf("LR(2^39) = %d, want %d", got, (1<<30-1)/2)
	}
}

// TestInit: c.Init() is the initial state of §20.10, read from the text:
// weight i of parameter p is (r mod (2λ+1)) − λ with
// r = Derive(seed, "init.gpt", p, 0).At(i), moments 0.
func TestInit(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for range 5 {
		c := gpt.RandomConfig(r)
		st := c.Init()
		if st.Step != 0 {
			t.Fatalf("Init step %d", st.Step)
		}
		for p, info := range c.Params() {
			lambda := uint64(isqrt(3 * (1 << 48) / 2500))
			if !info.Embedding {
				lambda = uint64(isqrt((1 << 48) / int64(info.In)))
			}
			s := prng.Derive(c.Seed, "init.gpt", uint64(p), 0)
			for i, w := range st.W[p] {
				if want := int64(s.At(uint64(i))%(2*lambda+1)) - int64(lambda); int64(w) != want {
					t.Fatalf("%s[%d] = %d, want %d", info.Name, i, w, want)
				}
			}
			if slices.ContainsFunc(st.M[p], func(v int32) bool { return v != 0 }) || slices.ContainsFunc(st.V[p], func(v int64) bool { return v != 0 }) {
				t.Fatalf("%s: moments not 0", info.Name)
			}
		}
	}
	// SPEC.md §20.10 states the embedding's λ = Isqrt(⌊3·2^48 / 2500⌋) as
	// 581,130; the formula gives 581,179 (581,130² ≈ 3.377121·10^11 is below
	// ⌊3·2^48 / 2500⌋ = 337,769,972,052 by far more than 2·581,130). The
	// formula is what the state uses.
	if got := isqrt(3 * (1 << 48) / 2500); got != 581179 {
		t.Fatalf("λ of an embedding = %d, want 581,179", got)
	}
}

// TestGraphWellFormed: every operator input is a source or an output of an
// earlier operator, every tensor has one producer, every intermediate is
// read later (but the reported loss), every source is read, and the state
// outputs mirror the state inputs.
func TestGraphWellFormed(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	for range 10 {
		c := gpt.RandomConfig(r)
		g, err := NewGraph(c)
		if err != nil {
			t.Fatal(err)
		}
		tensors := g.Tensors()
		produced := map[string]int{}
		read := map[string]bool{}
		for _, info := range tensors {
			if info.Producer < 0 {
				produced[info.Name] = -1
			}
		}
		for i, o := range g.Ops() {
			for _, name := range o.Inputs {
				p, ok := produced[name]
				if !ok {
					t.Fatalf("%s reads %s before any operator outputs it", o.Name, name)
				}
				if p >= i {
					t.Fatalf("%s reads %s of a later operator", o.Name, name)
				}
				read[name] = true
			}
			for _, name := range o.Outputs {
				if _, dup := produced[name]; dup {
					t.Fatalf("%s outputs %s a second time", o.Name, name)
				}
				info, _ := g.Tensor(name)
				if info.Producer != i {
					t.Fatalf("%s: producer %d, want %d", name, info.Producer, i)
				}
				produced[name] = i
			}
			if o.Work <= 0 {
				t.Fatalf("%s has no work", o.Name)
			}
		}
		states := 0
		for _, info := range tensors {
			if _, ok := produced[info.Name]; !ok {
				t.Fatalf("%s is never computed", info.Name)
			}
			switch info.Kind {
			case StateIn, BatchIn:
				if !read[info.Name] {
					t.Errorf("source %s is never read", info.Name)
				}
				if info.Kind == StateIn {
					states++
					if _, ok := g.Tensor("next." + info.Name); !ok {
						t.Errorf("state %s has no next value", info.Name)
					}
				}
			case Intermediate:
				if !read[info.Name] && info.Name != "loss.sum" {
					t.Errorf("intermediate %s is never read", info.Name)
				}
			case StateOut:
				states--
			}
		}
		if states != 0 || len(g.params)*3 != countKind(tensors, StateIn) {
			t.Errorf("%d more state inputs than outputs", states)
		}
	}
}

func countKind(ts []TensorInfo, k TensorKind) int {
	n := 0
	for _, info := range ts {
		if info.Kind == k {
			n++
		}
	}
	return n
}

// opInputs returns the inputs of operator i from a run's values.
func opInputs(o Op, vals map[string]Tensor) map[string]Tensor {
	in := map[string]Tensor{}
	for _, name := range o.Inputs {
		v := vals[name]
		in[name] = Tensor{Shape: slices.Clone(v.Shape), Data: slices.Clone(v.Data)}
	}
	return in
}

// TestRunOpRefusesBadInputs: every operator refuses a missing or extra
// input, a wrong shape or length, an element outside its range, a
// negative step and an unknown index, with ErrBadOpInput; on valid inputs
// it recomputes exactly the run's outputs.
func TestRunOpRefusesBadInputs(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 10))
	c := gpt.RandomConfig(r)
	g, err := NewGraph(c)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := g.Run(c.Init(), randomBytes(r, c.Tokens()), randomBytes(r, c.Tokens()))
	if err != nil {
		t.Fatal(err)
	}
	bad := func(what string, i int, in map[string]Tensor, step int64) {
		t.Helper()
		if _, err := g.RunOp(i, in, step); !errors.Is(err, ErrBadOpInput) {
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
		bad("negative step", i, opInputs(o, vals), -1)
		in := opInputs(o, vals)
		delete(in, o.Inputs[0])
		bad("missing input", i, in, 0)
		in = opInputs(o, vals)
		in["bogus"] = Tensor{Shape: []int{1}, Data: []int64{0}}
		bad("extra input", i, in, 0)
		for _, name := range o.Inputs {
			info, _ := g.Tensor(name)
			in = opInputs(o, vals)
			v := in[name]
			v.Shape = append(v.Shape, 1)
			in[name] = v
			bad(name+" rank", i, in, 0)
			in = opInputs(o, vals)
			v = in[name]
			v.Data = v.Data[:len(v.Data)-1]
			in[name] = v
			bad(name+" length", i, in, 0)
			if info.Max < maxI64 {
				in = opInputs(o, vals)
				in[name].Data[len(in[name].Data)-1] = info.Max + 1
				bad(name+" above range", i, in, 0)
			}
			if info.Min > -maxI64 {
				in = opInputs(o, vals)
				in[name].Data[0] = info.Min - 1
				bad(name+" below range", i, in, 0)
			}
		}
	}
	bad("index -1", -1, nil, 0)
	bad("index past the end", len(g.Ops()), nil, 0)
	// The causal mask: attention weights above the diagonal must be 0.
	for i, o := range g.Ops() {
		if o.Name == "0.attn.bwd" && c.Context > 1 {
			in := opInputs(o, vals)
			in["act.0.attn.P"].Data[1] = 1 // row 0, column 1
			bad("non-causal P", i, in, 0)
		}
	}
}

// TestRunOpHostileInputs: every operator, on random inputs inside their
// ranges (extremes included), returns outputs or an error wrapping
// ErrBadOpInput or ErrOverflow, and never panics.
func TestRunOpHostileInputs(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	for range 4 {
		c := gpt.RandomConfig(r)
		g, err := NewGraph(c)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range g.Ops() {
			for trial := range 6 {
				in := map[string]Tensor{}
				for _, name := range o.Inputs {
					info, _ := g.Tensor(name)
					v := Tensor{Shape: slices.Clone(info.Shape), Data: make([]int64, info.Len())}
					for k := range v.Data {
						v.Data[k] = hostile(r, info, trial)
					}
					in[name] = v
				}
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("%s panicked: %v", o.Name, p)
						}
					}()
					if _, err := g.RunOp(i, in, r.Int64N(1<<41)); err != nil && !errors.Is(err, ErrBadOpInput) && !errors.Is(err, ErrOverflow) {
						t.Fatalf("%s: %v", o.Name, err)
					}
				}()
			}
		}
	}
}

// hostile draws a value in info's range: an extreme, or uniform.
func hostile(r *rand.Rand, info TensorInfo, trial int) int64 {
	switch {
	case trial == 0:
		return info.Max
	case trial == 1:
		return info.Min
	case r.IntN(4) == 0:
		return []int64{info.Min, info.Max, max(info.Min, min(info.Max, 0))}[r.IntN(3)]
	}
	span := uint64(info.Max - info.Min) // < 2^64
	if span == 1<<64-1 {
		return int64(r.Uint64()) | 1 // avoid MinInt64, outside every range
	}
	return info.Min + int64(r.Uint64N(span+1))
}

// TestRoundDivExact: RoundDiv of §20.9 is exact where 2a + d leaves int64,
// as at the clamp of §20.14 step 1 (a = ±2^62).
func TestRoundDivExact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ a, d, want int64 }{
		{5, 2, 3}, {-5, 2, -2}, {7, 3, 2}, {-7, 3, -2}, {1, 2, 1}, {-1, 2, 0},
		{1 << 62, 1, 1 << 62}, {1 << 62, 3, (1<<62 + 1) / 3}, {-1 << 62, 3, -(1<<62 + 1) / 3},
		{maxI64, maxI64, 1}, {-maxI64, 2, -(maxI64 - 1) / 2},
	} {
		if got := roundDiv(c.a, c.d); got != c.want {
			t.Errorf("RoundDiv(%d, %d) = %d, want %d", c.a, c.d, got, c.want)
		}
	}
	for _, c := range []struct{ x, s, want int64 }{
		{5, 1, 3}, {-5, 1, -2}, {-6, 2, -1}, {maxI64, 63, 1}, {-maxI64, 63, -1}, {1 << 61, 63, 0}, {maxI64, 64, 0}, {-maxI64, 200, 0},
	} {
		if got := roundShift(c.x, c.s); got != c.want {
			t.Errorf("RoundShift(%d, %d) = %d, want %d", c.x, c.s, got, c.want)
		}
	}
}

// FuzzRunOp: any operator of a small configuration, on inputs drawn in
// their ranges from the fuzzer's seed, returns outputs or an error, never
// a panic.
func FuzzRunOp(f *testing.F) {
	for _, s := range []struct {
		seed  uint64
		op    uint16
		trial uint8
	}{{1, 0, 0}, {2, 5, 1}, {3, 17, 2}, {4, 40, 3}, {5, 80, 9}} {
		f.Add(s.seed, s.op, s.trial)
	}
	f.Fuzz(func(t *testing.T, seed uint64, op uint16, trial uint8) {
		r := rand.New(rand.NewPCG(seed, 0))
		c := gpt.RandomConfig(r)
		g, err := NewGraph(c)
		if err != nil {
			t.Fatal(err)
		}
		ops := g.Ops()
		i := int(op) % len(ops)
		in := map[string]Tensor{}
		for _, name := range ops[i].Inputs {
			info, _ := g.Tensor(name)
			v := Tensor{Shape: slices.Clone(info.Shape), Data: make([]int64, info.Len())}
			for k := range v.Data {
				v.Data[k] = hostile(r, info, int(trial))
			}
			in[name] = v
		}
		if _, err := g.RunOp(i, in, r.Int64N(1<<41)); err != nil && !errors.Is(err, ErrBadOpInput) && !errors.Is(err, ErrOverflow) {
			t.Fatalf("%s: %v", ops[i].Name, err)
		}
	})
}

// TestOpKinds: every operator names its formula, and operators of one kind
// share their inputs' and outputs' roles (the same counts), which is what a
// backend that implements the graph kind by kind relies on.
func TestOpKinds(t *testing.T) {
	t.Parallel()
	g, err := NewGraph(gpt.RandomConfig(rand.New(rand.NewPCG(7, 7))))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"quantize": true, "embed": true, "rmsnorm": true, "qkv": true, "attn": true, "residual": true,
		"up": true, "silu": true, "head": true, "loss": true, "linear.bwd": true, "silu.bwd": true, "rmsnorm.bwd": true,
		"add": true, "attn.bwd": true, "qkv.bwd": true, "embed.bwd": true, "adamw.norm": true, "adamw": true}
	arity := map[string][2]int{}
	for _, o := range g.Ops() {
		if !want[o.Kind] {
			t.Fatalf("operator %s has kind %q, not one of the documented kinds", o.Name, o.Kind)
		}
		a := [2]int{len(o.Inputs), len(o.Outputs)}
		if o.Kind == "adamw.norm" {
			a[0] = 0 // one gradient pair per parameter
		}
		if prev, ok := arity[o.Kind]; ok && prev != a {
			t.Fatalf("operator %s: %v inputs/outputs, another %s has %v", o.Name, a, o.Kind, prev)
		}
		arity[o.Kind] = a
	}
	if len(arity) != len(want) {
		t.Fatalf("the graph has %d kinds, want all %d", len(arity), len(want))
	}
}
