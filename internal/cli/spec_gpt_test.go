package cli

import (
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

// TestSpecExampleGPT: `beluga spec example --model gpt` prints the
// version-2 example GPT, --steps and --seed apply to it (the learning
// rate's last knot follows --steps), the default model stays the MLP, and
// --dataset or an unknown model is refused.
func TestSpecExampleGPT(t *testing.T) {
	t.Parallel()
	code, out, errs := run(t, "spec", "example", "--model", "gpt")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	s, err := spec.Decode([]byte(out))
	if err != nil {
		t.Fatalf("printed spec does not decode: %v", err)
	}
	want, _ := spec.ExampleGPT().ID()
	if id, _ := s.ID(); id != want {
		t.Fatalf("printed spec is job %s, spec.ExampleGPT is %s", id, want)
	}
	code, out, errs = run(t, "spec", "example", "--model", "gpt", "--steps", "2000", "--seed", "9")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if s, err = spec.Decode([]byte(out)); err != nil {
		t.Fatal(err)
	}
	if lr := s.Optimizer.LR; s.Steps != 2000 || s.Seed != 9 || lr[len(lr)-1].Step != 2000 {
		t.Fatalf("steps %d, seed %d, lr %v", s.Steps, s.Seed, s.Optimizer.LR)
	}
	code, out, _ = run(t, "spec", "example")
	if s, err = spec.Decode([]byte(out)); code != 0 || err != nil || s.IsGPT() {
		t.Fatalf("default example: exit %d, %v", code, err)
	}
	for _, args := range [][]string{{"--model", "gpt", "--dataset", "synthetic"}, {"--model", "rnn"}} {
		code, _, errs := run(t, append([]string{"spec", "example"}, args...)...)
		if code == 0 || !strings.Contains(errs, "model") && !strings.Contains(errs, "dataset") {
			t.Fatalf("%v: exit %d, %q", args, code, errs)
		}
	}
}
