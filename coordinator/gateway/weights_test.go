package gateway

import (
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec/model/modeltest"
)

// TestCheckModelSpec: a published model's spec must be its job's, a GPT,
// with the model's step and context; anything else is refused by what is
// wrong, and the spec is stored canonical.
func TestCheckModelSpec(t *testing.T) {
	t.Parallel()
	s := modeltest.TinyGPT(modeltest.Corpus(1, 2000), 4)
	job, _ := s.ID()
	canon, _ := s.Canonical()
	cfg, _ := s.GPT()
	good := Model{Job: job.String(), Step: 4, Context: cfg.Context}
	if got, err := checkModelSpec(&good, canon); err != nil || string(got) != string(canon) {
		t.Fatalf("good spec: %v", err)
	}
	other := modeltest.TinyGPT(modeltest.Corpus(1, 2000), 5)
	otherCanon, _ := other.Canonical()
	for name, c := range map[string]struct {
		m    Model
		raw  []byte
		want string
	}{
		"another job's": {good, otherCanon, "the model names job"},
		"not JSON":      {good, []byte("{"), "spec:"},
		"step past end": {Model{Job: good.Job, Step: 9, Context: cfg.Context}, canon, "step 9 outside"},
		"other context": {Model{Job: good.Job, Step: 4, Context: cfg.Context + 1}, canon, "context_length"},
		"job not named": {Model{Step: 4, Context: cfg.Context}, canon, "the model names job"},
	} {
		if _, err := checkModelSpec(&c.m, c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
