// Package modelimport converts a GPT-2 checkpoint (safetensors, Hugging
// Face tensor names) into a Beluga model of GPT-2 blocks (SPEC.md §22): a
// spec and an integer state, written as a run directory that `beluga
// generate`, `beluga model publish` and the daemons' --serve-model read.
//
// # Determinism
//
// The conversion is SPEC.md §22.5's: every floating-point value (F16,
// BF16, F32 or F64, each exactly a float64) is scaled by a power of two
// and rounded half to even, saturating to int32 — operations IEEE 754
// defines exactly — so the same file gives the same state, and the same
// model digest, on every machine.
package modelimport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/beluga-compute/beluga/internal/safetensors"
	"github.com/beluga-compute/beluga/protocol/rundir"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
)

// ErrImport: the checkpoint cannot be imported as it is.
var ErrImport = errors.New("model import")

// Config is what the import needs of Hugging Face's GPT-2 config.json.
type Config struct {
	NEmbd, NHead, NLayer, NPositions, VocabSize int
	// NInner is the MLP width (0: 4·NEmbd).
	NInner int
	// LayerNormEpsilon must be 1e−5 (SPEC.md §22.2's ε).
	LayerNormEpsilon float64
	// Activation is activation_function: "gelu_new" (GPT-2's, the tanh
	// form) or "gelu_pytorch_tanh", the same function.
	Activation string
}

// hfConfig is the subset of config.json read; other keys are ignored
// (config.json holds many that do not change the function), except those
// that would, which are refused when set to anything but GPT-2's value.
type hfConfig struct {
	NEmbd                *int     `json:"n_embd"`
	NHead                *int     `json:"n_head"`
	NLayer               *int     `json:"n_layer"`
	NPositions           *int     `json:"n_positions"`
	VocabSize            *int     `json:"vocab_size"`
	NInner               *int     `json:"n_inner"`
	LayerNormEpsilon     *float64 `json:"layer_norm_epsilon"`
	Activation           *string  `json:"activation_function"`
	ScaleAttnWeights     *bool    `json:"scale_attn_weights"`
	ScaleByInverseLayer  *bool    `json:"scale_attn_by_inverse_layer_idx"`
	ReorderAndUpcastAttn *bool    `json:"reorder_and_upcast_attn"`
	TieWordEmbeddings    *bool    `json:"tie_word_embeddings"`
	ModelType            *string  `json:"model_type"`
	AddCrossAttention    *bool    `json:"add_cross_attention"`
}

// ParseConfig reads a Hugging Face GPT-2 config.json. It needs n_embd,
// n_head, n_layer, n_positions and vocab_size, and refuses settings that
// change the function away from GPT-2's (another activation or ε,
// attention scaled otherwise, an untied head, cross-attention).
func ParseConfig(b []byte) (*Config, error) {
	var h hfConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%w: config.json: %v", ErrImport, err)
	}
	bad := func(format string, a ...any) (*Config, error) {
		return nil, fmt.Errorf("%w: config.json: %s", ErrImport, fmt.Sprintf(format, a...))
	}
	if h.ModelType != nil && *h.ModelType != "gpt2" {
		return bad("model_type %q: only GPT-2 (\"gpt2\") checkpoints are imported", *h.ModelType)
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{"n_embd", h.NEmbd}, {"n_head", h.NHead}, {"n_layer", h.NLayer}, {"n_positions", h.NPositions}, {"vocab_size", h.VocabSize}} {
		if f.v == nil {
			return bad("%s is missing", f.name)
		}
	}
	c := &Config{NEmbd: *h.NEmbd, NHead: *h.NHead, NLayer: *h.NLayer, NPositions: *h.NPositions, VocabSize: *h.VocabSize, LayerNormEpsilon: 1e-5, Activation: "gelu_new"}
	if h.NInner != nil {
		c.NInner = *h.NInner
	}
	if h.LayerNormEpsilon != nil {
		c.LayerNormEpsilon = *h.LayerNormEpsilon
	}
	if h.Activation != nil {
		c.Activation = *h.Activation
	}
	switch {
	case h.ScaleAttnWeights != nil && !*h.ScaleAttnWeights:
		return bad("scale_attn_weights false: SPEC.md §20.11's attention divides scores by √(head width)")
	case h.ScaleByInverseLayer != nil && *h.ScaleByInverseLayer:
		return bad("scale_attn_by_inverse_layer_idx true is not GPT-2's attention")
	case h.ReorderAndUpcastAttn != nil && *h.ReorderAndUpcastAttn:
		return bad("reorder_and_upcast_attn true is not supported")
	case h.TieWordEmbeddings != nil && !*h.TieWordEmbeddings:
		return bad("tie_word_embeddings false: a served GPT-2's head is its token embedding (SPEC.md §22)")
	case h.AddCrossAttention != nil && *h.AddCrossAttention:
		return bad("add_cross_attention true: a decoder-only GPT-2 has no cross-attention")
	}
	return c, c.check()
}

// check refuses what SPEC.md §22 cannot express.
func (c *Config) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrImport, fmt.Sprintf(format, a...))
	}
	switch {
	case c.VocabSize != gpt.Vocab:
		return bad("a vocabulary of %d tokens: Beluga's GPTs are byte-level (256 tokens, one per byte value); a tokenizer is not supported yet", c.VocabSize)
	case c.Activation != "gelu_new" && c.Activation != "gelu_pytorch_tanh":
		return bad("activation_function %q: SPEC.md §22 computes GPT-2's tanh GELU (\"gelu_new\" or \"gelu_pytorch_tanh\"), not this one", c.Activation)
	case math.Abs(c.LayerNormEpsilon-1e-5) > 1e-12:
		return bad("layer_norm_epsilon %g: SPEC.md §22.2's LayerNorm has GPT-2's ε = 1e-5", c.LayerNormEpsilon)
	case c.NEmbd < 1 || c.NHead < 1 || c.NLayer < 1 || c.NPositions < 1 || c.NInner < 0:
		return bad("n_embd %d, n_head %d, n_layer %d, n_positions %d, n_inner %d: each must be at least 1 (n_inner 0: 4·n_embd)", c.NEmbd, c.NHead, c.NLayer, c.NPositions, c.NInner)
	}
	return nil
}

// FF is the MLP width: NInner, or 4·NEmbd when it is 0.
func (c *Config) FF() int {
	if c.NInner > 0 {
		return c.NInner
	}
	return 4 * c.NEmbd
}

// Options are the import's choices.
type Options struct {
	// Name is the spec's name (default "gpt2-import").
	Name string
	// Bits is the operand bits (default 12, gpt.MaxBits).
	Bits int
	// Context is the served context (default: n_positions, at most
	// gpt.MaxContext); positions past it are dropped.
	Context int
	// Heads is n_head when no config.json is given.
	Heads int
}

// Model is an imported model: its spec and its state (step 0).
type Model struct {
	Spec   *spec.Spec
	Config gpt.Config
	State  *gpt.State
}

var layerName = regexp.MustCompile(`^h\.(0|[1-9][0-9]*)\.(.+)$`)

// block tensor suffixes: GPT-2's name, and the Beluga parameter (by its
// suffix after "blocks.l.") it becomes; transposed says the tensor is a
// Conv1D weight, stored [in, out].
var blockTensors = []struct {
	hf, ours   string
	transposed bool
}{
	{"ln_1.weight", "ln1.gain", false}, {"ln_1.bias", "ln1.bias", false},
	{"attn.c_attn.weight", "attn.qkv", true}, {"attn.c_attn.bias", "attn.qkv.bias", false},
	{"attn.c_proj.weight", "attn.out", true}, {"attn.c_proj.bias", "attn.out.bias", false},
	{"ln_2.weight", "ln2.gain", false}, {"ln_2.bias", "ln2.bias", false},
	{"mlp.c_fc.weight", "mlp.up", true}, {"mlp.c_fc.bias", "mlp.up.bias", false},
	{"mlp.c_proj.weight", "mlp.down", true}, {"mlp.c_proj.bias", "mlp.down.bias", false},
}

// ignored are per-layer buffers older checkpoints store (the causal mask),
// which are not parameters.
var ignored = map[string]bool{"attn.bias": true, "attn.masked_bias": true}

// Import converts the checkpoint f (with its config.json, or nil: the
// sizes are read from the tensors and o.Heads gives n_head) into a model
// of GPT-2 blocks by SPEC.md §22.5.
func Import(f *safetensors.File, cfg *Config, o Options) (*Model, error) {
	bad := func(format string, a ...any) (*Model, error) {
		return nil, fmt.Errorf("%w: %s", ErrImport, fmt.Sprintf(format, a...))
	}
	// Names, with or without the "transformer." prefix (not mixed).
	byName := map[string]*safetensors.Tensor{}
	prefixed := -1
	for i := range f.Tensors {
		t := &f.Tensors[i]
		name, p := strings.CutPrefix(t.Name, "transformer.")
		if t.Name == "lm_head.weight" {
			name, p = t.Name, prefixed == 1
		} else if prefixed == -1 {
			prefixed = map[bool]int{false: 0, true: 1}[p]
		} else if p != (prefixed == 1) {
			return bad("tensor %q: names mix the \"transformer.\" prefix with names without it", t.Name)
		}
		byName[name] = t
	}
	wte, wpe := byName["wte.weight"], byName["wpe.weight"]
	if wte == nil || wpe == nil || len(wte.Shape) != 2 || len(wpe.Shape) != 2 {
		return bad("no GPT-2 embeddings: want wte.weight [vocab, n_embd] and wpe.weight [n_positions, n_embd] (with or without \"transformer.\")")
	}
	layers := 0
	for name := range byName {
		if m := layerName.FindStringSubmatch(name); m != nil {
			l, err := strconv.Atoi(m[1])
			if err != nil || l >= gpt.MaxLayers {
				return bad("tensor %q: layer index above %d", name, gpt.MaxLayers-1)
			}
			layers = max(layers, l+1)
		}
	}
	if cfg == nil {
		if o.Heads < 1 {
			return bad("the number of attention heads is not in the weights: give config.json (--hf-config) or --heads")
		}
		c := &Config{NEmbd: wte.Shape[1], NHead: o.Heads, NLayer: layers, NPositions: wpe.Shape[0], VocabSize: wte.Shape[0],
			LayerNormEpsilon: 1e-5, Activation: "gelu_new"}
		if fc := byName["h.0.mlp.c_fc.weight"]; fc != nil && len(fc.Shape) == 2 {
			c.NInner = fc.Shape[1]
		}
		if err := c.check(); err != nil {
			return nil, err
		}
		cfg = c
	} else if o.Heads > 0 && o.Heads != cfg.NHead {
		return bad("--heads %d but config.json has n_head %d", o.Heads, cfg.NHead)
	}
	if wte.Shape[0] != gpt.Vocab {
		return bad("wte.weight has %d rows, a vocabulary of %d tokens: Beluga's GPTs are byte-level (256 tokens, one per byte value); a tokenizer is not supported yet", wte.Shape[0], wte.Shape[0])
	}
	if cfg.VocabSize != wte.Shape[0] || cfg.NEmbd != wte.Shape[1] || cfg.NPositions != wpe.Shape[0] || cfg.NEmbd != wpe.Shape[1] || cfg.NLayer != layers {
		return bad("config.json (vocab %d, n_embd %d, n_positions %d, n_layer %d) does not match the tensors (wte %v, wpe %v, %d layers)",
			cfg.VocabSize, cfg.NEmbd, cfg.NPositions, cfg.NLayer, wte.Shape, wpe.Shape, layers)
	}
	ctx := o.Context
	if ctx == 0 {
		ctx = min(cfg.NPositions, gpt.MaxContext)
	}
	if ctx < 1 || ctx > cfg.NPositions {
		return bad("context %d outside [1, n_positions = %d]", ctx, cfg.NPositions)
	}
	bits := o.Bits
	if bits == 0 {
		bits = gpt.MaxBits
	}
	name := o.Name
	if name == "" {
		name = "gpt2-import"
	}
	s := spec.ServedGPT2(name, ctx, cfg.NEmbd, cfg.NLayer, cfg.NHead, cfg.FF(), bits)
	c, err := s.GPT()
	if err != nil {
		return bad("the model does not fit SPEC.md's limits: %v", err)
	}
	// Every tensor is used once; anything else is refused.
	used := map[string]bool{}
	read := func(hf string, rows, in int, transposed bool, frac int) ([]int32, error) {
		t := byName[hf]
		if t == nil {
			return nil, fmt.Errorf("%w: tensor %q is missing", ErrImport, hf)
		}
		used[hf] = true
		want := []int{rows, in}
		switch {
		case transposed:
			want = []int{in, rows}
		case rows == 1:
			want = []int{in}
		}
		if !equal(t.Shape, want) && !(hf == "wpe.weight" && len(t.Shape) == 2 && t.Shape[1] == in) {
			return nil, fmt.Errorf("%w: tensor %q has shape %v, want %v", ErrImport, t.Name, t.Shape, want)
		}
		v, err := t.Float64s()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrImport, err)
		}
		out := make([]int32, rows*in)
		for r := range rows {
			for i := range in {
				k := r*in + i
				if transposed {
					k = i*rows + r
				}
				q, err := Quantize(v[k], frac)
				if err != nil {
					return nil, fmt.Errorf("%w: tensor %q element %d: %w", ErrImport, t.Name, k, err)
				}
				out[r*in+i] = q
			}
		}
		return out, nil
	}
	ps := c.Params()
	st := &gpt.State{W: make([][]int32, len(ps)), M: make([][]int32, len(ps)), V: make([][]int64, len(ps))}
	for i, p := range ps {
		var hf string
		transposed := false
		switch {
		case p.Name == "tok_emb":
			hf = "wte.weight"
		case p.Name == "pos_emb":
			hf = "wpe.weight"
		case p.Name == "ln_f.gain":
			hf = "ln_f.weight"
		case p.Name == "ln_f.bias":
			hf = "ln_f.bias"
		default:
			var l int
			var suffix string
			if _, err := fmt.Sscanf(p.Name, "blocks.%d.", &l); err != nil {
				return bad("internal: parameter %q", p.Name)
			}
			suffix = strings.TrimPrefix(p.Name, fmt.Sprintf("blocks.%d.", l))
			for _, b := range blockTensors {
				if b.ours == suffix {
					hf, transposed = fmt.Sprintf("h.%d.%s", l, b.hf), b.transposed
				}
			}
		}
		frac := gpt.MasterFrac
		if p.Vector {
			frac = gpt.VectorFrac
		}
		w, err := read(hf, p.Rows, p.In, transposed, frac)
		if err != nil {
			return nil, err
		}
		st.W[i], st.M[i], st.V[i] = w, make([]int32, len(w)), make([]int64, len(w))
	}
	for name, t := range byName {
		if used[name] {
			continue
		}
		if m := layerName.FindStringSubmatch(name); m != nil && ignored[m[2]] {
			continue
		}
		if name == "lm_head.weight" {
			if err := checkTied(t, wte); err != nil {
				return nil, err
			}
			continue
		}
		return bad("tensor %q is not a GPT-2 parameter (SPEC.md §22.5 maps wte, wpe, h.<l>.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj} and ln_f)", t.Name)
	}
	return &Model{Spec: s, Config: c, State: st}, nil
}

// checkTied accepts an lm_head.weight only if it is the token embedding.
func checkTied(head, wte *safetensors.Tensor) error {
	if !equal(head.Shape, wte.Shape) || head.DType != wte.DType || !bytes.Equal(head.Data, wte.Data) {
		return fmt.Errorf("%w: lm_head.weight differs from wte.weight: an untied head is not supported (SPEC.md §22's head is the token embedding)", ErrImport)
	}
	return nil
}

// Quantize is SPEC.md §22.5's conversion of a real value to an int32 with
// frac fractional bits: x·2^frac rounded half to even, saturated to
// ±(2^31 − 1). NaN and infinities are refused.
func Quantize(x float64, frac int) (int32, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("the value %v is not a finite number", x)
	}
	v := math.RoundToEven(math.Ldexp(x, frac))
	return int32(max(min(v, math.MaxInt32), -math.MaxInt32)), nil
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Write makes dir a run directory of m — spec.json and the state as the
// checkpoint at step 0 in its store — and returns the model as the
// network names it (rundir.OpenModel of dir gives the same). dir must not
// hold a run already.
func Write(ctx context.Context, dir string, m *Model) (*rundir.Model, error) {
	if _, err := os.Stat(filepath.Join(dir, "spec.json")); err == nil {
		return nil, fmt.Errorf("%w: %s already holds a run (spec.json): choose an empty --out", ErrImport, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, rundir.StoreDir)); err == nil {
		return nil, fmt.Errorf("%w: %s already holds a checkpoint store: choose an empty --out", ErrImport, dir)
	}
	js, err := m.Spec.JSON()
	if err != nil {
		return nil, err
	}
	job, err := m.Spec.ID()
	if err != nil {
		return nil, err
	}
	st := spec.GPTTensors(m.Config, m.State)
	rm, err := rundir.ModelFromState(m.Spec, job, st)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cps, err := rundir.OpenCheckpoints(dir, m.Spec, job)
	if err != nil {
		return nil, err
	}
	if err := cps.Save(ctx, st); err != nil {
		cps.Close()
		return nil, err
	}
	if err := cps.Close(); err != nil {
		return nil, err
	}
	// spec.json last: a directory with it is a complete run.
	if err := os.WriteFile(filepath.Join(dir, "spec.json"), js, 0o644); err != nil {
		return nil, err
	}
	return rm, nil
}
