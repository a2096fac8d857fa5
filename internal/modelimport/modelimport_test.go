package modelimport_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/internal/modelimport"
	"github.com/beluga-compute/beluga/internal/modelimport/importtest"
	"github.com/beluga-compute/beluga/internal/safetensors"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec/gpt"
)

func load(t *testing.T, seed uint64, s importtest.Shape, prefixed bool, dtype string) (*safetensors.File, *modelimport.Config) {
	t.Helper()
	st, cj, err := importtest.GPT2(seed, s, prefixed, dtype)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(st)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := modelimport.ParseConfig(cj)
	if err != nil {
		t.Fatal(err)
	}
	return f, cfg
}

// TestQuantize: §22.5's rounding — half to even at the last bit,
// saturating at ±(2^31 − 1), and NaN or ±Inf refused.
func TestQuantize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		x    float64
		frac int
		want int32
	}{
		{0.5 / (1 << 24), 24, 0}, {1.5 / (1 << 24), 24, 2}, {2.5 / (1 << 24), 24, 2}, {-2.5 / (1 << 24), 24, -2},
		{0.1, 16, 6554}, {-0.1, 24, -1677722}, {1, 16, 65536}, {200, 24, math.MaxInt32}, {-200, 24, -math.MaxInt32},
	} {
		if got, err := modelimport.Quantize(c.x, c.frac); err != nil || got != c.want {
			t.Errorf("Quantize(%g, %d) = %d, %v; want %d", c.x, c.frac, got, err, c.want)
		}
	}
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := modelimport.Quantize(x, 24); err == nil {
			t.Errorf("Quantize(%g) accepted", x)
		}
	}
}

// TestImportMapping: every GPT-2 tensor lands where §22.5 says —
// Conv1D weights transposed to [out, in], gains and biases in Q16 — with
// or without the "transformer." prefix, from F32, F16 or BF16; without
// config.json the sizes come from the tensors and --heads.
func TestImportMapping(t *testing.T) {
	t.Parallel()
	s := importtest.Small
	for _, c := range []struct {
		prefixed bool
		dtype    string
	}{{false, "F32"}, {true, "F32"}, {false, "F16"}, {true, "BF16"}} {
		f, cfg := load(t, 1, s, c.prefixed, c.dtype)
		m, err := modelimport.Import(f, cfg, modelimport.Options{})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		pre := map[bool]string{true: "transformer.", false: ""}[c.prefixed]
		get := func(name string) []float64 {
			v, err := f.Get(pre + name).Float64s()
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		ps := m.Config.Params()
		idx := map[string]int{}
		for i, p := range ps {
			idx[p.Name] = i
		}
		d := s.Dim
		q := func(x float64, frac int) int32 { v, _ := modelimport.Quantize(x, frac); return v }
		// c_attn.weight is [in = d, out = 3d]; attn.qkv is [3d, d].
		cw, qkv := get("h.1.attn.c_attn.weight"), m.State.W[idx["blocks.1.attn.qkv"]]
		for _, oi := range [][2]int{{0, 0}, {5, 3}, {3*d - 1, d - 1}, {2 * d, 7}} {
			o, i := oi[0], oi[1]
			if qkv[o*d+i] != q(cw[i*3*d+o], gpt.MasterFrac) {
				t.Fatalf("%+v: qkv[%d][%d] is not c_attn.weight[%d][%d]", c, o, i, i, o)
			}
		}
		fc, up := get("h.0.mlp.c_proj.weight"), m.State.W[idx["blocks.0.mlp.down"]]
		if up[3*s.FF+100] != q(fc[100*d+3], gpt.MasterFrac) {
			t.Fatalf("%+v: mlp.down is not c_proj transposed", c)
		}
		if g := m.State.W[idx["ln_f.gain"]][4]; g != q(get("ln_f.weight")[4], gpt.VectorFrac) {
			t.Fatalf("%+v: ln_f.gain[4] = %d", c, g)
		}
		if b := m.State.W[idx["blocks.1.mlp.up.bias"]][9]; b != q(get("h.1.mlp.c_fc.bias")[9], gpt.VectorFrac) {
			t.Fatalf("%+v: mlp.up.bias[9] = %d", c, b)
		}
		if w := m.State.W[0][300]; w != q(get("wte.weight")[300], gpt.MasterFrac) {
			t.Fatalf("%+v: tok_emb", c)
		}
		// Without config.json: the same model, given the heads.
		m2, err := modelimport.Import(f, nil, modelimport.Options{Heads: s.Heads})
		if err != nil {
			t.Fatal(err)
		}
		if m2.Config.FF != m.Config.FF || m2.Config.Heads != m.Config.Heads || m2.Config.Context != m.Config.Context {
			t.Fatalf("sizes from the tensors %+v differ from config.json's %+v", m2.Config, m.Config)
		}
	}
}

// TestImportRefusals: what the import cannot represent is refused before
// anything is written, with an error that says what and why.
func TestImportRefusals(t *testing.T) {
	t.Parallel()
	s := importtest.Small
	f, cfg := load(t, 2, s, false, "F32")
	rebuild := func(edit func([]safetensors.Tensor) []safetensors.Tensor) *safetensors.File {
		ts := edit(append([]safetensors.Tensor(nil), f.Tensors...))
		b, err := safetensors.Encode(ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		g, err := safetensors.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	big := s
	big.Vocab = 300
	bigB, _, err := importtest.GPT2(2, big, false, "F32")
	if err != nil {
		t.Fatal(err)
	}
	bigF, err := safetensors.Parse(bigB)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    *safetensors.File
		cfg  *modelimport.Config
		o    modelimport.Options
		want string
	}{
		{"vocabulary", bigF, nil, modelimport.Options{Heads: 2}, "tokenizer is not supported yet"},
		{"no heads", f, nil, modelimport.Options{}, "--heads"},
		{"untied head", rebuild(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.F32("lm_head.weight", []int{256, s.Dim}, make([]float32, 256*s.Dim)))
		}), cfg, modelimport.Options{}, "untied"},
		{"unknown tensor", rebuild(func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.F32("h.0.attn.rotary", []int{1}, []float32{1}))
		}), cfg, modelimport.Options{}, "not a GPT-2 parameter"},
		{"missing tensor", rebuild(func(ts []safetensors.Tensor) []safetensors.Tensor {
			out := ts[:0]
			for _, x := range ts {
				if x.Name != "h.1.ln_2.bias" {
					out = append(out, x)
				}
			}
			return out
		}), cfg, modelimport.Options{}, `"h.1.ln_2.bias" is missing`},
		{"mixed prefix", rebuild(func(ts []safetensors.Tensor) []safetensors.Tensor {
			ts[len(ts)-1].Name = "transformer." + ts[len(ts)-1].Name
			return ts
		}), cfg, modelimport.Options{}, "mix"},
		{"NaN", rebuild(func(ts []safetensors.Tensor) []safetensors.Tensor {
			nan := safetensors.F32("h.0.ln_1.bias", []int{s.Dim}, append([]float32{float32(math.NaN())}, make([]float32, s.Dim-1)...))
			for i := range ts {
				if ts[i].Name == nan.Name {
					ts[i] = nan
				}
			}
			return ts
		}), cfg, modelimport.Options{}, "not a finite number"},
		{"context", f, cfg, modelimport.Options{Context: 33}, "context 33"},
	} {
		_, err := modelimport.Import(c.f, c.cfg, c.o)
		if !errors.Is(err, modelimport.ErrImport) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrImport saying %q", c.name, err, c.want)
		}
	}
	// A tied lm_head (a copy of wte) is accepted.
	tied := rebuild(func(ts []safetensors.Tensor) []safetensors.Tensor {
		h := ts[0]
		h.Name = "lm_head.weight"
		return append(ts, h)
	})
	if _, err := modelimport.Import(tied, cfg, modelimport.Options{}); err != nil {
		t.Errorf("tied lm_head: %v", err)
	}
}

// TestParseConfigRefusals: config.json settings that change the function
// are refused by name.
func TestParseConfigRefusals(t *testing.T) {
	t.Parallel()
	_, cj, err := importtest.GPT2(1, importtest.Small, false, "F32")
	if err != nil {
		t.Fatal(err)
	}
	for old, want := range map[string]string{
		`"layer_norm_epsilon":0.00001`:     "layer_norm_epsilon",
		`"activation_function":"gelu_new"`: "activation_function",
		`"vocab_size":256`:                 "tokenizer",
		`"model_type":"gpt2"`:              "model_type",
		`"n_head":2`:                       "n_head is missing",
	} {
		repl := map[string]string{
			`"layer_norm_epsilon":0.00001`:     `"layer_norm_epsilon":1e-6`,
			`"activation_function":"gelu_new"`: `"activation_function":"gelu"`,
			`"vocab_size":256`:                 `"vocab_size":50257`,
			`"model_type":"gpt2"`:              `"model_type":"llama"`,
			`"n_head":2`:                       `"n_heads":2`,
		}[old]
		if !bytes.Contains(cj, []byte(old)) {
			t.Fatalf("config lacks %s: %s", old, cj)
		}
		_, err := modelimport.ParseConfig(bytes.Replace(cj, []byte(old), []byte(repl), 1))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", repl, err, want)
		}
	}
	if _, err := modelimport.ParseConfig(append(cj[:len(cj)-1], []byte(`,"scale_attn_by_inverse_layer_idx":true}`)...)); err == nil {
		t.Error("scale_attn_by_inverse_layer_idx accepted")
	}
}

// TestWriteRunDir: Write makes a run directory that rundir.OpenModel reads
// back to the same digest and state, deterministically, and refuses to
// overwrite one.
func TestWriteRunDir(t *testing.T) {
	t.Parallel()
	f, cfg := load(t, 3, importtest.Small, true, "F32")
	m, err := modelimport.Import(f, cfg, modelimport.Options{Name: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rm, err := modelimport.Write(context.Background(), dir, m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := rundir.OpenModel(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest != rm.Digest || back.Step != 0 || !back.Config.GPT2 {
		t.Fatalf("read back digest %x step %d, wrote %x", back.Digest[:8], back.Step, rm.Digest[:8])
	}
	m2, _ := modelimport.Import(f, cfg, modelimport.Options{Name: "tiny"})
	rm2, err := modelimport.Write(context.Background(), t.TempDir(), m2)
	if err != nil || rm2.Digest != rm.Digest {
		t.Fatalf("a second import: %v, digest %x vs %x", err, rm2.Digest[:8], rm.Digest[:8])
	}
	if _, err := modelimport.Write(context.Background(), dir, m); !errors.Is(err, modelimport.ErrImport) {
		t.Fatalf("overwrite: %v", err)
	}
}
