package gpt

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/spec/kernel"
)

// exampleConfig is the built-in example's model (SPEC.md; spec.ExampleGPT).
func exampleConfig() Config {
	return Config{Context: 128, Dim: 128, Layers: 4, Heads: 4, FF: 512, Bits: 12, Batch: 16, Seed: 1,
		Beta1: Ratio{58982, 16}, Beta2: Ratio{62259, 16}, WeightDecay: Ratio{6554, 16}, Eps: 1,
		LRShift: 39, LR: []LRPoint{{0, 0}, {30, 549755814}, {600, 54975581}}}
}

func BenchmarkStep(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			c := exampleConfig()
			st := c.Init()
			tr, err := NewTrainer(c, kernel.Best(), threads)
			if err != nil {
				b.Fatal(err)
			}
			batch := randomBatch(c, 3)
			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			for b.Loop() {
				if _, err := tr.Step(st, batch); err != nil {
					b.Fatal(err)
				}
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}
