package inference_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// TestSpecVectors pins SPEC.md §21.5: the request hash, the output, the
// first leaf, the position root and the receipt of one request, so an
// implementation from the text alone can compare.
func TestSpecVectors(t *testing.T) {
	t.Parallel()
	m := newModel(t, config(2, 5))
	var md merkle.Digest
	copy(md[:], bytes.Repeat([]byte{0x11}, 32))
	req := &inference.Request{ID: "vector", Model: md, Prompt: []byte("The whale "), MaxTokens: 12, Seed: 3,
		Temperature: 52429, Stop: [][]byte{[]byte("\n"), []byte("zz")}}
	res, rc := serve(t, m, req, key(1))
	z, e, err := m.g.Logits(req.Prompt)
	if err != nil {
		t.Fatal(err)
	}
	leaf0 := inference.PositionTree.Leaf(inference.LeafData(nil, 0, res.Output[0], z, e))
	got := map[string]string{
		"request hash":  hex.EncodeToString(rc.Request[:]),
		"output":        hex.EncodeToString(res.Output),
		"finish":        res.Finish.String(),
		"leaf 0":        hex.EncodeToString(leaf0[:]),
		"position root": hex.EncodeToString(rc.Positions[:]),
		"receipt id":    rc.ID(),
	}
	want := map[string]string{
		"request hash":  "f761bd888514c3f9c60169dfc823e9a685162417e52b444feb3c3098259f5c61",
		"output":        "ae205109f897aa01e229aa6b",
		"finish":        "length",
		"leaf 0":        "f2d141549f47b60cc1b2da642c5dd2af7ce2501452752aff604042807bd39750",
		"position root": "9a0a096b77ed8937d2730dee0ce336b46a12a703c0875539184ebba2c8e809b3",
		"receipt id":    "39b030173b6682af28d4d5296573094465477e10fe2c6ff01937fa80891955c4",
	}
	for k, v := range got {
		t.Logf("%s: %s", k, v)
		if w, ok := want[k]; ok && w != v {
			t.Errorf("%s: %s, want %s", k, v, w)
		}
	}
	if len(want) != len(got) {
		t.Error("vectors not pinned")
	}
}
