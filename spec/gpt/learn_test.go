package gpt

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/kernel"
)

// TestLearnFortunes trains the example GPT on the fortunes corpus and
// prints the validation loss; opt-in (BELUGA_GPT_LEARN=steps).
func TestLearnFortunes(t *testing.T) {
	steps, _ := strconv.Atoi(os.Getenv("BELUGA_GPT_LEARN"))
	if steps == 0 {
		t.Skip("set BELUGA_GPT_LEARN=steps to train the example GPT")
	}
	corpus, err := dataset.LoadFortunes(dataset.FortunesDir)
	if err != nil {
		t.Skip(err)
	}
	c := Config{Context: 128, Dim: 128, Layers: 4, Heads: 4, FF: 512, Bits: 12, Batch: 16, Seed: 1,
		Beta1: Ratio{58982, 16}, Beta2: Ratio{62259, 16}, WeightDecay: Ratio{6554, 16}, Eps: 1,
		LRShift: 39, LR: []LRPoint{{0, 0}, {30, 549755814}, {int64(max(steps, 31)), 54975581}}}
	if b, _ := strconv.Atoi(os.Getenv("BELUGA_GPT_BITS")); b != 0 {
		c.Bits = b
	}
	if lr, _ := strconv.ParseFloat(os.Getenv("BELUGA_GPT_LR"), 64); lr != 0 { // peak rate
		c.LRShift = 38
		c.LR = []LRPoint{{0, 0}, {30, int64(lr * (1 << 38))}, {int64(max(steps, 31)), int64(lr * (1 << 38) / 10)}}
	}
	st := c.Init()
	tr, err := NewTrainer(c, kernel.Best(), 0)
	if err != nil {
		t.Fatal(err)
	}
	const valBytes = 65536
	nTrain := len(corpus) - valBytes
	val := dataset.ValWindows(nTrain, valBytes, c.Context, 64)
	evalBPB := func() float64 {
		var sum int64
		var n int
		for i := 0; i+c.Batch <= len(val); i += c.Batch {
			b := batchAt(corpus, val[i:i+c.Batch], c.Context)
			l, err := tr.Loss(st, b, c.Batch)
			if err != nil {
				t.Fatal(err)
			}
			sum += l
			n += c.Tokens()
		}
		return float64(sum) / 65536 / float64(n) / math.Ln2
	}
	fmt.Printf("params %d bits %d\n", c.ParamCount(), c.Bits)
	start := time.Now()
	var offs []int64
	for s := range steps {
		if s%50 == 0 {
			fmt.Printf("step %d val_bpb %.4f  (%.0f ms/step)\n", s, evalBPB(), float64(time.Since(start).Milliseconds())/float64(max(s, 1)))
		}
		offs = dataset.TrainWindows(c.Seed, int64(s), c.Batch, c.Context, nTrain, offs[:0])
		r, err := tr.Step(st, batchAt(corpus, offs, c.Context))
		if err != nil {
			t.Fatal(err)
		}
		if s%10 == 0 {
			fmt.Printf("  step %d train %.4f norm %.3f\n", s, float64(r.LossQ16)/65536/float64(c.Tokens())/math.Ln2, float64(r.NormQ15)/32768)
		}
	}
	fmt.Printf("step %d val_bpb %.4f  (%.0f ms/step)\n", steps, evalBPB(), float64(time.Since(start).Milliseconds())/float64(steps))
}

func batchAt(corpus []byte, offs []int64, T int) Batch {
	b := Batch{Tokens: make([]byte, 0, len(offs)*T), Targets: make([]byte, 0, len(offs)*T)}
	for _, o := range offs {
		b.Tokens = append(b.Tokens, corpus[o:o+int64(T)]...)
		b.Targets = append(b.Targets, corpus[o+1:o+1+int64(T)]...)
	}
	return b
}
