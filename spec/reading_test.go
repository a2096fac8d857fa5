package spec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

// TestReadingAsSpecified pins the reading rules SPEC.md §3 states, each
// as an edit of a valid spec that must be accepted (with the same job ID)
// or refused as malformed.
func TestReadingAsSpecified(t *testing.T) {
	t.Parallel()
	good := string(example(t))
	want, err := spec.Decode([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := want.ID()
	const (
		refused = iota
		sameJob // accepted, and reads as the unedited spec
		other   // accepted, and reads as another spec
	)
	for _, c := range []struct {
		name, old, new string
		want           int
	}{
		{"whitespace around the document", "", "", sameJob},
		{"escaped string", `"name": "fashion-mnist-mlp"`, `"name": "\u0066ashion-mnist-mlp"`, sameJob},
		{"escaped root digit", `"root": "6046`, `"root": "\u0036046`, sameJob},
		{"escaped key", `"name":`, `"n\u0061me":`, sameJob},
		{"escape decoded before the name rule", `"name": "fashion-mnist-mlp"`, `"name": "fashion\/mnist"`, other},
		{"escaped quote refused by the name rule", `"name": "fashion-mnist-mlp"`, `"name": "fashion\"mlp"`, refused},
		{"relu out 0", `"op": "relu"`, `"op": "relu", "out": 0`, sameJob},
		{"minus zero in a signed field", `"step": 0`, `"step": -0`, sameJob},
		{"minus sign on seed", `"seed": 1,`, `"seed": -0,`, refused},
		{"exponent", `"lr_shift": 30`, `"lr_shift": 3e1`, refused},
		{"fraction", `"lr_shift": 30`, `"lr_shift": 30.0`, refused},
		{"byte-order mark", `{`, "\ufeff{", refused},
		{"invalid UTF-8", `"name": "fashion`, "\"name\": \"\xff", refused},
		{"lone surrogate", `"name": "fashion`, `"name": "\udc00`, refused},
		{"null optional field", `"test": {`, `"synthetic": null, "test": {`, refused},
		{"string for an integer", `"steps": 2812`, `"steps": "2812"`, refused},
	} {
		in := " \t\r\n" + strings.Replace(good, c.old, c.new, 1) + "\r\n\t "
		if c.old == "" {
			in = " \t\r\n" + good + "\r\n\t "
		}
		s, err := spec.Decode([]byte(in))
		if c.want == refused {
			if err == nil {
				t.Errorf("%s: accepted", c.name)
			} else if !errors.Is(err, spec.ErrMalformed) && !errors.Is(err, spec.ErrInvalid) {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: refused: %v", c.name, err)
			continue
		}
		if id, _ := s.ID(); (id == wantID) != (c.want == sameJob) {
			t.Errorf("%s: job %s, the unedited spec is %s", c.name, id, wantID)
		}
	}
}
