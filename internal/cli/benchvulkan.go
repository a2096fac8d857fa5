package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/bench"
	"github.com/beluga-compute/beluga/spec/vulkan"
)

func newBenchVulkanCmd() *cobra.Command {
	cfg := bench.DefaultVulkanConfig()
	var device int
	var gpuOnly, listOnly bool
	var gptVectors string
	var gptRandom, gptSteps int
	cmd := &cobra.Command{
		Use:   "vulkan",
		Short: "The Vulkan backend: list devices, check its digests (MLP and GPT) against the CPU engine, time MLP 784-256-128-10 against the CPU engine and PyTorch CUDA",
		Long: `Lists the Vulkan devices, then (unless --no-check) trains --random random specs,
the vectors of --vectors and --check-steps steps of MLP 784-256-128-10 at every
--batches on the chosen device and on the CPU engine, comparing the loss and the
state digest after every step (exit 1 at the first difference), with
--gpt-random and --gpt-vectors GPT models too (spec/gpt), then (unless
--no-time) times MLP 784-256-128-10 at every batch on the device, the CPU
engine and, with --python, PyTorch CUDA eager in float32 and bf16 autocast.
scripts/gpu-check.sh runs it on a GPU machine.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			w := c.OutOrStdout()
			infos, err := vulkan.Devices()
			if err != nil {
				return err
			}
			bench.PrintDevices(w, infos)
			if listOnly {
				return nil
			}
			var opts []vulkan.DeviceOption
			if device >= 0 {
				opts = append(opts, vulkan.WithDeviceIndex(device))
			}
			if gpuOnly {
				opts = append(opts, vulkan.GPUOnly())
			}
			d, err := vulkan.Open(opts...)
			if err != nil {
				return err
			}
			defer d.Close()
			fmt.Fprintf(w, "using %s\n\n", d.Info())
			if !cfg.NoCheck {
				fmt.Fprintln(w, "conformance: Vulkan against the CPU engine, digest after every step")
				res, err := bench.VulkanConformance(c.Context(), w, d, cfg)
				if err != nil {
					return fmt.Errorf("conformance FAILED: %w", err)
				}
				fmt.Fprintf(w, "conformance OK: %d specs, %d steps, identical digests\n\n", res.Specs, res.Steps)
				if gptRandom > 0 || gptVectors != "" {
					fmt.Fprintln(w, "GPT conformance: Vulkan against the CPU engine (spec/gpt), digest after every step")
					res, err := bench.VulkanGPTConformance(c.Context(), w, d, gptVectors, gptRandom, gptSteps, cfg.Threads)
					if err != nil {
						return fmt.Errorf("GPT conformance FAILED: %w", err)
					}
					fmt.Fprintf(w, "GPT conformance OK: %d models, %d steps, identical digests\n\n", res.Specs, res.Steps)
				}
			}
			if cfg.NoTime {
				return nil
			}
			if len(cfg.Batches) == 0 {
				return errors.New("--batches: none")
			}
			rows, err := bench.TimeVulkan(c.Context(), d, cfg)
			if err != nil {
				return err
			}
			bench.PrintVulkan(w, rows, cfg)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&cfg.Batches, "batches", cfg.Batches, "MLP batch sizes to check and time")
	f.IntVar(&cfg.Steps, "steps", cfg.Steps, "timed steps per repeat")
	f.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "untimed steps first")
	f.IntVar(&cfg.Repeats, "repeats", cfg.Repeats, "repeats; the best is reported")
	f.IntVar(&cfg.Random, "random", cfg.Random, "random specs in the conformance check")
	f.IntVar(&cfg.CheckSteps, "check-steps", cfg.CheckSteps, "steps of MLP 784-256-128-10 checked at each batch")
	f.StringVar(&cfg.Vectors, "vectors", "", "directory of conformance vectors to check too (spec/testdata/vectors)")
	f.IntVar(&cfg.Threads, "threads", 0, "CPU engine threads (default: all cores)")
	f.StringVar(&cfg.Python, "python", "", "Python with PyTorch and CUDA for the peer (none: no peer)")
	f.StringVar(&gptVectors, "gpt-vectors", "", "directory of GPT conformance vectors to check too (spec/testdata/gptvectors)")
	f.IntVar(&gptRandom, "gpt-random", 0, "random small GPT models in the conformance check")
	f.IntVar(&gptSteps, "gpt-check-steps", 3, "steps of each random GPT model checked")
	f.BoolVar(&cfg.NoCheck, "no-check", false, "skip the conformance check")
	f.BoolVar(&cfg.NoTime, "no-time", false, "skip the timing")
	f.BoolVar(&listOnly, "list", false, "only list the devices")
	f.IntVar(&device, "device", -1, "device index (default: the best: discrete GPU, integrated, virtual, CPU)")
	f.BoolVar(&gpuOnly, "gpu-only", false, "refuse CPU devices such as lavapipe")
	return cmd
}
