package model_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/engine"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

func tiny(t *testing.T, steps int64) (*spec.Spec, *model.Data, []byte) {
	t.Helper()
	corpus := modeltest.Corpus(1, 6000)
	s := modeltest.TinyGPT(corpus, steps)
	d, err := model.NewTextData(s, corpus)
	if err != nil {
		t.Fatal(err)
	}
	return s, d, corpus
}

// TestGPTRunnerMatchesTrainer: the GPT runner takes the same steps as
// spec/gpt driven by hand on the spec's windows, its State() after every
// step is spec.GPTTensors of that state (the int64 second moments
// included, which GPTTensors copies rather than shares), its loss is the
// step's mean per position, and Eval is the summed loss of the
// validation windows.
func TestGPTRunnerMatchesTrainer(t *testing.T) {
	t.Parallel()
	s, d, _ := tiny(t, 6)
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	st, err := model.InitState(s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := model.NewRunner(s, d, st, model.WithKernel(kernel.Generic()), model.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := gpt.NewTrainer(c, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	split, _ := s.TextSplit()
	ref := c.Init()
	for step := range s.Steps {
		b, err := model.TextBatch(d.Text, c, dataset.TrainWindows(c.Seed, step, c.Batch, c.Context, split.Train, nil))
		if err != nil {
			t.Fatal(err)
		}
		want, err := tr.Step(ref, b)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := r.Step()
		if err != nil {
			t.Fatal(err)
		}
		if loss != want.LossQ16/int64(c.Tokens()) {
			t.Fatalf("step %d: loss %d, want %d", step, loss, want.LossQ16/int64(c.Tokens()))
		}
		if r.State() != st || !reflect.DeepEqual(r.State(), spec.GPTTensors(c, ref)) {
			t.Fatalf("after step %d State() is not the trainer's state", step)
		}
	}
	var nonzeroV bool
	for _, v := range ref.V {
		for _, x := range v {
			nonzeroV = nonzeroV || x != 0
		}
	}
	if !nonzeroV {
		t.Fatal("second moments still zero: the test does not test their sync")
	}
	ev, err := r.Eval()
	if err != nil {
		t.Fatal(err)
	}
	val := dataset.ValWindows(split.Train, split.Val, c.Context, s.Data.Text.EvalWindows)
	sum, n, err := model.ValLoss(tr, ref, d.Text, val)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ValLossQ16 != sum || ev.ValPositions != n || n != int64(len(val)*c.Context) || ev.TestTotal != 0 {
		t.Fatalf("eval %+v, want loss %d over %d positions", ev, sum, n)
	}
}

// TestGPTRunnerSeesStateEdits: a change to State()'s int64 tensor between
// steps (as a fault injector makes) is what the next step trains on.
func TestGPTRunnerSeesStateEdits(t *testing.T) {
	t.Parallel()
	s, d, _ := tiny(t, 4)
	run := func(edit bool) *spec.State {
		st, _ := model.InitState(s)
		r, err := model.NewRunner(s, d, st, model.WithThreads(1))
		if err != nil {
			t.Fatal(err)
		}
		for range s.Steps {
			if _, err := r.Step(); err != nil {
				t.Fatal(err)
			}
			if edit && r.State().Step == 2 {
				// The head's second moment: every head weight has a
				// gradient at every step.
				ts := r.State().Tensors
				v := &ts[len(ts)-1]
				v.SetInt64(0, v.Int64At(0)+1<<40)
			}
		}
		return r.State()
	}
	a, b := run(false), run(true)
	head := len(a.Tensors) - 3
	if a.Tensors[head].Data[0] == b.Tensors[head].Data[0] {
		t.Fatal("an edited second moment did not change the later steps")
	}
}

// TestMLPRunnerMatchesEngine: the MLP runner is the engine: same state
// after the same steps, loss the mean per sample, Eval the test accuracy.
func TestMLPRunnerMatchesEngine(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleSynthetic)
	if err != nil {
		t.Fatal(err)
	}
	d, err := model.LoadData(s, model.DataOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := model.InitState(s)
	r, err := model.NewRunner(s, d, st, model.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(s, s.Init(), engine.WithThreads(1))
	if err != nil {
		t.Fatal(err)
	}
	b := engine.NewBatcher(s, d.Train)
	for step := range int64(20) {
		want, err := eng.Step(b.Batch(step))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Step()
		if err != nil {
			t.Fatal(err)
		}
		if got != want/int64(s.BatchSize) {
			t.Fatalf("step %d: loss %d, want %d", step, got, want/int64(s.BatchSize))
		}
	}
	if !reflect.DeepEqual(r.State(), eng.State()) {
		t.Fatal("MLP runner state differs from the engine's")
	}
	ev, err := r.Eval()
	if err != nil {
		t.Fatal(err)
	}
	if ev.TestTotal != d.Test.Len() || ev.TestCorrect <= 0 || ev.ValPositions != 0 {
		t.Fatalf("eval %+v", ev)
	}
}

// TestStateTemplate: the template has InitState's tensors, zeroed, for
// both kinds.
func TestStateTemplate(t *testing.T) {
	t.Parallel()
	mlp, _ := catalog.Example(catalog.ExampleSynthetic)
	g, _, _ := tiny(t, 3)
	for _, s := range []*spec.Spec{mlp, g} {
		init, err := model.InitState(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := model.StateTemplate(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(tmpl.Tensors) != len(init.Tensors) {
			t.Fatalf("%s: %d tensors, want %d", s.Name, len(tmpl.Tensors), len(init.Tensors))
		}
		for i, x := range tmpl.Tensors {
			y := init.Tensors[i]
			if x.Name != y.Name || !reflect.DeepEqual(x.Shape, y.Shape) || x.DType != y.DType || len(x.Data) != len(y.Data) {
				t.Fatalf("%s: tensor %d is %q %v %s, want %q %v %s", s.Name, i, x.Name, x.Shape, x.DType, y.Name, y.Shape, y.DType)
			}
		}
	}
	bad := *g
	bad.Model.Layers = append([]spec.Layer(nil), g.Model.Layers...)
	bad.Model.Layers[1].Heads = 3 // does not divide the width
	if _, err := model.StateTemplate(&bad); err == nil {
		t.Fatal("template of an invalid GPT")
	}
	if _, err := model.InitState(&bad); err == nil {
		t.Fatal("initial state of an invalid GPT")
	}
}

// TestLoadTextData: a "text" source is read from the file option and
// checked against size and root; fortunes come from their directory.
func TestLoadTextData(t *testing.T) {
	t.Parallel()
	s, _, corpus := tiny(t, 3)
	dir := t.TempDir()
	good := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(good, corpus, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := model.LoadData(s, model.DataOptions{TextFile: good})
	if err != nil {
		t.Fatal(err)
	}
	if d.Text.Len() != len(corpus) || d.Train != nil {
		t.Fatalf("loaded %d bytes", d.Text.Len())
	}
	flipped := append([]byte(nil), corpus...)
	flipped[100] ^= 1
	short := corpus[:len(corpus)-1]
	for name, b := range map[string][]byte{"flipped": flipped, "short": short, "long": append(append([]byte(nil), corpus...), 'x')} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := model.LoadData(s, model.DataOptions{TextFile: p}); !errors.Is(err, model.ErrDataMismatch) {
			t.Errorf("%s corpus: %v, want a data mismatch", name, err)
		}
	}
	if _, err := model.LoadData(s, model.DataOptions{}); err == nil {
		t.Error("a text source without a file loaded")
	}
	if _, err := model.LoadData(s, model.DataOptions{TextFile: filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// Data of the wrong kind is refused before a runner is built.
	mlp, _ := catalog.Example(catalog.ExampleSynthetic)
	st, _ := model.InitState(s)
	if _, err := model.NewRunner(s, &model.Data{}, st); !errors.Is(err, model.ErrDataMismatch) {
		t.Errorf("GPT runner without text: %v", err)
	}
	if _, err := model.NewTextData(mlp, corpus); !errors.Is(err, spec.ErrUnsupported) {
		t.Errorf("text data for an MLP: %v", err)
	}
	// The state must be the spec's.
	if _, err := model.NewRunner(s, d, mlp.Init()); err == nil {
		t.Error("GPT runner on an MLP state")
	}

	f := spec.ExampleGPT()
	fd, err := model.LoadData(f, model.DataOptions{})
	if _, statErr := os.Stat(dataset.FortunesDir); statErr != nil {
		if err == nil {
			t.Error("fortunes loaded without their directory")
		}
		return
	}
	if err != nil || fd.Text.Len() != dataset.FortunesBytes {
		t.Fatalf("fortunes: %v", err)
	}
}
