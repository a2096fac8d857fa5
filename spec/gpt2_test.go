package spec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
)

func servedJSON(t *testing.T) string {
	t.Helper()
	c, err := spec.ServedGPT2("imported", 64, 32, 2, 2, 128, 12).Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

// TestServedGPT2RoundTrip: the spec of an imported model of GPT-2 blocks
// is valid, reads back to itself from its canonical JSON (so the job ID
// covers §22's fields), maps onto gpt.Config with GPT2 set, and is refused
// as a training job.
func TestServedGPT2RoundTrip(t *testing.T) {
	t.Parallel()
	s := spec.ServedGPT2("imported", 64, 32, 2, 2, 128, 12)
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	if !c.GPT2 || c.Layers != 2 || c.Context != 64 || !s.IsGPT2() {
		t.Fatalf("config %+v", c)
	}
	doc := servedJSON(t)
	for _, want := range []string{`"norm":"layernorm"`, `"activation":"gelu"`, `"bias":true`, `"tied":true`, `"op":"layernorm"`} {
		if !strings.Contains(doc, want) {
			t.Fatalf("canonical form lacks %s: %s", want, doc)
		}
	}
	back, err := spec.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	id1, _ := s.ID()
	id2, _ := back.ID()
	if id1 != id2 {
		t.Fatalf("ID changed through JSON: %s vs %s", id1, id2)
	}
	if err := back.CheckTrainable(); !errors.Is(err, spec.ErrUnsupported) || !strings.Contains(err.Error(), "served, not trained") {
		t.Fatalf("CheckTrainable: %v", err)
	}
	if err := spec.ExampleGPT().CheckTrainable(); err != nil {
		t.Fatalf("§20 GPT: %v", err)
	}
	if spec.ExampleGPT().IsGPT2() {
		t.Fatal("ExampleGPT is GPT-2 blocks")
	}
}

// TestGPT2FieldsRefused: §22's fields come all together, only on their
// ops, with their one value; anything else is refused with the field named.
func TestGPT2FieldsRefused(t *testing.T) {
	t.Parallel()
	doc := servedJSON(t)
	plain, err := spec.ExampleGPT().Canonical()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, doc, old, new, field string
	}{
		{"mix: no tie", doc, `,"tied":true`, ``, "tied"},
		{"mix: rmsnorm final", doc, `{"op":"layernorm"}`, `{"op":"rmsnorm"}`, "final norm"},
		{"mix: one block silu", doc, `"activation":"gelu",`, ``, "activation"},
		{"norm value", doc, `"norm":"layernorm"`, `"norm":"rmsnorm"`, "norm"},
		{"activation value", doc, `"activation":"gelu"`, `"activation":"relu"`, "activation"},
		{"bias false", doc, `"bias":true`, `"bias":false`, "bias"},
		{"tied false", doc, `"tied":true`, `"tied":false`, "tied"},
		{"tied on norm", doc, `{"op":"layernorm"}`, `{"op":"layernorm","tied":true}`, "tied"},
		{"norm on embedding", doc, `"op":"embedding"`, `"op":"embedding","norm":"layernorm"`, "norm"},
		{"layernorm final in a §20 GPT", string(plain), `{"op":"rmsnorm"}`, `{"op":"layernorm"}`, "layernorm"},
		{"tied head in a §20 GPT", string(plain), `"op":"linear"`, `"op":"linear","tied":true`, "tied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(c.doc, c.old) {
				t.Fatalf("document lacks %q", c.old)
			}
			_, err := spec.Decode([]byte(strings.Replace(c.doc, c.old, c.new, 1)))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("%v does not name %q", err, c.field)
			}
		})
	}
	// In memory: an MLP layer with a §22 field.
	s, err := spec.Decode(example(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Model.Layers[0].Bias = true
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "bias") {
		t.Fatalf("MLP with bias: %v", err)
	}
}
