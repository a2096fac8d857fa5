// Package importtest writes GPT-2-shaped checkpoints for tests: random
// weights under Hugging Face's tensor names, as safetensors, with the
// matching config.json, so the import can be tested without a model hub
// or PyTorch.
package importtest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/beluga-compute/beluga/internal/safetensors"
)

// Shape is a GPT-2's sizes.
type Shape struct {
	Vocab, Positions, Dim, Layers, Heads, FF int
}

// Small is a tiny byte-level GPT-2.
var Small = Shape{Vocab: 256, Positions: 32, Dim: 32, Layers: 2, Heads: 2, FF: 128}

// GPT2 returns a random checkpoint of shape s: safetensors bytes (F32, or
// dtype "F16"/"BF16"; names under "transformer." if prefixed) and its
// config.json. Embeddings have standard deviation 0.5 (wte) and 0.1
// (wpe), matrices 1.5/√in, biases 0.1, gains 1 ± 0.2: a model whose
// predictions are far from uniform.
func GPT2(seed uint64, s Shape, prefixed bool, dtype string) (st, config []byte, err error) {
	rng := rand.New(rand.NewPCG(seed, 11))
	pre := ""
	if prefixed {
		pre = "transformer."
	}
	var ts []safetensors.Tensor
	add := func(name string, shape []int, f func() float64) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(f())
		}
		ts = append(ts, encode(pre+name, shape, v, dtype))
	}
	normal := func(sd float64) func() float64 { return func() float64 { return sd * rng.NormFloat64() } }
	gain := func() float64 { return 1 + 0.2*rng.NormFloat64() }
	d, f := s.Dim, s.FF
	add("wte.weight", []int{s.Vocab, d}, normal(0.5))
	add("wpe.weight", []int{s.Positions, d}, normal(0.1))
	for l := range s.Layers {
		p := fmt.Sprintf("h.%d.", l)
		add(p+"ln_1.weight", []int{d}, gain)
		add(p+"ln_1.bias", []int{d}, normal(0.1))
		add(p+"attn.c_attn.weight", []int{d, 3 * d}, normal(1.5/math.Sqrt(float64(d))))
		add(p+"attn.c_attn.bias", []int{3 * d}, normal(0.1))
		add(p+"attn.c_proj.weight", []int{d, d}, normal(1.5/math.Sqrt(float64(d))))
		add(p+"attn.c_proj.bias", []int{d}, normal(0.1))
		add(p+"ln_2.weight", []int{d}, gain)
		add(p+"ln_2.bias", []int{d}, normal(0.1))
		add(p+"mlp.c_fc.weight", []int{d, f}, normal(1.5/math.Sqrt(float64(d))))
		add(p+"mlp.c_fc.bias", []int{f}, normal(0.1))
		add(p+"mlp.c_proj.weight", []int{f, d}, normal(1.5/math.Sqrt(float64(f))))
		add(p+"mlp.c_proj.bias", []int{d}, normal(0.1))
	}
	add("ln_f.weight", []int{d}, gain)
	add("ln_f.bias", []int{d}, normal(0.1))
	st, err = safetensors.Encode(ts, map[string]string{"format": "pt"})
	if err != nil {
		return nil, nil, err
	}
	config, err = json.Marshal(map[string]any{
		"model_type": "gpt2", "architectures": []string{"GPT2LMHeadModel"},
		"vocab_size": s.Vocab, "n_positions": s.Positions, "n_embd": d, "n_layer": s.Layers, "n_head": s.Heads,
		"n_inner": f, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
	})
	return st, config, err
}

// encode stores v as dtype (F32, F16 or BF16, rounding to nearest even).
func encode(name string, shape []int, v []float32, dtype string) safetensors.Tensor {
	switch dtype {
	case "BF16":
		b := make([]byte, 2*len(v))
		for i, x := range v {
			u := math.Float32bits(x)
			u += 0x7fff + (u>>16)&1
			binary.LittleEndian.PutUint16(b[2*i:], uint16(u>>16))
		}
		return safetensors.Tensor{Name: name, DType: "BF16", Shape: shape, Data: b}
	case "F16":
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], toHalf(x))
		}
		return safetensors.Tensor{Name: name, DType: "F16", Shape: shape, Data: b}
	}
	return safetensors.F32(name, shape, v)
}

// toHalf converts a float32 of moderate magnitude (normal as a half) to
// binary16, rounding to nearest even; smaller values flush to zero.
func toHalf(x float32) uint16 {
	u := math.Float32bits(x)
	sign := uint16(u>>16) & 0x8000
	exp := int(u>>23&0xff) - 127 + 15
	if exp <= 0 {
		return sign
	}
	m := u & 0x7fffff
	r := m >> 13
	rem := m & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && r&1 == 1 {
		r++
	}
	h := uint32(exp)<<10 + r
	if h >= 0x7c00 {
		return sign | 0x7c00
	}
	return sign | uint16(h)
}
