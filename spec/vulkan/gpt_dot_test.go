package vulkan_test

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

// TestGPTIntegerDotPaths: random GPT configurations (a third with weights
// anywhere in int32, which saturate the quantised operands) trained for
// three steps with the products on int32 multiply-adds and on the packed
// 4×8-bit integer dot products (where the device has them, as lavapipe
// does) give the same loss, gradient norm and state digest at every step.
func TestGPTIntegerDotPaths(t *testing.T) {
	t.Parallel()
	info := device(t).Info()
	if !info.IntegerDotProduct {
		t.Skipf("%v has no integer dot product: the int32 path only", info)
	}
	var devs [2]*vulkan.Device
	for i := range devs {
		d, err := vulkan.Open(vulkan.WithIntegerDot(i == 1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		devs[i] = d
	}
	for i := range 6 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(22, uint64(i)))
			c, st := randomGPT(r, i%3 == 2)
			var trs [2]*vulkan.GPTTrainer
			for k, d := range devs {
				v, err := vulkan.NewGPT(c, st.Clone(), vulkan.WithDevice(d))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { v.Close() })
				if v.IntegerDot() != (k == 1) {
					t.Fatalf("trainer %d: IntegerDot %v", k, v.IntegerDot())
				}
				trs[k] = v
			}
			for step := range 3 {
				b := gpt.RandomBatch(r, c)
				var got [2]gpt.StepResult
				var dg [2]string
				for k, v := range trs {
					var err error
					if got[k], err = v.Step(b); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					dg[k] = gptDigest(c, v.State())
				}
				if got[0] != got[1] || dg[0] != dg[1] {
					t.Fatalf("step %d: int32 path loss %d norm %d digest %.12s; dot path loss %d norm %d digest %.12s",
						step, got[0].LossQ16, got[0].NormQ15, dg[0], got[1].LossQ16, got[1].NormQ15, dg[1])
				}
			}
		})
	}
}
