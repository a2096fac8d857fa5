package spec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

func example(t testing.TB) []byte {
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// hostile lists malformed and hostile edits of a valid spec with the error
// each must produce. Each edit replaces the first occurrence of old.
var hostile = []struct {
	name, old, new string
	want           error
}{
	{"huge layer", `"out": 256`, `"out": 100000000`, spec.ErrInvalid},
	// Strict JSON (SPEC.md §3): one reading per document.
	{"duplicate key", `"steps": `, `"steps": 1, "steps": `, spec.ErrMalformed},
	{"case-folded key", `"steps": `, `"Steps": `, spec.ErrMalformed},
	{"null value", `"confidential": false`, `"confidential": null`, spec.ErrMalformed},
	{"absent required field", `"confidence_ppm": 990000,`, ``, spec.ErrMalformed},
	{"lone surrogate", `"name": "`, `"name": "\ud800`, spec.ErrMalformed},
	{"wide layer overflows", `"out": 256`, `"out": 60000`, spec.ErrOverflow},
	{"zero batch", `"batch_size": 64`, `"batch_size": 0`, spec.ErrInvalid},
	{"huge batch", `"batch_size": 64`, `"batch_size": 4096`, spec.ErrOverflow},
	{"negative batch", `"batch_size": 64`, `"batch_size": -1`, spec.ErrInvalid},
	{"unknown op", `"op": "relu"`, `"op": "conv2d"`, spec.ErrUnsupported},
	{"unknown field", `"seed": 1`, `"seed": 1, "sneaky": true`, spec.ErrMalformed},
	{"float number", `"seed": 1`, `"seed": 1.5`, spec.ErrMalformed},
	{"overflowing int", `"steps": 2812`, `"steps": 99999999999999999999`, spec.ErrMalformed},
	{"too many steps", `"steps": 2812`, `"steps": 9999999999999`, spec.ErrInvalid},
	{"wide weights", `"weight_bits": 11`, `"weight_bits": 15`, spec.ErrInvalid},
	{"overflow format", `"act_bits": 10`, `"act_bits": 15`, spec.ErrOverflow},
	{"negative shift", `"logit_frac": 10`, `"logit_frac": 30`, spec.ErrInvalid},
	{"zero grad bits", `"grad_bits": 11`, `"grad_bits": 0`, spec.ErrInvalid},
	{"momentum ≥ 1", `"num": 29491`, `"num": 32768`, spec.ErrInvalid},
	{"bad lr start", `"step": 0`, `"step": 5`, spec.ErrInvalid},
	{"bad root", `"root": "6046`, `"root": "XX46`, spec.ErrInvalid},
	{"wrong classes", `"out": 10`, `"out": 11`, spec.ErrInvalid},
	{"relu first", `"op": "linear",`, `"op": "relu", "out": 0}, {"op": "linear",`, spec.ErrInvalid},
	{"bad name", `"name": "fashion-mnist-mlp"`, `"name": "a\u0000b"`, spec.ErrInvalid},
	{"version 3", `"version": 1`, `"version": 3`, spec.ErrUnsupported},
	{"unknown source", `"source": "fashion-mnist"`, `"source": "http"`, spec.ErrUnsupported},
	{"zero interval", `"digest_interval": 1`, `"digest_interval": 0`, spec.ErrInvalid},
	{"interval mismatch", `"digest_interval": 1`, `"digest_interval": 3`, spec.ErrInvalid},
	{"confidence 100%", `"confidence_ppm": 990000`, `"confidence_ppm": 1000000`, spec.ErrInvalid},
	{"trailing data", `"version": 1`, `"version": 1}{"x": 1`, spec.ErrMalformed},
	{"not json", `{`, `[`, spec.ErrMalformed},
}

func TestHostileSpecs(t *testing.T) {
	base := string(example(t))
	if _, err := spec.Decode([]byte(base)); err != nil {
		t.Fatalf("base spec: %v", err)
	}
	for _, c := range hostile {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.old) {
				t.Fatalf("base spec lacks %q", c.old)
			}
			_, err := spec.Decode([]byte(strings.Replace(base, c.old, c.new, 1)))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestOversizedInput(t *testing.T) {
	big := make([]byte, spec.MaxSpecBytes+1)
	if _, err := spec.Decode(big); !errors.Is(err, spec.ErrMalformed) {
		t.Fatalf("got %v", err)
	}
}

func TestCanonicalIsStable(t *testing.T) {
	s, err := spec.Decode(example(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(string(c), " \n\t") {
		t.Fatal("canonical form has whitespace")
	}
	if !strings.HasPrefix(string(c), `{"audit":{"cheat_fraction_ppm":10000,"confidence_ppm":990000,"confidential":false},"batch_size":64,`) {
		t.Fatalf("keys not sorted: %.120s", c)
	}
	// The canonical form decodes to the same job.
	back, err := spec.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.ID()
	b, _ := back.ID()
	if a != b {
		t.Fatal("canonical form does not round-trip")
	}
	// Any change of meaning changes the ID.
	back.Seed++
	if c, _ := back.ID(); c == a {
		t.Fatal("seed not bound by the job ID")
	}
}

func TestLRSchedule(t *testing.T) {
	o := spec.Optimizer{LR: []spec.LRPoint{{Step: 0, Value: 100}, {Step: 10, Value: 0}, {Step: 20, Value: 50}}}
	for _, c := range []struct{ t, want int64 }{{0, 100}, {1, 90}, {9, 10}, {10, 0}, {15, 25}, {19, 45}, {20, 50}, {1000, 50}} {
		if got := o.LRAt(c.t); got != c.want {
			t.Errorf("LRAt(%d) = %d, want %d", c.t, got, c.want)
		}
	}
	one := spec.Optimizer{LR: []spec.LRPoint{{Step: 0, Value: 7}}}
	if one.LRAt(12345) != 7 {
		t.Error("constant schedule")
	}
	// Extreme spans must not overflow.
	ext := spec.Optimizer{LR: []spec.LRPoint{{Step: 0, Value: 1<<31 - 1}, {Step: spec.MaxSteps, Value: 0}}}
	if got := ext.LRAt(spec.MaxSteps - 1); got != 1 {
		t.Errorf("extreme schedule: %d", got)
	}
}

func FuzzDecode(f *testing.F) {
	base := example(f)
	f.Add(base)
	for _, c := range hostile {
		f.Add([]byte(strings.Replace(string(base), c.old, c.new, 1)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := spec.Decode(data)
		if err != nil {
			return
		}
		// Anything accepted is fully usable: a plan, a canonical form that
		// decodes to the same job, bounded state.
		c, err := s.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		back, err := spec.Decode(c)
		if err != nil {
			t.Fatalf("canonical form rejected: %v", err)
		}
		a, _ := s.ID()
		b, _ := back.ID()
		if a != b {
			t.Fatal("canonical form changes the job ID")
		}
		if p := s.Plan(); p.Params > spec.MaxParams {
			t.Fatal("accepted an oversized model")
		}
	})
}

// TestDigestCountBounded: a spec whose trace would exceed what one message
// carries is refused at validation with the interval that would fit, and
// the count is computed without enumerating steps (a 2^40-step job).
func TestDigestCountBounded(t *testing.T) {
	t.Parallel()
	s, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		steps, interval int64
		ok              bool
	}{
		{spec.MaxDigests - 1, 1, true},
		{spec.MaxDigests, 1, false},
		{100_000, 1, false},
		{100_000, 2, true},
		{spec.MaxSteps, 1, false},
		{spec.MaxSteps, spec.MaxSteps / (spec.MaxDigests - 1), false},
		{spec.MaxSteps, (spec.MaxSteps + spec.MaxDigests - 2) / (spec.MaxDigests - 1), true},
	} {
		s.Steps, s.DigestInterval, s.CheckpointInterval = c.steps, c.interval, c.interval
		err = s.Validate()
		if (err == nil) != c.ok {
			t.Errorf("steps %d interval %d: %v (digests %d)", c.steps, c.interval, err, s.Digests())
		}
		if err != nil && !errors.Is(err, spec.ErrInvalid) {
			t.Errorf("steps %d interval %d: %v is not spec.ErrInvalid", c.steps, c.interval, err)
		}
	}
	s.Steps, s.DigestInterval, s.CheckpointInterval = spec.MaxDigests, spec.MaxDigests, spec.MaxDigests
	s.Audit.Confidential = true
	if err := s.Validate(); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("confidential job with %d zk roots accepted: %v", s.Steps+1, err)
	}
}
