package bench

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/beluga-compute/beluga/internal/modelimport"
	"github.com/beluga-compute/beluga/internal/modelimport/importtest"
	"github.com/beluga-compute/beluga/internal/safetensors"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/spectest"
)

// TestCompare: against a reference equal to the integer model's own
// logits plus a per-position constant (the same distribution), Compare
// reports full agreement, zero KL and equal bits per byte; raising one
// wrong byte's float logit at every position makes them disagree.
func TestCompare(t *testing.T) {
	t.Parallel()
	st, cj, err := importtest.GPT2(4, importtest.Small, false, "F32")
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(st)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := modelimport.ParseConfig(cj)
	if err != nil {
		t.Fatal(err)
	}
	m, err := modelimport.Import(f, hc, modelimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	T := m.Config.Context
	rng := rand.New(rand.NewPCG(1, 1))
	corpus := make([]byte, 3*T)
	for i := range corpus {
		corpus[i] = byte('a' + rng.IntN(26))
	}
	val := []int64{0, int64(T)}
	g, err := gpt.NewGenerator(m.Config, m.State, kernel.Generic(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]float64, len(val)*T*gpt.Vocab)
	for k, s := range val {
		_ = g.Positions(corpus[s:s+int64(T)], 0, func(r int, z []int64, e int) error {
			for c, v := range z {
				ref[(k*T+r)*gpt.Vocab+c] = math.Ldexp(float64(v), e) + float64(r)
			}
			return nil
		})
	}
	var res ImportResult
	if err := Compare(&res, m, corpus, val, ref, 1); err != nil {
		t.Fatal(err)
	}
	if res.Positions != 2*T || res.Top1Agreement != 1 || res.MeanKL > 1e-9 || math.Abs(res.FloatBPB-res.IntBPB) > 1e-9 {
		t.Fatalf("self-comparison: %+v", res)
	}
	for p := 0; p < len(ref); p += gpt.Vocab {
		ref[p+255] += 1000
	}
	if err := Compare(&res, m, corpus, val, ref, 1); err != nil {
		t.Fatal(err)
	}
	if res.Top1Agreement > 0.1 || res.MeanKL < 1 {
		t.Fatalf("a changed reference still agrees: %+v", res)
	}
}

// TestRunImport: the whole measurement with PyTorch — a few seconds of
// training, the import, the comparison — ends with the integer model
// close to float32 (slow: BELUGA_SLOW=1; skipped without torch).
func TestRunImport(t *testing.T) {
	spectest.Slow(t)
	c := DefaultImportConfig()
	c.Layers, c.Dim, c.FF, c.Context, c.Seconds, c.EvalWindows = 2, 64, 256, 64, 5, 4
	rng := rand.New(rand.NewPCG(2, 2))
	c.Corpus = make([]byte, 20000)
	for i := range c.Corpus {
		c.Corpus[i] = "the quick brown fox "[rng.IntN(20)]
	}
	c.ValBytes, c.Dir = 2000, t.TempDir()
	res, err := RunImport(context.Background(), c)
	if errors.Is(err, ErrNoPython) || errors.Is(err, ErrNoTorch) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d positions: top-1 agreement %.4f, mean KL %.3g nats, bpb %.4f float / %.4f integer after %d steps",
		res.Positions, res.Top1Agreement, res.MeanKL, res.FloatBPB, res.IntBPB, res.TrainSteps)
	if res.Positions != 4*64 || res.Top1Agreement < 0.9 || res.MeanKL > 0.01 {
		t.Fatalf("integer vs float32: %d positions, agreement %g, KL %g", res.Positions, res.Top1Agreement, res.MeanKL)
	}
	// The kept checkpoint and logits compare again at 8 bits, untrained.
	c.Reuse, c.Bits = true, 8
	res8, err := RunImport(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res8.TrainSteps != res.TrainSteps || res8.FloatBPB != res.FloatBPB || res8.MeanKL < res.MeanKL {
		t.Fatalf("reuse at 8 bits: %d steps, float bpb %g, KL %g; first run %d, %g, %g",
			res8.TrainSteps, res8.FloatBPB, res8.MeanKL, res.TrainSteps, res.FloatBPB, res.MeanKL)
	}
}
