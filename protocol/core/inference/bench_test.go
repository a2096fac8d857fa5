package inference_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// BenchmarkCheckVsGenerate: what the exact check of a receipt (one
// teacher-forced forward pass) costs against the autoregressive
// generation it checks, on the GPT example's model (T = 128, D = 128,
// 4 layers), one thread. Reports ms per generation, per check and the
// check's share of the generation in percent.
func BenchmarkCheckVsGenerate(b *testing.B) {
	c, err := spec.ExampleGPT().GPT()
	if err != nil {
		b.Fatal(err)
	}
	g, err := gpt.NewGenerator(c, c.Init(), kernel.Best(), 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct{ prompt, tokens int }{{16, 112}, {64, 64}, {96, 16}} {
		b.Run(fmt.Sprintf("prompt=%d/tokens=%d", p.prompt, p.tokens), func(b *testing.B) {
			req := &inference.Request{ID: "bench", Model: merkle.Digest{1}, Prompt: make([]byte, p.prompt),
				MaxTokens: p.tokens, Seed: 1, Temperature: 52429}
			for i := range req.Prompt {
				req.Prompt[i] = 'a' + byte(i%26)
			}
			var gen, chk time.Duration
			for b.Loop() {
				t0 := time.Now()
				res, err := inference.Generate(g, req, nil)
				if err != nil {
					b.Fatal(err)
				}
				rc, err := inference.NewReceipt(req, res, key(1))
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := inference.Check(g, req.Model, req, res.Output, rc); err != nil {
					b.Fatal(err)
				}
				gen += t1.Sub(t0)
				chk += time.Since(t1)
			}
			b.ReportMetric(float64(gen.Microseconds())/1e3/float64(b.N), "gen-ms")
			b.ReportMetric(float64(chk.Microseconds())/1e3/float64(b.N), "check-ms")
			b.ReportMetric(100*float64(chk)/float64(gen), "check-%")
		})
	}
}
