package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/beluga-compute/beluga/protocol/core/commit"
	"github.com/beluga-compute/beluga/solver/trainer"
	"github.com/beluga-compute/beluga/spec/dataset"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/model"
)

// CommitConfig sets up `beluga bench commit`.
type CommitConfig struct {
	Batches   []int
	Intervals []int64
	// StepsAt64 timed steps at batch 64; larger batches scale it down.
	StepsAt64 int
	Threads   int
}

// DefaultCommitConfig covers batch 64–1024 and digest intervals 1–32.
func DefaultCommitConfig() CommitConfig {
	return CommitConfig{Batches: []int{64, 128, 256, 512, 1024}, Intervals: []int64{1, 2, 4, 8, 16, 32}, StepsAt64: 400, Threads: runtime.GOMAXPROCS(0)}
}

// CommitRow is one batch size: the plain step time and, per digest
// interval, the step time with commitments.
type CommitRow struct {
	Batch       int
	PlainMillis float64
	HashMillis  float64 // one state digest on one core
	WithMillis  []float64
}

// Commit measures the solver's commitment overhead: training with a state
// digest every k steps (hashed on a second goroutine) against training
// without, for the reference MLP.
func Commit(ctx context.Context, cfg CommitConfig) ([]CommitRow, error) {
	ds, err := dataset.Synthetic(1, 8192, 784, 10)
	if err != nil {
		return nil, err
	}
	var rows []CommitRow
	for _, b := range cfg.Batches {
		s, err := MLPSpec(b)
		if err != nil {
			return nil, err
		}
		steps := max(20, cfg.StepsAt64*64/b)
		s.Steps = int64(steps)
		s.CheckpointInterval = s.Steps
		opts := []model.Option{model.WithKernel(kernel.Best()), model.WithThreads(cfg.Threads)}
		timeRun := func(k int64, commitOn bool) (float64, error) {
			s.DigestInterval = 1
			if commitOn {
				s.DigestInterval = k
			}
			s.CheckpointInterval = s.DigestInterval * ((s.Steps + s.DigestInterval - 1) / s.DigestInterval)
			best := time.Duration(1<<63 - 1)
			for range 3 {
				res, err := trainer.Run(ctx, s, &model.Data{Train: ds}, trainer.Options{Commit: commitOn, Model: opts})
				if err != nil {
					return 0, err
				}
				best = min(best, res.Elapsed)
			}
			return float64(best.Microseconds()) / 1e3 / float64(steps), nil
		}
		row := CommitRow{Batch: b}
		if row.PlainMillis, err = timeRun(1, false); err != nil {
			return nil, err
		}
		st := s.Init()
		h := commit.Hasher{Threads: 1}
		start := time.Now()
		const reps = 20
		for range reps {
			h.StateDigest([32]byte{}, st)
		}
		row.HashMillis = float64(time.Since(start).Microseconds()) / 1e3 / reps
		for _, k := range cfg.Intervals {
			ms, err := timeRun(k, true)
			if err != nil {
				return nil, err
			}
			row.WithMillis = append(row.WithMillis, ms)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// PrintCommit writes the overhead table: per batch size and digest
// interval, the extra time per step as a percentage of a plain step.
func PrintCommit(w io.Writer, rows []CommitRow, cfg CommitConfig) {
	fmt.Fprintf(w, "Commitment overhead, MLP 784-256-128-10 (state 1.88 MB: int32 weights, biases, momenta) — %s, %d cores, %d threads\n", cpuModel(), runtime.NumCPU(), cfg.Threads)
	fmt.Fprintf(w, "SHA-256 chunk trees (SPEC.md §11), hashed on a second goroutine; overhead = (step with digests − plain step) / plain step\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "batch\tplain ms/step\tone digest ms\t")
	for _, k := range cfg.Intervals {
		fmt.Fprintf(tw, "k=%d\t", k)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t", r.Batch, r.PlainMillis, r.HashMillis)
		for _, ms := range r.WithMillis {
			fmt.Fprintf(tw, "%+.1f%%\t", 100*(ms-r.PlainMillis)/r.PlainMillis)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
