package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/bench"
	mlmodel "github.com/beluga-compute/beluga/spec/model"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure Beluga against its peers and print tables"}
	cfg := bench.DefaultTrainConfig()
	gcfg := bench.DefaultGPTConfig()
	var noPeer, noLearn, noTime bool
	var model, backendName string
	train := &cobra.Command{
		Use:   "train",
		Short: "Training against PyTorch float32 on the CPU: MLP 784-256-128-10 throughput, or the GPT example's learning curve, step time and memory",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if noPeer {
				cfg.Python = ""
			}
			switch model {
			case "mlp":
				b, err := mlmodel.ParseBackend(backendName)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--backend: %w", err)}
				}
				if b != mlmodel.BackendCPU {
					chosen, err := mlmodel.ResolveBackend(b)
					if err != nil {
						return fmt.Errorf("--backend %s: %w", b, err)
					}
					defer chosen.Close()
					fmt.Fprintln(c.ErrOrStderr(), "backend: "+chosen.Describe)
					cfg.Vulkan = chosen.Device
				}
			case "gpt":
				b, err := mlmodel.ParseBackend(backendName)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--backend: %w", err)}
				}
				if b != mlmodel.BackendCPU && !noTime {
					chosen, err := mlmodel.ResolveBackend(b)
					if err != nil {
						return fmt.Errorf("--backend %s: %w", b, err)
					}
					defer chosen.Close()
					fmt.Fprintln(c.ErrOrStderr(), "backend: "+chosen.Describe)
					gcfg.Vulkan = chosen.Device
				}
				gcfg.Python, gcfg.Threads = cfg.Python, cfg.Threads
				gcfg.Learn, gcfg.Time = !noLearn, !noTime
				gcfg.Model = bench.ExampleGPTModel(gcfg.Steps)
				if self, err := os.Executable(); err == nil {
					gcfg.Self = self
				}
				res, err := bench.GPT(c.Context(), gcfg)
				if err != nil {
					return err
				}
				bench.PrintGPT(c.OutOrStdout(), res, gcfg)
				return nil
			default:
				return fmt.Errorf("--model %q: want mlp or gpt", model)
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
	f.StringVar(&backendName, "backend", "auto", "also time the Vulkan backend (mlp, and gpt's step time) — vulkan (any device), auto (a Vulkan GPU if there is one) or cpu (CPU rows only)")
	f.StringVar(&model, "model", "mlp", "mlp (throughput at --batch) or gpt (the GPT example: learning curve, step time, memory)")
	f.IntVar(&gcfg.Steps, "gpt-steps", gcfg.Steps, "gpt: training steps of the learning comparison")
	f.IntVar(&gcfg.EvalEvery, "gpt-eval-every", gcfg.EvalEvery, "gpt: steps between validation losses")
	f.IntVar(&gcfg.TimeSteps, "gpt-time-steps", gcfg.TimeSteps, "gpt: timed steps per thread count")
	f.BoolVar(&noLearn, "no-learn", false, "gpt: skip the learning comparison")
	f.BoolVar(&noTime, "no-time", false, "gpt: skip the step-time comparison")
	cmd.AddCommand(train, newBenchCommitCmd(), newBenchZKCmd(), newBenchVulkanCmd(), newBenchImportCmd())
	return cmd
}

func newBenchCommitCmd() *cobra.Command {
	cfg := bench.DefaultCommitConfig()
	cmd := &cobra.Command{
		Use:   "commit",
		Short: "Commitment overhead: training with state digests every k steps vs without, batch 64–1024",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rows, err := bench.Commit(c.Context(), cfg)
			if err != nil {
				return err
			}
			bench.PrintCommit(c.OutOrStdout(), rows, cfg)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&cfg.Batches, "batch", cfg.Batches, "batch sizes")
	f.Int64SliceVar(&cfg.Intervals, "interval", cfg.Intervals, "digest intervals")
	f.IntVar(&cfg.StepsAt64, "steps", cfg.StepsAt64, "timed steps at batch 64 (fewer for larger batches)")
	f.IntVar(&cfg.Threads, "threads", cfg.Threads, "training threads")
	return cmd
}

func newBenchZKCmd() *cobra.Command {
	cfg := bench.DefaultZKConfig()
	cmd := &cobra.Command{
		Use:   "zk",
		Short: "Confidential audit cost: zk commitments and tile proofs vs training, reference MLP",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			r, err := bench.ZK(c.Context(), cfg)
			if err != nil {
				return err
			}
			bench.PrintZK(c.OutOrStdout(), r, cfg)
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&cfg.Steps, "steps", cfg.Steps, "steps of the audited job")
	f.IntVar(&cfg.Layer, "layer", cfg.Layer, "linear layer whose tile is proven")
	f.IntVar(&cfg.Repeats, "repeats", cfg.Repeats, "repeats; the best is reported")
	return cmd
}
