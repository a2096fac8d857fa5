package gptref

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// exampleGPTConfig is the built-in example's model (spec.ExampleGPT).
func exampleGPTConfig() gpt.Config {
	return gpt.Config{Context: 128, Dim: 128, Layers: 4, Heads: 4, FF: 512, Bits: 12, Batch: 16, Seed: 1,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 6554, Shift: 16}, Eps: 1,
		LRShift: 39, LR: []gpt.LRPoint{{Step: 0, Value: 0}, {Step: 30, Value: 549755814}, {Step: 600, Value: 54975581}}}
}

// matchTeacher checks that the forward graph over text gives, at every
// row, the logits and exponent of the engine's teacher-forced pass
// (gpt.Generator.Positions, which inference's Check runs).
func matchTeacher(t *testing.T, c gpt.Config, st *gpt.State, text []byte) {
	t.Helper()
	gen, err := gpt.NewGenerator(c, st, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewForwardGraph(c, len(text))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := g.Forward(st, text)
	if err != nil {
		t.Fatalf("config %+v: %v", c, err)
	}
	z, ez := vals["act.logits"].Data, vals["act.logits.exp"].Data
	err = gen.Positions(text, 0, func(r int, want []int64, e int) error {
		if ez[r] != int64(e) {
			return fmt.Errorf("row %d: exponent %d, engine %d", r, ez[r], e)
		}
		for v := range gpt.Vocab {
			if got := z[r*gpt.Vocab+v]; got != want[v] {
				return fmt.Errorf("row %d logit %d: %d, engine %d", r, v, got, want[v])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("config %+v, %d tokens: %v", c, len(text), err)
	}
}

// TestForwardGraphMatchesTeacher: on random configurations, state variants
// and lengths n ≤ T, the forward graph's logits are the engine's
// teacher-forced pass over the same window, row for row.
func TestForwardGraphMatchesTeacher(t *testing.T) {
	t.Parallel()
	for k := range 40 {
		r := rand.New(rand.NewPCG(21, uint64(k)))
		c := gpt.RandomConfig(r)
		v := variants[k%len(variants)]
		t.Run(fmt.Sprintf("%d %s", k, v.name), func(t *testing.T) {
			t.Parallel()
			st := c.Init()
			v.edit(c, st, r)
			matchTeacher(t, c, st, randomBytes(r, 1+r.IntN(c.Context)))
		})
	}
}

// TestForwardGraphExample: the same on the example GPT's shape (context
// 128, width 128, 4 blocks), at a full and a partial window.
func TestForwardGraphExample(t *testing.T) {
	t.Parallel()
	c := exampleGPTConfig()
	st := c.Init()
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{128, 37} {
		matchTeacher(t, c, st, randomBytes(r, n))
	}
}

// TestForwardGraphShape: the sources are the weights (the training
// graph's names, in its order, as state tensors) and the tokens; the
// operators are the training graph's forward ones, ending with the head;
// lengths outside 1 … T and the training entry points are refused.
func TestForwardGraphShape(t *testing.T) {
	t.Parallel()
	c := gpt.RandomConfig(rand.New(rand.NewPCG(5, 6)))
	g, err := NewForwardGraph(c, c.Context)
	if err != nil {
		t.Fatal(err)
	}
	if !g.IsForward() {
		t.Fatal("not a forward graph")
	}
	tg, err := NewGraph(c)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, info := range tg.Tensors() {
		if info.Kind == StateIn && info.StateName == info.Name && !isMoment(info.Name) {
			want = append(want, info.Name)
		}
	}
	want = append(want, "tokens")
	var got []string
	for _, info := range g.Tensors() {
		if info.Producer < 0 {
			got = append(got, info.Name)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sources %v, want %v", got, want)
	}
	ops := g.Ops()
	trainOps := tg.Ops()
	for i, o := range ops {
		if o.Kind != trainOps[i].Kind || o.Name != trainOps[i].Name {
			t.Fatalf("operator %d is %s (%s), the training graph's is %s (%s)", i, o.Name, o.Kind, trainOps[i].Name, trainOps[i].Kind)
		}
	}
	if last := ops[len(ops)-1]; last.Kind != "head" {
		t.Fatalf("last operator %s, want the head", last.Name)
	}
	for _, n := range []int{0, -1, c.Context + 1} {
		if _, err := NewForwardGraph(c, n); !errors.Is(err, ErrBadOpInput) {
			t.Errorf("n = %d: %v, want ErrBadOpInput", n, err)
		}
	}
	st := c.Init()
	if _, err := g.Run(st, make([]byte, c.Context), make([]byte, c.Context)); !errors.Is(err, ErrBadOpInput) {
		t.Errorf("Run on a forward graph: %v", err)
	}
	if _, err := g.Forward(st, make([]byte, c.Context-1+2)); !errors.Is(err, ErrBadOpInput) {
		t.Errorf("Forward with the wrong length: %v", err)
	}
	if _, err := tg.Forward(st, make([]byte, c.Context)); !errors.Is(err, ErrBadOpInput) {
		t.Errorf("Forward on a training graph: %v", err)
	}
}

func isMoment(name string) bool {
	return len(name) > 2 && (name[len(name)-2:] == ".m" || name[len(name)-2:] == ".v")
}

// TestForwardGraphRefusesGPT2: a model of GPT-2 blocks (§22) is served,
// not trained: the training graph's constructor refuses it with ErrGPT2
// rather than build the step of another model, while the forward graph
// accepts it (TestGPT2ForwardGraphMatchesTeacher).
func TestForwardGraphRefusesGPT2(t *testing.T) {
	t.Parallel()
	c := gpt.RandomConfig(rand.New(rand.NewPCG(8, 9)))
	c.GPT2 = true
	if _, err := NewGraph(c); !errors.Is(err, ErrGPT2) {
		t.Errorf("NewGraph: %v", err)
	}
	if _, err := NewForwardGraph(c, 1); err != nil {
		t.Errorf("NewForwardGraph: %v", err)
	}
}
