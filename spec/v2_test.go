package spec_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// gptJSON is the example GPT's JSON form.
func gptJSON(t testing.TB) string {
	t.Helper()
	js, err := spec.ExampleGPT().JSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// exampleGPTCanonical is the canonical form of spec.ExampleGPT, and
// exampleGPTID its job ID; SPEC.md §4 quotes the ID. Both were checked
// outside Go: python3's json.dumps(sort_keys=True, separators=(',',':'))
// reproduces the bytes, and `printf 'beluga/job/v2\0%s' … | sha256sum`
// the ID.
const (
	exampleGPTCanonical = `{"audit":{"cheat_fraction_ppm":10000,"confidence_ppm":990000,"confidential":false},"batch_size":16,"checkpoint_interval":100,` +
		`"data":{"source":"fortunes","text":{"bytes":2576674,"eval_windows":64,"root":"2d6eb815eb21d0e1d1a62a0a4e17fc884a34f7153f5f218b535ec78fb83c0637","val_bytes":65536}},` +
		`"digest_interval":1,"model":{"layers":[{"context":128,"dim":128,"op":"embedding","vocab":256},` +
		`{"ff":512,"heads":4,"op":"transformer"},{"ff":512,"heads":4,"op":"transformer"},{"ff":512,"heads":4,"op":"transformer"},{"ff":512,"heads":4,"op":"transformer"},` +
		`{"op":"rmsnorm"},{"op":"linear","out":256}],"loss":"next_token_cross_entropy"},"name":"fortunes-gpt","numeric":{"bits":12},` +
		`"optimizer":{"beta1":{"num":58982,"shift":16},"beta2":{"num":62259,"shift":16},"eps":1,"kind":"adamw",` +
		`"lr":[{"step":0,"value":0},{"step":30,"value":549755814},{"step":600,"value":54975581}],"lr_shift":39,"weight_decay":{"num":6554,"shift":16}},` +
		`"seed":1,"steps":600,"version":2}`
	exampleGPTID = "c7e86e4ab6de50779da536ffb711b3be90c0c020242b56c4515641a7720ab5d3"
)

// oldCanonical is the canonical encoding as version 1 computed it before
// version 2: the Spec struct marshalled, keys sorted. An MLP's canonical
// form must not have changed.
func oldCanonical(t testing.TB, s *spec.Spec) []byte {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVersion1IDsUnchanged: the committed vectors and the catalog's
// examples keep the job IDs they had before version 2 (the conformance
// vectors' digests, which hash the job ID, pin them too), and every MLP's
// canonical form is what version 1's encoder wrote.
func TestVersion1IDsUnchanged(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"example-synthetic": "13087c88c59aac33f9fcdcd50eb17f068899d5eac58b9be8ef796b0d38366c74",
		// Regenerated in issue 13 with 2-bit gradients and lr_shift 8 so that it
		// fires every reachable clamp of §8 (was 2977ec7b…).
		"saturating":    "ad829c05464b49f7b610b4314f3dbb0dfb0a5c804c5ba841ea4ddfd36b41953c",
		"tiny":          "23a58517edab07893948c5ee6574ba4b6f48a6f17809ebd905a4678205f525bc",
		"fashion-mnist": "97ef2083124464722f3a0a515880ba5fc26fa0b6da05813f13589c7b35a684cf",
	}
	check := func(name string, s *spec.Spec) {
		c, err := s.Canonical()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if old := oldCanonical(t, s); !bytes.Equal(c, old) {
			t.Errorf("%s: canonical form changed:\n%s\nwas\n%s", name, c, old)
		}
		id, _ := s.ID()
		sum := sha256.Sum256(append([]byte("beluga/job/v1\x00"), c...))
		if id != spec.JobID(sum) {
			t.Errorf("%s: a version-1 ID is not SHA-256(\"beluga/job/v1\" || 0x00 || canonical)", name)
		}
		if w, ok := want[name]; ok && id.String() != w {
			t.Errorf("%s: job ID %s, was %s", name, id, w)
		}
	}
	for _, name := range []string{"example-synthetic", "saturating", "tiny"} {
		b, err := os.ReadFile(filepath.Join("testdata", "vectors", name, "spec.json"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := spec.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(name, s)
	}
	fm, err := catalog.Example(catalog.ExampleFashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	check("fashion-mnist", fm)
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		check("random", spectest.Random(r, 300, 64))
	}
}

// TestExampleGPT: the example is valid, maps onto the gpt package's
// reference configuration, and its canonical form and job ID are the
// pinned ones (SHA-256 with the version-2 tag).
func TestExampleGPT(t *testing.T) {
	t.Parallel()
	s := spec.ExampleGPT()
	if !s.IsGPT() {
		t.Fatal("IsGPT is false")
	}
	c, err := s.GPT()
	if err != nil {
		t.Fatal(err)
	}
	want := gpt.Config{Context: 128, Dim: 128, Layers: 4, Heads: 4, FF: 512, Bits: 12, Batch: 16, Seed: 1,
		Beta1: gpt.Ratio{Num: 58982, Shift: 16}, Beta2: gpt.Ratio{Num: 62259, Shift: 16}, WeightDecay: gpt.Ratio{Num: 6554, Shift: 16}, Eps: 1,
		LRShift: 39, LR: []gpt.LRPoint{{Step: 0, Value: 0}, {Step: 30, Value: 549755814}, {Step: 600, Value: 54975581}}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("GPT() = %+v\nwant %+v", c, want)
	}
	split, err := s.TextSplit()
	if err != nil {
		t.Fatal(err)
	}
	if split != (dataset.TextSplit{Train: dataset.FortunesBytes - 65536, Val: 65536}) {
		t.Fatalf("TextSplit = %+v", split)
	}
	if n := len(dataset.ValWindows(split.Train, split.Val, c.Context, s.Data.Text.EvalWindows)); n != 64 {
		t.Fatalf("%d validation windows, want 64", n)
	}
	canon, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if string(canon) != exampleGPTCanonical {
		t.Fatalf("canonical form\n%s\nwant\n%s", canon, exampleGPTCanonical)
	}
	id, _ := s.ID()
	sum := sha256.Sum256(append([]byte("beluga/job/v2\x00"), canon...))
	if id.String() != exampleGPTID || hex.EncodeToString(sum[:]) != exampleGPTID {
		t.Fatalf("job ID %s, want %s", id, exampleGPTID)
	}
	// SPEC.md §4 quotes both for re-implementers.
	doc, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "    "+exampleGPTCanonical+"\n") || !strings.Contains(string(doc), exampleGPTID) {
		t.Fatal("SPEC.md §4 does not quote the example GPT's canonical encoding and job ID")
	}
	if p := s.Plan(); !reflect.DeepEqual(p, spec.Plan{}) {
		t.Fatalf("a GPT's MLP plan is %+v, want the zero Plan", p)
	}
	if b := s.Data.Bytes(); b != dataset.FortunesBytes {
		t.Fatalf("Data.Bytes = %d, want the corpus size", b)
	}
}

// TestGPTRoundTrip: JSON → Decode gives the same spec; Canonical → Decode
// → Canonical is a fixed point with the same job ID, for several GPTs.
func TestGPTRoundTrip(t *testing.T) {
	t.Parallel()
	text := spec.ExampleGPT()
	text.Name, text.Data.Source = "local-text", spec.SourceText
	text.Data.Text = &spec.TextData{Root: strings.Repeat("0f", 32), Bytes: 300, ValBytes: 40, EvalWindows: 1}
	text.Model.Layers = []spec.Layer{{Op: spec.OpEmbedding, Vocab: 256, Context: 8, Dim: 16},
		{Op: spec.OpTransformer, Heads: 2, FF: 1}, {Op: spec.OpRMSNorm}, {Op: spec.OpLinear, Out: 256}}
	text.Optimizer.LR = []spec.LRPoint{{Step: 0, Value: 1<<30 - 1}}
	text.Seed = 1<<64 - 1
	for _, s := range []*spec.Spec{spec.ExampleGPT(), text} {
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		js, err := s.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := spec.Decode(js)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("%s: JSON round trip\n%+v\nwant\n%+v", s.Name, back, s)
		}
		c1, _ := s.Canonical()
		again, err := spec.Decode(c1)
		if err != nil {
			t.Fatalf("%s: canonical form refused: %v", s.Name, err)
		}
		c2, _ := again.Canonical()
		a, _ := s.ID()
		b, _ := again.ID()
		if !bytes.Equal(c1, c2) || a != b {
			t.Fatalf("%s: canonical form not stable", s.Name)
		}
		// Every field is bound by the ID.
		again.Model.Layers[1].FF++
		for i := 2; i < len(again.Model.Layers)-2; i++ {
			again.Model.Layers[i].FF++
		}
		if c, _ := again.ID(); c == a {
			t.Fatalf("%s: ff not bound by the job ID", s.Name)
		}
	}
}

// TestVersion2MLP: a version-2 MLP is the version-1 MLP with version 2:
// same rules and plan, its own job ID (the version-2 tag).
func TestVersion2MLP(t *testing.T) {
	t.Parallel()
	v1 := string(example(t))
	v2, err := spec.Decode([]byte(strings.Replace(v1, `"version": 1`, `"version": 2`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := spec.Decode([]byte(v1))
	if v2.IsGPT() || !reflect.DeepEqual(v2.Plan(), s1.Plan()) {
		t.Fatal("a version-2 MLP reads differently")
	}
	c, _ := v2.Canonical()
	id, _ := v2.ID()
	id1, _ := s1.ID()
	if id != spec.JobID(sha256.Sum256(append([]byte("beluga/job/v2\x00"), c...))) || id == id1 {
		t.Fatal("a version-2 MLP's job ID is not SHA-256(\"beluga/job/v2\" || 0x00 || canonical)")
	}
	if _, err := v2.GPT(); !errors.Is(err, spec.ErrUnsupported) {
		t.Fatalf("GPT() of an MLP: %v", err)
	}
	if _, err := v2.TextSplit(); !errors.Is(err, spec.ErrUnsupported) {
		t.Fatalf("TextSplit() of an MLP: %v", err)
	}
	// Its optimizer is sgd_momentum, as in version 1.
	adam := strings.Replace(strings.Replace(v1, `"version": 1`, `"version": 2`, 1), `"kind": "sgd_momentum"`, `"kind": "adamw"`, 1)
	if _, err := spec.Decode([]byte(adam)); !errors.Is(err, spec.ErrUnsupported) || !strings.Contains(err.Error(), "optimizer.kind") {
		t.Fatalf("version-2 MLP with adamw: %v", err)
	}
	// The MLP rules hold in version 2 as in version 1.
	bad := strings.Replace(strings.Replace(v1, `"version": 1`, `"version": 2`, 1), `"out": 10`, `"out": 11`, 1)
	if _, err := spec.Decode([]byte(bad)); !errors.Is(err, spec.ErrInvalid) {
		t.Fatalf("version-2 MLP with the wrong classes: %v", err)
	}
}

// errAccepted marks an edit that must be accepted.
var errAccepted = errors.New("accepted")

// gptRefusals are edits of the example GPT's JSON (or, with mlp set, of
// the Fashion-MNIST MLP's), each breaking one rule of SPEC.md §3: the
// error must be the sentinel and name the field.
var gptRefusals = []struct {
	name, old, new string
	mlp            bool
	want           error
	field          string
}{
	// Versions and forms.
	{"GPT in version 1", `"version": 2`, `"version": 1`, false, spec.ErrUnsupported, "version"},
	{"version 3", `"version": 2`, `"version": 3`, false, spec.ErrUnsupported, "version 3"},
	{"GPT with sgd_momentum", `"kind": "adamw"`, `"kind": "sgd_momentum"`, false, spec.ErrUnsupported, "optimizer.kind"},
	{"MLP with adamw", `"kind": "sgd_momentum"`, `"kind": "adamw"`, true, spec.ErrUnsupported, "optimizer.kind"},
	{"unknown optimizer", `"kind": "adamw"`, `"kind": "adam"`, false, spec.ErrUnsupported, "optimizer.kind"},
	// Field sets: no field of the other form.
	{"MLP numeric field", `"bits": 12`, `"bits": 12, "act_bits": 10`, false, spec.ErrMalformed, "act_bits"},
	{"momentum", `"eps": 1,`, `"eps": 1, "momentum": {"num": 1, "shift": 1},`, false, spec.ErrMalformed, "momentum"},
	{"data.train", `"source": "fortunes",`, `"source": "fortunes", "train": {"root": "00", "count": 1, "features": 1, "classes": 2},`, false, spec.ErrMalformed, "train"},
	{"bits in an MLP", `"act_bits": 10`, `"bits": 12, "act_bits": 10`, true, spec.ErrMalformed, "bits"},
	{"text in an MLP", `"source": "fashion-mnist"`, `"source": "fashion-mnist", "text": {}`, true, spec.ErrMalformed, "text"},
	{"vocab in an MLP", `"out": 256`, `"out": 256, "vocab": 256`, true, spec.ErrMalformed, "vocab"},
	{"missing eps", `"eps": 1,`, ``, false, spec.ErrMalformed, "eps"},
	{"missing eval_windows", `,
      "eval_windows": 64`, ``, false, spec.ErrMalformed, "eval_windows"},
	// Layers.
	{"missing context", `"context": 128,`, ``, false, spec.ErrMalformed, "model.layers[0].context"},
	{"rmsnorm with out", `"op": "rmsnorm"`, `"op": "rmsnorm", "out": 0`, false, spec.ErrMalformed, "model.layers[5].out"},
	{"transformer with dim", `"heads": 4,`, `"heads": 4, "dim": 128,`, false, spec.ErrMalformed, "model.layers[1].dim"},
	{"null heads", `"heads": 4,`, `"heads": null,`, false, spec.ErrMalformed, "heads"},
	{"unknown op", `"op": "transformer"`, `"op": "attention"`, false, spec.ErrUnsupported, "model.layers[1]"},
	{"vocab", `"vocab": 256`, `"vocab": 255`, false, spec.ErrInvalid, "model.layers[0].vocab"},
	{"zero context", `"context": 128`, `"context": 0`, false, spec.ErrInvalid, "model.layers[0].context"},
	{"long context", `"context": 128`, `"context": 4097`, false, spec.ErrInvalid, "model.layers[0].context"},
	{"wide model", `"dim": 128`, `"dim": 4097`, false, spec.ErrInvalid, "model.layers[0].dim"},
	{"heads do not divide", `"heads": 4,`, `"heads": 3,`, false, spec.ErrInvalid, "model.layers[1].heads"},
	{"wide heads", `"heads": 4,`, `"heads": 0,`, false, spec.ErrInvalid, "model.layers[1].heads"},
	{"zero ff", `"ff": 512`, `"ff": 0`, false, spec.ErrInvalid, "model.layers[1].ff"},
	{"wide ff", `"ff": 512`, `"ff": 16385`, false, spec.ErrInvalid, "model.layers[1].ff"},
	{"blocks differ", `"ff": 512
      },
      {
        "op": "transformer",
        "heads": 4,
        "ff": 512`, `"ff": 512
      },
      {
        "op": "transformer",
        "heads": 4,
        "ff": 256`, false, spec.ErrInvalid, "model.layers[2]"},
	{"head width", `"out": 256`, `"out": 255`, false, spec.ErrInvalid, "model.layers[6].out"},
	{"order", `"op": "rmsnorm"`, `"op": "transformer", "heads": 4, "ff": 512`, false, spec.ErrInvalid, "model.layers[5]"},
	{"loss", `"loss": "next_token_cross_entropy"`, `"loss": "softmax_cross_entropy"`, false, spec.ErrUnsupported, "model.loss"},
	{"MLP with the GPT loss", `"loss": "softmax_cross_entropy"`, `"loss": "next_token_cross_entropy"`, true, spec.ErrUnsupported, "model.loss"},
	// Numeric and optimizer.
	{"few bits", `"bits": 12`, `"bits": 7`, false, spec.ErrInvalid, "numeric.bits"},
	{"many bits", `"bits": 12`, `"bits": 15`, false, spec.ErrInvalid, "numeric.bits"},
	{"beta1 ≥ 1", `"num": 58982`, `"num": 65536`, false, spec.ErrInvalid, "optimizer.beta1.num"},
	{"beta2 shift", `"num": 62259,
      "shift": 16`, `"num": 62259,
      "shift": 17`, false, spec.ErrInvalid, "optimizer.beta2.shift"},
	{"negative decay", `"num": 6554`, `"num": -1`, false, spec.ErrInvalid, "optimizer.weight_decay.num"},
	{"zero eps", `"eps": 1`, `"eps": 0`, false, spec.ErrInvalid, "optimizer.eps"},
	{"huge eps", `"eps": 1`, `"eps": 1073741825`, false, spec.ErrInvalid, "optimizer.eps"},
	{"lr_shift", `"lr_shift": 39`, `"lr_shift": 63`, false, spec.ErrInvalid, "optimizer.lr_shift"},
	{"lr value", `"value": 549755814`, `"value": 1073741824`, false, spec.ErrInvalid, "optimizer.lr[1].value"},
	{"lr start", `"step": 0`, `"step": 1`, false, spec.ErrInvalid, "optimizer.lr[0].step"},
	{"lr order", `"step": 600`, `"step": 30`, false, spec.ErrInvalid, "optimizer.lr"},
	// Data.
	{"source", `"source": "fortunes"`, `"source": "http"`, false, spec.ErrUnsupported, "data.source"},
	{"MLP source on a GPT", `"source": "fortunes"`, `"source": "fashion-mnist"`, false, spec.ErrUnsupported, "data.source"},
	{"fortunes root", `"root": "2d6e`, `"root": "3d6e`, false, spec.ErrInvalid, "data.text"},
	{"fortunes bytes", `"bytes": 2576674`, `"bytes": 2576673`, false, spec.ErrInvalid, "data.text"},
	{"text root", `"source": "fortunes"`, `"source": "text"`, false, errAccepted, ""},
	{"upper-case root", `"root": "2d6e`, `"root": "2D6E`, false, spec.ErrInvalid, "data.text.root"},
	{"no bytes", `"bytes": 2576674`, `"bytes": 0`, false, spec.ErrInvalid, "data.text.bytes"},
	{"too many bytes", `"bytes": 2576674`, `"bytes": 268435457`, false, spec.ErrInvalid, "data.text.bytes"},
	{"small validation split", `"val_bytes": 65536`, `"val_bytes": 128`, false, spec.ErrInvalid, "data.text.val_bytes"},
	{"no training bytes", `"val_bytes": 65536`, `"val_bytes": 2576546`, false, spec.ErrInvalid, "data.text.val_bytes"},
	{"zero eval windows", `"eval_windows": 64`, `"eval_windows": 0`, false, spec.ErrInvalid, "data.text.eval_windows"},
	{"many eval windows", `"eval_windows": 64`, `"eval_windows": 65537`, false, spec.ErrInvalid, "data.text.eval_windows"},
	// Schedule, audit and size.
	{"zero steps", `"steps": 600`, `"steps": 0`, false, spec.ErrInvalid, "steps"},
	{"zero batch", `"batch_size": 16`, `"batch_size": 0`, false, spec.ErrInvalid, "batch_size"},
	{"interval multiple", `"digest_interval": 1`, `"digest_interval": 3`, false, spec.ErrInvalid, "checkpoint_interval"},
	{"long trace", `"steps": 600`, `"steps": 70000`, false, spec.ErrInvalid, "digest_interval"},
	{"confidential", `"confidential": false`, `"confidential": true`, false, spec.ErrUnsupported, "audit.confidential"},
	{"cheat fraction", `"cheat_fraction_ppm": 10000`, `"cheat_fraction_ppm": 0`, false, spec.ErrInvalid, "audit.cheat_fraction_ppm"},
	{"tokens per step", `"batch_size": 16`, `"batch_size": 8193`, false, spec.ErrInvalid, "batch_size × model.layers[0].context"},
	{"name", `"name": "fortunes-gpt"`, `"name": ""`, false, spec.ErrInvalid, "name"},
	// Strict reading applies to a GPT as to an MLP.
	{"exponent", `"dim": 128`, `"dim": 1.28e2`, false, spec.ErrMalformed, "dim"},
	{"case-folded key", `"vocab": 256`, `"Vocab": 256`, false, spec.ErrMalformed, "Vocab"},
	{"duplicate key", `"vocab": 256`, `"vocab": 256, "vocab": 256`, false, spec.ErrMalformed, "vocab"},
	{"trailing data", `"version": 2`, `"version": 2}{"x": 1`, false, spec.ErrMalformed, ""},
}

// TestGPTRulesRefused: every rule of a GPT spec is enforced, with an error
// that names the field.
func TestGPTRulesRefused(t *testing.T) {
	t.Parallel()
	base, mlp := gptJSON(t), string(example(t))
	for _, c := range gptRefusals {
		t.Run(c.name, func(t *testing.T) {
			doc := base
			if c.mlp {
				doc = mlp
			}
			if !strings.Contains(doc, c.old) {
				t.Fatalf("base spec lacks %q", c.old)
			}
			_, err := spec.Decode([]byte(strings.Replace(doc, c.old, c.new, 1)))
			if c.want == errAccepted {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("%v does not name %q", err, c.field)
			}
		})
	}
}

// TestGPTRulesInMemory: specs built in Go (not read from JSON) are held to
// the same rules, including the field sets, and Canonical refuses a spec
// holding fields of the other form, so no field escapes the job ID.
func TestGPTRulesInMemory(t *testing.T) {
	t.Parallel()
	fm := func() *spec.Spec {
		s, err := catalog.Example(catalog.ExampleFashionMNIST)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	huge := spec.ExampleGPT()
	huge.Model.Layers[0].Dim = 4096
	huge.Model.Layers = []spec.Layer{huge.Model.Layers[0], {Op: spec.OpTransformer, Heads: 32, FF: 16384}, {Op: spec.OpRMSNorm}, {Op: spec.OpLinear, Out: 256}}
	blocks := func(n int) *spec.Spec {
		s := spec.ExampleGPT()
		ls := s.Model.Layers
		s.Model.Layers = []spec.Layer{ls[0]}
		for range n {
			s.Model.Layers = append(s.Model.Layers, ls[1])
		}
		s.Model.Layers = append(s.Model.Layers, ls[len(ls)-2:]...)
		return s
	}
	for _, c := range []struct {
		name  string
		s     *spec.Spec
		edit  func(s *spec.Spec)
		want  error
		field string
		canon bool // Canonical refuses it too
	}{
		{"act_bits on a GPT", spec.ExampleGPT(), func(s *spec.Spec) { s.Numeric.ActBits = 10 }, spec.ErrInvalid, "numeric.act_bits", true},
		{"momentum on a GPT", spec.ExampleGPT(), func(s *spec.Spec) { s.Optimizer.Momentum.Num = 1 }, spec.ErrInvalid, "optimizer.momentum", true},
		{"test split on a GPT", spec.ExampleGPT(), func(s *spec.Spec) { s.Data.Test = &spec.DatasetRef{} }, spec.ErrInvalid, "data.test", true},
		{"heads on an embedding", spec.ExampleGPT(), func(s *spec.Spec) { s.Model.Layers[0].Heads = 4 }, spec.ErrInvalid, "model.layers[0].heads", true},
		{"out on an rmsnorm", spec.ExampleGPT(), func(s *spec.Spec) { s.Model.Layers[5].Out = 1 }, spec.ErrInvalid, "model.layers[5].out", true},
		{"no text", spec.ExampleGPT(), func(s *spec.Spec) { s.Data.Text = nil }, spec.ErrInvalid, "data.text", false},
		{"too many parameters", huge, func(*spec.Spec) {}, spec.ErrInvalid, "parameters", false},
		{"too many blocks", blocks(gpt.MaxLayers + 1), func(*spec.Spec) {}, spec.ErrInvalid, "model.layers", false},
		{"no block", blocks(0), func(*spec.Spec) {}, spec.ErrInvalid, "model.layers", false},
		{"bits on an MLP", fm(), func(s *spec.Spec) { s.Numeric.Bits = 12 }, spec.ErrInvalid, "numeric.bits", true},
		{"beta1 on an MLP", fm(), func(s *spec.Spec) { s.Optimizer.Beta1.Num = 1 }, spec.ErrInvalid, "optimizer.beta1", true},
		{"text on an MLP", fm(), func(s *spec.Spec) { s.Data.Text = &spec.TextData{} }, spec.ErrInvalid, "data.text", true},
		{"vocab on an MLP layer", fm(), func(s *spec.Spec) { s.Model.Layers[0].Vocab = 256 }, spec.ErrInvalid, "model.layers[0].vocab", true},
		{"GPT in version 1", spec.ExampleGPT(), func(s *spec.Spec) { s.Version = 1 }, spec.ErrUnsupported, "version 2", false},
		{"adamw on an MLP", fm(), func(s *spec.Spec) { s.Optimizer.Kind = spec.OptimizerAdamW }, spec.ErrUnsupported, "optimizer.kind", false},
	} {
		c.edit(c.s)
		err := c.s.Validate()
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: Validate = %v, want %v naming %q", c.name, err, c.want, c.field)
		}
		if _, err := c.s.Canonical(); (err != nil) != c.canon {
			t.Errorf("%s: Canonical error %v, want one: %v", c.name, err, c.canon)
		}
		if c.s.IsGPT() {
			if _, err := c.s.GPT(); err == nil {
				t.Errorf("%s: GPT() accepted an invalid spec", c.name)
			}
		}
	}
}

// TestValWindowCount: the validation-window count Validate computes is
// dataset.ValWindows' length, and at least 1 for every accepted split.
func TestValWindowCount(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ n, val, ctx, eval int }{
		{300, 9, 8, 1}, {300, 40, 8, 100}, {300, 16, 8, 5}, {300, 17, 8, 5}, {1000, 9, 8, 64}, {1000, 991, 8, 64},
	} {
		s := spec.ExampleGPT()
		s.Data.Source = spec.SourceText
		s.Data.Text = &spec.TextData{Root: strings.Repeat("ab", 32), Bytes: c.n, ValBytes: c.val, EvalWindows: c.eval}
		s.Model.Layers[0].Context = c.ctx
		_, splitErr := dataset.NewTextSplit(c.n, c.val, c.ctx)
		err := s.Validate()
		if (err == nil) != (splitErr == nil) {
			t.Errorf("%+v: Validate %v, NewTextSplit %v", c, err, splitErr)
		}
		if err == nil {
			if k := len(dataset.ValWindows(c.n-c.val, c.val, c.ctx, c.eval)); k < 1 {
				t.Errorf("%+v: accepted with %d validation windows", c, k)
			}
		}
	}
}

// TestGPTBlocksAtTheLimit: 1 and gpt.MaxLayers transformer blocks are
// accepted (when the parameters fit).
func TestGPTBlocksAtTheLimit(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, gpt.MaxLayers} {
		s := spec.ExampleGPT()
		ls := s.Model.Layers
		s.Model.Layers = []spec.Layer{ls[0]}
		for range n {
			s.Model.Layers = append(s.Model.Layers, ls[1])
		}
		s.Model.Layers = append(s.Model.Layers, ls[len(ls)-2:]...)
		c, err := s.GPT()
		if err != nil || c.Layers != n {
			t.Fatalf("%d blocks: %v (config has %d)", n, err, c.Layers)
		}
	}
}
