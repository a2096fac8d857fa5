package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/solver/trainer"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/model"
	"github.com/beluga-compute/beluga/spec/model/modeltest"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// tinyGPTFiles writes a tiny GPT spec of steps steps and its corpus to a
// temporary directory and returns the spec, its path and the corpus path.
func tinyGPTFiles(t *testing.T, steps int64) (s *spec.Spec, specPath, corpusPath string) {
	t.Helper()
	dir := t.TempDir()
	corpus := modeltest.Corpus(5, 5000)
	s = modeltest.TinyGPT(corpus, steps)
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	specPath, corpusPath = filepath.Join(dir, "gpt.json"), filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(specPath, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corpusPath, corpus, 0o644); err != nil {
		t.Fatal(err)
	}
	return s, specPath, corpusPath
}

func trainJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	code, out, errs := run(t, append([]string{"train", "--json", "--quiet", "--threads", "1"}, args...)...)
	if code != 0 {
		t.Fatalf("train %v: exit %d: %s", args, code, errs)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	return sum
}

// TestTrainGPTResume: `beluga train --spec gpt.json --data corpus` trains
// a v2 GPT and reports val_loss (bits per byte) and no test accuracy; a
// run interrupted at step 7 and continued with --resume --out reports the
// same final digest and validation loss as one uninterrupted run.
func TestTrainGPTResume(t *testing.T) {
	t.Parallel()
	s, specPath, corpusPath := tinyGPTFiles(t, 12)
	full := trainJSON(t, "--spec", specPath, "--data", corpusPath)
	if _, ok := full["test_accuracy"]; ok {
		t.Fatalf("a GPT run reports test_accuracy: %v", full)
	}
	bpb, ok := full["val_loss"].(float64)
	if !ok || bpb <= 0 || bpb > 9 {
		t.Fatalf("val_loss %v: want bits per byte in (0, 9)", full["val_loss"])
	}
	if full["steps"] != float64(s.Steps) {
		t.Fatalf("steps %v", full["steps"])
	}

	// The first leg, stopped at step 7 as Ctrl-C would stop it.
	out := filepath.Join(t.TempDir(), "run")
	corpus, _ := os.ReadFile(corpusPath)
	d, err := model.NewTextData(s, corpus)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = trainer.Run(ctx, s, d, trainer.Options{OutDir: out, Progress: func(p trainer.Progress) {
		if p.Step == 7 {
			cancel()
		}
	}})
	if !errors.Is(err, trainer.ErrInterrupted) {
		t.Fatalf("first leg: %v", err)
	}
	resumed := trainJSON(t, "--spec", specPath, "--data", corpusPath, "--out", out, "--resume")
	if resumed["resumed_from"] != float64(7) {
		t.Fatalf("resumed from %v, want 7", resumed["resumed_from"])
	}
	for _, k := range []string{"job_id", "final_digest", "val_loss", "steps"} {
		if resumed[k] != full[k] {
			t.Errorf("%s: resumed run %v, uninterrupted %v", k, resumed[k], full[k])
		}
	}
	var saved map[string]any
	if data, err := os.ReadFile(filepath.Join(out, "result.json")); err != nil || json.Unmarshal(data, &saved) != nil || saved["val_loss"] != full["val_loss"] {
		t.Fatalf("result.json: %v, %v", err, saved)
	}
}

// TestGenerate: after training, `beluga generate` is deterministic: the
// same seed gives the same text, another seed other text at temperature
// 1, and at temperature 0 the seed does not matter.
func TestGenerate(t *testing.T) {
	t.Parallel()
	_, specPath, corpusPath := tinyGPTFiles(t, 10)
	dir := filepath.Join(t.TempDir(), "run")
	trainJSON(t, "--spec", specPath, "--data", corpusPath, "--out", dir)
	gen := func(seed, temp string) string {
		t.Helper()
		code, out, errs := run(t, "generate", "--run", dir, "--prompt", "the whale ", "--tokens", "48", "--seed", seed, "--temperature", temp, "--threads", "1")
		if code != 0 {
			t.Fatalf("generate: exit %d: %s", code, errs)
		}
		if !strings.Contains(errs, "at step 10") {
			t.Errorf("stderr %q does not name the checkpoint's step", errs)
		}
		if len(out) != 49 || out[48] != '\n' {
			t.Fatalf("printed %d bytes %q, want 48 and a newline", len(out), out)
		}
		return out
	}
	a, b, c := gen("1", "1"), gen("1", "1.0"), gen("2", "1")
	if a != b {
		t.Fatalf("same seed, different text: %q, %q", a, b)
	}
	if a == c {
		t.Fatalf("seeds 1 and 2 gave the same text %q", a)
	}
	if g1, g2 := gen("1", "0"), gen("2", "0"); g1 != g2 {
		t.Fatalf("greedy text depends on the seed: %q, %q", g1, g2)
	}
}

// TestGenerateErrors: a run that is not a GPT, a directory without
// checkpoints or a spec, and bad flags are refused with a clear message.
func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	_, specPath, _ := tinyGPTFiles(t, 3)
	noCkpt := t.TempDir()
	gptSpec, _ := os.ReadFile(specPath)
	if err := os.WriteFile(filepath.Join(noCkpt, "spec.json"), gptSpec, 0o644); err != nil {
		t.Fatal(err)
	}
	mlpRun := t.TempDir()
	mlp, _ := catalog.Example(catalog.ExampleSynthetic)
	js, _ := mlp.JSON()
	if err := os.WriteFile(filepath.Join(mlpRun, "spec.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--prompt", "x"}, exitUsage, "--run"},
		{[]string{"--run", noCkpt}, exitUsage, "--prompt"},
		{[]string{"--run", noCkpt, "--prompt", "x", "--tokens", "-1"}, exitUsage, "--tokens"},
		{[]string{"--run", noCkpt, "--prompt", "x", "--temperature", "hot"}, exitUsage, "decimal"},
		{[]string{"--run", noCkpt, "--prompt", "x", "--temperature", "-1"}, exitUsage, "decimal"},
		{[]string{"--run", noCkpt, "--prompt", "x", "--temperature", "256.5"}, exitUsage, "256"},
		{[]string{"--run", t.TempDir(), "--prompt", "x"}, 1, "no spec.json"},
		{[]string{"--run", mlpRun, "--prompt", "x"}, 1, "is an MLP"},
		{[]string{"--run", noCkpt, "--prompt", "x"}, 1, "no checkpoint"},
	} {
		code, _, errs := run(t, append([]string{"generate"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errs, c.code, c.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(noCkpt, "store")); err == nil {
		t.Error("generate created a checkpoint store in a directory that had none")
	}
}

func TestParseTemperature(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"0": 0, "1": 65536, "1.0": 65536, "0.5": 32768, ".5": 32768, "0.8": 52429, "2.": 131072,
		"256": 1 << 24, "0.00000762939453125": 1, // exactly half a unit: rounds up
		"0.0000076293945312": 0, "000.25": 16384,
	} {
		got, err := parseTemperature(in)
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "-0.5", "+1", "1e3", "1/2", "0x10", "256.0001", " 1", "nan", strings.Repeat("9", 41)} {
		if got, err := parseTemperature(in); err == nil {
			t.Errorf("%q accepted as %d", in, got)
		}
	}
}

// TestTrainExampleGPT runs `beluga train --example gpt --steps 2` on the
// fortunes corpus (slow: the example model, and fortunes installed).
func TestTrainExampleGPT(t *testing.T) {
	spectest.Slow(t)
	if _, err := os.Stat(dataset.FortunesDir); err != nil {
		t.Skipf("fortunes not installed (apt-get install fortunes): %v", err)
	}
	sum := trainJSON(t, "--example", "gpt", "--steps", "2")
	want := spec.ExampleGPT()
	setSteps(want, 2)
	id, _ := want.ID()
	if sum["job_id"] != id.String() || sum["steps"] != float64(2) {
		t.Fatalf("job %v of %v steps, want %s of 2", sum["job_id"], sum["steps"], id)
	}
	if bpb, ok := sum["val_loss"].(float64); !ok || bpb < 6 || bpb > 9 {
		t.Fatalf("val_loss %v after 2 steps: want about 8 bits per byte", sum["val_loss"])
	}
}
