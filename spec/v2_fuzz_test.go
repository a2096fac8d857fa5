package spec_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

// FuzzDecodeV2 reads arbitrary bytes as a spec, seeded with the example
// GPT, a version-2 MLP and every edit of gptRefusals. Decode never panics,
// and whatever it accepts is usable and has one reading: its JSON form
// decodes to the same Spec, and its canonical form decodes to a spec with
// the same canonical form and job ID (decode ∘ canonical is stable).
func FuzzDecodeV2(f *testing.F) {
	base, mlp := gptJSON(f), string(example(f))
	f.Add([]byte(base))
	f.Add([]byte(strings.Replace(mlp, `"version": 1`, `"version": 2`, 1)))
	if c, err := spec.ExampleGPT().Canonical(); err == nil {
		f.Add(c)
	}
	if c, err := spec.ServedGPT2("imported", 64, 32, 2, 2, 128, 12).Canonical(); err == nil {
		f.Add(c) // GPT-2 blocks (SPEC.md §22)
	}
	for _, c := range gptRefusals {
		doc := base
		if c.mlp {
			doc = mlp
		}
		f.Add([]byte(strings.Replace(doc, c.old, c.new, 1)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := spec.Decode(data)
		if err != nil {
			return
		}
		c, err := s.Canonical()
		if err != nil {
			t.Fatalf("accepted spec has no canonical form: %v", err)
		}
		back, err := spec.Decode(c)
		if err != nil {
			t.Fatalf("canonical form refused: %v", err)
		}
		c2, err := back.Canonical()
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("decode ∘ canonical not stable:\n%s\n%s", c, c2)
		}
		a, _ := s.ID()
		b, _ := back.ID()
		if a != b {
			t.Fatal("canonical form changes the job ID")
		}
		js, err := s.JSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := spec.Decode(js)
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("JSON form reads differently: %v", err)
		}
		if !s.IsGPT() {
			if p := s.Plan(); p.Params > spec.MaxParams {
				t.Fatal("accepted an oversized MLP")
			}
			return
		}
		g, err := s.GPT()
		if err != nil {
			t.Fatalf("accepted GPT has no configuration: %v", err)
		}
		if g.ParamCount() > spec.MaxParams || g.Tokens() > 1<<20 {
			t.Fatal("accepted an oversized GPT")
		}
		split, err := s.TextSplit()
		if err != nil || split.Train+split.Val != s.Data.Text.Bytes {
			t.Fatalf("accepted GPT has no text split: %v", err)
		}
	})
}
