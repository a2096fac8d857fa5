//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/beluga-compute/beluga/spec/gptref"
)

// bwdKinds are the operator kinds of gptbwd.go.
var bwdKinds = []string{"linear.bwd", "qkv.bwd", "silu.bwd", "rmsnorm.bwd", "add", "attn.bwd", "embed.bwd", "adamw.norm", "adamw"}

// TestGPTBackwardKinds: every backward and optimizer operator kind's
// kernel gives, on random configurations (one with weights anywhere in
// int32, one past the shaders' tiles and workgroups), exactly the
// reference's outputs, exponents included.
func TestGPTBackwardKinds(t *testing.T) {
	t.Parallel()
	for _, kind := range bwdKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			checkGPTKind(t, kind)
		})
	}
}

// TestGPTBackwardExtremes: the kernels agree with the reference on inputs
// that a training step rarely or never produces but that the graph's
// value ranges allow, which drive every clamp and saturation of SPEC.md
// §20.9 and §20.14 (the reference's run fails with ErrOverflow on some;
// those are skipped): values at the ends of their ranges or of random bit
// lengths (Norm's and NormParts' clamps, ShiftRound's saturation, AdamW's
// clamps of the mean gradient, the norm term, the clipping input, h, μ and
// the weight, the global norm's saturating sum), exponents far apart
// (shifts past 64 bits both ways) and all-zero tensors and rows (Norm's
// and Add's zero cases, ρ = 0).
func TestGPTBackwardExtremes(t *testing.T) {
	t.Parallel()
	d := testDevice(t)
	cases := gptCases(t, 77)
	for _, kind := range bwdKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(uint64(len(kind)), 77))
			ran := 0
			for _, tc := range cases {
				for i, op := range tc.g.Ops() {
					if op.Kind != kind {
						continue
					}
					for variant := range 4 {
						in := extremeInputs(r, tc, op, variant)
						want, err := tc.g.RunOp(i, in, tc.st.Step)
						if err != nil {
							continue // outside int64 for the reference too
						}
						got, err := runGPTOp(d, tc.c, tc.g, op, tc.valsWith(in), tc.st.Step)
						if err != nil {
							t.Fatalf("%s: %s: %v", tc.name, op.Name, err)
						}
						for _, name := range op.Outputs {
							if j := firstDiff(want[name].Data, got[name]); j >= 0 {
								t.Fatalf("%s: %s, variant %d: tensor %s %v: element %d: want %d, got %d (first of %d differences)",
									tc.name, op.Name, variant, name, want[name].Shape, j, want[name].Data[j], got[name][j], countDiff(want[name].Data, got[name]))
							}
						}
						ran++
					}
					break // the first operator of the kind in each configuration
				}
			}
			t.Logf("%d extreme inputs ran", ran)
			if ran < 3 {
				t.Fatalf("only %d extreme inputs of %s ran (the reference refused the others)", ran, kind)
			}
		})
	}
}

// valsWith is tc's tensors with in replacing some.
func (tc gptCase) valsWith(in map[string]gptref.Tensor) map[string]gptref.Tensor {
	vals := make(map[string]gptref.Tensor, len(tc.vals))
	for k, v := range tc.vals {
		vals[k] = v
	}
	for k, v := range in {
		vals[k] = v
	}
	return vals
}

// extremeInputs returns op's inputs from tc changed by variant: 0 puts
// a fifth of the values at each end of their range and two fifths at
// random bit lengths (half of them all ones); 1 moves exponents (up to the ends of their range);
// 2 zeroes whole tensors and rows; 3 sets each tensor's largest value to
// all ones of its bit length (so that Norm and NormParts round it up to
// 2^β and clamp). Zeros of the attention weights stay (the
// causal mask), and so does everything that is not a range end: the
// tokens, ρ and s keep their meaning.
func extremeInputs(r *rand.Rand, tc gptCase, op gptref.Op, variant int) map[string]gptref.Tensor {
	in := map[string]gptref.Tensor{}
	for _, name := range op.Inputs {
		info, _ := tc.g.Tensor(name)
		v := tc.vals[name]
		x := slices.Clone(v.Data)
		isExp := strings.HasSuffix(name, ".exp")
		pick := func(orig int64) int64 {
			switch r.IntN(5) {
			case 0:
				return info.Min
			case 1:
				return info.Max
			case 2:
				hi := info.Max
				if -info.Min > hi {
					hi = -info.Min
				}
				bits := 1 + r.IntN(64-lz(hi))
				m := r.Int64N(int64(1)<<(bits-1)) + int64(1)<<(bits-1) // bits bits
				// Half of them all ones: RoundShift rounds those up to a power of 2.
				if r.IntN(2) == 0 {
					m = int64(1)<<(bits-1) - 1 + int64(1)<<(bits-1)
				}
				if r.IntN(2) == 0 && -m >= info.Min {
					return -m
				}
				return min(m, info.Max)
			}
			return orig
		}
		switch {
		case variant == 0 && !isExp && name != "tokens":
			for j := range x {
				if x[j] != 0 || !strings.HasSuffix(name, ".P") {
					x[j] = pick(x[j])
				}
			}
		case variant == 1 && isExp:
			for j := range x {
				switch r.IntN(5) {
				case 0:
					x[j] = info.Min
				case 1:
					x[j] = info.Max
				case 2:
					x[j] = max(info.Min, x[j]-70)
				case 3:
					x[j] = min(info.Max, x[j]+70)
				}
			}
		case variant == 2 && !isExp && name != "tokens":
			if r.IntN(2) == 0 {
				clear(x)
				break
			}
			if len(info.Shape) == 2 { // zero some rows
				cols := info.Shape[1]
				for row := range info.Shape[0] {
					if r.IntN(3) == 0 {
						clear(x[row*cols : (row+1)*cols])
					}
				}
			} else if len(info.Shape) == 1 && info.Shape[0] > 1 && info.Min <= 0 { // ρ, s: some rows 0
				for j := range x {
					if r.IntN(3) == 0 {
						x[j] = 0
					}
				}
			}
		}
		if variant == 3 && !isExp && len(x) > 1 && info.Min < 0 {
			top := 0
			for j := range x {
				if x[j] > x[top] || -x[j] > x[top] && -x[j] > -x[top] {
					top = j
				}
			}
			if m := x[top]; m != 0 {
				ones := int64(1)<<(64-lz(max(m, -m))) - 1
				if m < 0 {
					ones = -ones
				}
				if ones >= info.Min && ones <= info.Max {
					x[top] = ones
				}
			}
		}
		in[name] = gptref.Tensor{Shape: slices.Clone(v.Shape), Data: x}
	}
	return in
}

// lz is the number of leading zero bits of x > 0.
func lz(x int64) int {
	n := 64
	for x > 0 {
		x >>= 1
		n--
	}
	return n
}
