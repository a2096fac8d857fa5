package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/beluga-compute/beluga/internal/bench"
)

func newBenchImportCmd() *cobra.Command {
	cfg := bench.DefaultImportConfig()
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "import",
		Short: "GPT-2 import fidelity: a GPT-2 trained in PyTorch float32 vs its integer import (SPEC.md §22)",
		Long: `import trains a GPT-2-architecture byte-level model in PyTorch float32 on the
fortunes corpus's training bytes for --seconds, saves it as a Hugging Face
style checkpoint (safetensors + config.json), imports it as beluga model
import does, and runs both on the validation windows (SPEC.md §20.6). It
prints the top-1 next-byte agreement, the mean and largest KL(float ‖
integer) in nats per position, and both models' bits per byte. Needs
python3 with torch (Debian's python3-torch).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			r, err := bench.RunImport(c.Context(), cfg)
			if err != nil {
				return err
			}
			if jsonOut {
				b, _ := json.Marshal(r)
				fmt.Fprintln(c.OutOrStdout(), string(b))
				return nil
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "GPT-2 %d layers, width %d, %d heads, MLP %d, context %d; PyTorch %s float32, %d steps in %.0f s; import at %d bits (digest %s)\n",
				cfg.Layers, cfg.Dim, cfg.Heads, cfg.FF, cfg.Context, r.Torch, r.TrainSteps, r.TrainSeconds, cfg.Bits, r.Digest[:16])
			fmt.Fprintf(w, "%-34s %s\n", "positions compared", fmt.Sprint(r.Positions))
			fmt.Fprintf(w, "%-34s %.2f %%\n", "top-1 next-byte agreement", 100*r.Top1Agreement)
			fmt.Fprintf(w, "%-34s %.3g (max %.3g)\n", "KL(float ‖ integer), nats/position", r.MeanKL, r.MaxKL)
			fmt.Fprintf(w, "%-34s %.4f float32, %.4f integer\n", "validation bits per byte", r.FloatBPB, r.IntBPB)
			fmt.Fprintf(w, "%-34s %.1f ms\n", "integer forward per window", r.ForwardMillis)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Seconds, "seconds", cfg.Seconds, "PyTorch training time")
	f.IntVar(&cfg.Bits, "bits", cfg.Bits, "the import's operand bits (8 to 12)")
	f.IntVar(&cfg.Layers, "layers", cfg.Layers, "transformer layers")
	f.IntVar(&cfg.Dim, "dim", cfg.Dim, "model width")
	f.IntVar(&cfg.Heads, "heads", cfg.Heads, "attention heads")
	f.IntVar(&cfg.FF, "ff", cfg.FF, "MLP width")
	f.IntVar(&cfg.Context, "context", cfg.Context, "context length")
	f.IntVar(&cfg.EvalWindows, "windows", cfg.EvalWindows, "validation windows compared")
	f.IntVar(&cfg.Threads, "threads", cfg.Threads, "threads of the integer forward passes (0: all cores)")
	f.IntVar(&cfg.TorchThreads, "torch-threads", 1, "PyTorch's threads")
	f.StringVar(&cfg.Python, "python", cfg.Python, "Python with torch")
	f.StringVar(&cfg.Dir, "keep", "", "keep the checkpoint, logits and imported run in this directory")
	f.BoolVar(&cfg.Reuse, "reuse", false, "compare again the checkpoint and logits kept in --keep DIR by an earlier run, without training (e.g. at other --bits)")
	f.BoolVar(&jsonOut, "json", false, "print JSON")
	return cmd
}
