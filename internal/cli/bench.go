package cli

import (
	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/bench"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure Beluga against its peers and print tables"}
	cfg := bench.DefaultTrainConfig()
	var noPeer bool
	train := &cobra.Command{
		Use:   "train",
		Short: "Training throughput: integer engine vs PyTorch float32 CPU, MLP 784-256-128-10",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if noPeer {
				cfg.Python = ""
			}
			rows, err := bench.Train(c.Context(), cfg)
			if err != nil {
				return err
			}
			bench.PrintTrain(c.OutOrStdout(), rows, cfg)
			return nil
		},
	}
	f := train.Flags()
	f.IntVar(&cfg.Steps, "steps", cfg.Steps, "timed steps per repeat")
	f.IntVar(&cfg.Repeats, "repeats", cfg.Repeats, "repeats; the best is reported")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "batch size")
	f.IntSliceVar(&cfg.Threads, "threads", cfg.Threads, "thread counts to measure")
	f.StringVar(&cfg.Python, "python", cfg.Python, "Python with torch for the peer")
	f.BoolVar(&noPeer, "no-peer", false, "skip the PyTorch peer")
	cmd.AddCommand(train)
	return cmd
}
